package gateway

import (
	"net"
	"net/http"
	"strings"
)

// RequestOrigin is the caller's address and whether the caller reached
// credgate over HTTPS, as the gateway believes them: X-Forwarded-For (then
// X-Real-IP) and X-Forwarded-Proto count only when the connection comes
// from a trusted proxy (WithTrustedProxies), exactly as gin's ClientIP
// does for the API's throttling. The address is masked to its /64 for
// IPv6, as the API's throttling keys are, since one host commonly holds a
// whole /64. It is for handlers outside the gin router (the console).
func (s *Server) RequestOrigin(r *http.Request) (addr string, https bool) {
	ip, trusted := s.clientIP(r)
	https = r.TLS != nil || (trusted && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https"))
	return throttleAddress(ip), https
}

// throttleAddress is the key an address is throttled by: the IP, or its
// /64 for IPv6, where one host easily holds many addresses; "unknown" for
// what is not an IP.
func throttleAddress(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return "unknown"
	}
	if parsed.To4() == nil {
		parsed = parsed.Mask(net.CIDRMask(64, 128))
	}
	return parsed.String()
}

// clientIP is gin's ClientIP for the router's settings (trusted proxies,
// X-Forwarded-For then X-Real-IP, a unix socket always trusted), and
// whether the connection came from a trusted proxy.
func (s *Server) clientIP(r *http.Request) (ip string, trusted bool) {
	var remote net.IP
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && strings.HasPrefix(la.Network(), "unix") {
		trusted = true
	}
	if !trusted {
		host, _, err := net.SplitHostPort(strings.TrimSpace(r.RemoteAddr))
		if err != nil {
			return "", false
		}
		if remote = net.ParseIP(host); remote == nil {
			return "", false
		}
		trusted = s.trustedProxy(remote)
	}
	if trusted {
		for _, h := range []string{"X-Forwarded-For", "X-Real-IP"} {
			if ip, ok := s.forwardedFor(strings.Join(r.Header.Values(h), ",")); ok {
				return ip, true
			}
		}
	}
	if remote == nil {
		return "", trusted
	}
	return remote.String(), trusted
}

// forwardedFor walks a forwarding header from the right, past the trusted
// proxies that appended to it, to the first address not theirs.
func (s *Server) forwardedFor(header string) (string, bool) {
	if header == "" {
		return "", false
	}
	items := strings.Split(header, ",")
	for i := len(items) - 1; i >= 0; i-- {
		item := strings.TrimSpace(items[i])
		ip := net.ParseIP(item)
		if ip == nil {
			break
		}
		if i == 0 || !s.trustedProxy(ip) {
			return item, true
		}
	}
	return "", false
}

func (s *Server) trustedProxy(ip net.IP) bool {
	for _, n := range s.proxyNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// parseProxies turns WithTrustedProxies' addresses and CIDRs into
// networks as gin does (a bare address is its /32 or /128). The
// configuration checked them on the way in; one that does not parse is
// left out, trusting less rather than more.
func parseProxies(proxies []string) []*net.IPNet {
	var nets []*net.IPNet
	for _, p := range proxies {
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				continue
			}
			if ip.To4() != nil {
				p += "/32"
			} else {
				p += "/128"
			}
		}
		if _, n, err := net.ParseCIDR(p); err == nil {
			nets = append(nets, n)
		}
	}
	return nets
}
