package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrAddressNotAllowed: the receiver's address is not one webhooks may
// reach. A partner chooses the URL, so without this check credgate would
// POST, signed, to the credit office's own network (a database port, an
// administration API, a cloud's metadata service) and tell the partner
// how each answered.
var ErrAddressNotAllowed = errors.New("address not allowed")

// Allow is the operator's allow-list (events.webhook_allow): addresses
// and host names webhooks may reach although they are not public, for
// receivers inside the network and for tests. Empty, only public unicast
// addresses are reached.
type Allow struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
}

// ParseAllow parses allow-list entries, each an IP address, a CIDR, or a
// host name (reached whatever it resolves to).
func ParseAllow(entries []string) (*Allow, error) {
	a := &Allow{hosts: map[string]bool{}}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if ip, err := netip.ParseAddr(e); err == nil {
			ip = ip.WithZone("").Unmap()
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("allow-list item %d: %q: write an IPv4 range as IPv4", i+1, e)
			}
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		name, ok := hostName(e)
		if !ok {
			return nil, fmt.Errorf("allow-list item %d: %q is not an IP address, a CIDR or a host name", i+1, e)
		}
		a.hosts[name] = true
	}
	return a, nil
}

// CheckAllowEntry checks one allow-list entry (for the configuration).
func CheckAllowEntry(e string) error {
	_, err := ParseAllow([]string{e})
	return err
}

// hostName normalises a DNS host name (lower case, no final dot) and says
// whether it is one.
func hostName(s string) (string, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return s, true
}

// PermitsHost reports whether host (a URL's host name) is allow-listed by
// name.
func (a *Allow) PermitsHost(host string) bool {
	if a == nil || len(a.hosts) == 0 {
		return false
	}
	name, ok := hostName(host)
	return ok && a.hosts[name]
}

// Permits reports whether webhooks may reach ip: a public unicast address,
// or one the allow-list names.
func (a *Allow) Permits(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if a != nil {
		for _, p := range a.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
	}
	return Public(ip)
}

// special are the special-purpose ranges (IANA's IPv4 and IPv6
// special-purpose address registries) that are not reachable public
// unicast, beyond what netip.Addr's own predicates catch: this network,
// shared address space (carrier-grade NAT), protocol assignments,
// documentation, benchmarking, 6to4 relays, reserved, and IPv6's
// translation, discard, Teredo/ORCHID, 6to4, segment routing and
// site-local ranges.
var special = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// nat64 is the well-known NAT64 prefix: its addresses carry an IPv4
// address, which decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Public reports whether ip is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local, unspecified, multicast,
// carrier-grade NAT nor any other special-purpose address.
func Public(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, p := range special {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
