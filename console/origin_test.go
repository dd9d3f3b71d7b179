package console_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/gateway"
)

// proxied is a harness whose console learns the caller's origin as serve
// wires it: from the gateway, which trusts the proxies in 10.0.0.0/8.
func proxied(t *testing.T) *harness {
	gw := gateway.New(nil, nil, nil, nil, gateway.WithTrustedProxies("10.0.0.0/8"))
	return newHarness(t, console.WithOrigin(gw.RequestOrigin))
}

func (h *harness) from(remote string, header http.Header) *browser {
	b := h.browser()
	b.remote, b.header = remote, header
	return b
}

func forwarded(xff, proto string) http.Header {
	h := http.Header{"X-Forwarded-For": {xff}}
	if proto != "" {
		h.Set("X-Forwarded-Proto", proto)
	}
	return h
}

// TestSignInThrottlesTheForwardedAddress: behind the proxy, one person's
// failures lock out their own address, not everyone behind the proxy;
// a peer that is not a trusted proxy cannot escape its throttle by
// sending X-Forwarded-For.
func TestSignInThrottlesTheForwardedAddress(t *testing.T) {
	h := proxied(t)
	clumsy := h.from("10.0.0.5:4000", forwarded("198.51.100.1", "https"))
	for i := range 10 {
		clumsy.signIn(fmt.Sprintf("nobody-%d", i), "wrong")
	}
	if p := clumsy.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("the address with 10 failures: %d", p.status)
	}
	other := h.from("10.0.0.5:4001", forwarded("198.51.100.2", "https"))
	if p := other.signIn(adminID, adminSecret); p.status != http.StatusSeeOther {
		t.Fatalf("another user behind the same proxy: %d", p.status)
	}

	// Not a trusted proxy: its X-Forwarded-For is not believed.
	spoofer := h.from("203.0.113.9:4000", nil)
	for i := range 10 {
		spoofer.header = forwarded(fmt.Sprintf("198.51.100.%d", 100+i), "")
		spoofer.signIn(fmt.Sprintf("nobody-%d", i), "wrong")
	}
	spoofer.header = forwarded("198.51.100.200", "")
	if p := spoofer.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer varying X-Forwarded-For: %d", p.status)
	}
}

// TestOneAddressCannotLockOutAnID: failures for the admin id from one
// address lock that address out, not the administrator; the id is
// locked only by failures from many addresses.
func TestOneAddressCannotLockOutAnID(t *testing.T) {
	h := newHarness(t)
	attacker := h.from("198.51.100.1:4000", nil)
	for range 30 {
		attacker.signIn(adminID, "wrong")
	}
	if p := h.from("203.0.113.7:4000", nil).signIn(adminID, adminSecret); p.status != http.StatusSeeOther {
		t.Fatalf("the administrator after failures from one other address: %d", p.status)
	}
	// From six addresses, ten each, the id's allowance is spent.
	for a := 2; a <= 7; a++ {
		b := h.from(fmt.Sprintf("198.51.100.%d:4000", a), nil)
		for range 10 {
			b.signIn(adminID, "wrong")
		}
	}
	if p := h.from("203.0.113.8:4000", nil).signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("the id after failures from many addresses: %d", p.status)
	}
}

// TestCookiesAreSecureBehindATLSProxy: TLS ends at the proxy, which says
// so in X-Forwarded-Proto; the console's cookies are Secure then, and
// only when a trusted proxy says it.
func TestCookiesAreSecureBehindATLSProxy(t *testing.T) {
	h := proxied(t)
	for _, c := range []struct {
		name   string
		b      *browser
		secure bool
	}{
		{"trusted proxy, https", h.from("10.0.0.5:4000", forwarded("198.51.100.1", "https")), true},
		{"trusted proxy, http", h.from("10.0.0.5:4000", forwarded("198.51.100.2", "http")), false},
		{"trusted proxy, no proto", h.from("10.0.0.5:4000", forwarded("198.51.100.3", "")), false},
		{"untrusted peer claiming https", h.from("203.0.113.9:4000", forwarded("198.51.100.4", "https")), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []*http.Cookie
			got = append(got, c.b.get("/console/signin").cookie...)
			p := c.b.signIn(adminID, adminSecret)
			if p.status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", p.status)
			}
			got = append(got, p.cookie...)
			got = append(got, c.b.get("/console/language?lang=en").cookie...)
			names := map[string]bool{}
			for _, ck := range got {
				names[ck.Name] = true
				if ck.Secure != c.secure {
					t.Errorf("cookie %s: Secure %v, want %v", ck.Name, ck.Secure, c.secure)
				}
			}
			for _, n := range []string{"credgate_console", "credgate_console_signin", "credgate_console_lang"} {
				if !names[n] {
					t.Errorf("no %s cookie seen", n)
				}
			}
		})
	}
}
