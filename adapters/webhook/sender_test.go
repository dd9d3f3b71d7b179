package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
)

func mustAllow(t *testing.T, entries ...string) *webhook.Allow {
	t.Helper()
	a, err := webhook.ParseAllow(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// counter is a receiver counting the requests it gets.
func counter(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func post(s *webhook.Sender, url string, timeout time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Post(ctx, url, map[string]string{"Content-Type": "application/json"}, []byte(`{}`))
}

func TestPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "93.184.215.14": true, "2606:4700::1111": true, "64:ff9b::808:808": true,
		"127.0.0.1": false, "127.1.2.3": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "172.31.255.255": false,
		"192.168.1.1": false, "fc00::1": false, "fd12::1": false, "169.254.169.254": false, "fe80::1": false, "fe80::1%eth0": false,
		"0.0.0.0": false, "::": false, "0.1.2.3": false, "100.64.0.1": false, "100.127.255.254": false, "224.0.0.1": false,
		"239.255.255.250": false, "ff02::1": false, "255.255.255.255": false, "240.0.0.1": false, "198.18.0.1": false,
		"192.0.2.1": false, "198.51.100.1": false, "203.0.113.1": false, "192.0.0.1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "::7f00:1": false, "64:ff9b::7f00:1": false, "64:ff9b::a00:1": false, "64:ff9b:1::1": false,
		"2001:db8::1": false, "2002:7f00:1::1": false, "2001::1": false, "fec0::1": false, "100::1": false,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestParseAllow(t *testing.T) {
	t.Parallel()
	a := mustAllow(t, "10.20.0.0/16", "192.168.1.7", "fd00::/8", "Hooks.Internal.", "localhost")
	for addr, want := range map[string]bool{
		"10.20.3.4": true, "10.21.0.1": false, "192.168.1.7": true, "192.168.1.8": false, "::ffff:192.168.1.7": true,
		"fd00::5": true, "fc00::5": false, "8.8.8.8": true, "127.0.0.1": false,
	} {
		if got := a.Permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Permits(%s) = %v, want %v", addr, got, want)
		}
	}
	if !a.PermitsHost("hooks.internal") || !a.PermitsHost("HOOKS.internal.") || a.PermitsHost("other.internal") || a.PermitsHost("10.20.3.4") {
		t.Error("host names are matched exactly, whatever their case and final dot, and only names")
	}
	for _, bad := range []string{"http://hooks.internal", "10.0.0.0/33", "::ffff:10.0.0.0/104", "a..b", "-a.b", "host:80", "*.internal"} {
		if err := webhook.CheckAllowEntry(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var none *webhook.Allow
	if none.Permits(netip.MustParseAddr("127.0.0.1")) || !none.Permits(netip.MustParseAddr("8.8.8.8")) || none.PermitsHost("localhost") {
		t.Error("no allow-list: public addresses only")
	}
}

// Without an allow-list no request reaches a loopback, link-local or
// private address, whether the URL names it or a name resolves to it; the
// failure is the category, never the transport's text.
func TestSenderRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	srv, hits := counter(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	s := webhook.NewSender()
	for _, url := range []string{
		srv.URL + "/hook",
		"http://localhost:" + strconv.Itoa(port) + "/hook",
		"http://[::1]:" + strconv.Itoa(port) + "/",
		"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port) + "/",
		"http://127.0.0.1:1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.255.255.1/",
		"http://100.64.0.1/",
		"http://0.0.0.0:" + strconv.Itoa(port) + "/",
	} {
		status, failure := post(s, url, 2*time.Second)
		if status != 0 || failure != webhook.FailureNotAllowed {
			t.Errorf("%s: %d %q, want 0 %q", url, status, failure, webhook.FailureNotAllowed)
		}
		if err := s.CheckURL(context.Background(), url); !errors.Is(err, webhook.ErrAddressNotAllowed) {
			t.Errorf("CheckURL(%s) = %v", url, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver on the loopback address got %d requests", n)
	}
	// A name that does not resolve now, or a public address, is not
	// refused when set (the dial checks it).
	for _, url := range []string{"https://receiver.invalid/hook", "https://93.184.215.14/hook"} {
		if err := s.CheckURL(context.Background(), url); err != nil {
			t.Errorf("CheckURL(%s) = %v", url, err)
		}
	}
}

// The allow-list lets through what it names, by address or by name, and
// nothing else.
func TestSenderAllowList(t *testing.T) {
	t.Parallel()
	srv, hits := counter(t, nil)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	byAddr := webhook.NewSender(webhook.WithAllow(mustAllow(t, "127.0.0.0/8")))
	if status, failure := post(byAddr, srv.URL, 2*time.Second); status != http.StatusOK || failure != "" {
		t.Fatalf("allowed by CIDR: %d %q", status, failure)
	}
	if _, failure := post(byAddr, "http://[::1]:"+port+"/", 2*time.Second); failure != webhook.FailureNotAllowed {
		t.Fatalf("::1 is not in 127.0.0.0/8: %q", failure)
	}
	byName := webhook.NewSender(webhook.WithAllow(mustAllow(t, "localhost")))
	if status, failure := post(byName, "http://localhost:"+port+"/", 2*time.Second); status != http.StatusOK || failure != "" {
		t.Fatalf("allowed by name: %d %q", status, failure)
	}
	if err := byName.CheckURL(context.Background(), "http://localhost:"+port+"/"); err != nil {
		t.Fatalf("CheckURL of an allowed name: %v", err)
	}
	if _, failure := post(byName, srv.URL, 2*time.Second); failure != webhook.FailureNotAllowed {
		t.Fatalf("the address of an allowed name is not allowed itself: %q", failure)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
}

// A redirect is not followed, even to an allowed address: the answer is
// the failure.
func TestSenderFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	target, hits := counter(t, nil)
	from, _ := counter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	s := webhook.NewSender(webhook.WithAllow(mustAllow(t, "127.0.0.1")))
	if status, failure := post(s, from.URL, 2*time.Second); status != http.StatusTemporaryRedirect || failure != "HTTP 307" {
		t.Fatalf("redirect: %d %q", status, failure)
	}
	if hits.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// Failures are coarse categories: what answers at an address (a database
// that closes the connection, a port nothing listens on) shows only as
// one of them, and no transport text reaches the partner.
func TestSenderFailureCategories(t *testing.T) {
	t.Parallel()
	s := webhook.NewSender(webhook.WithAllow(mustAllow(t, "127.0.0.1")))
	failing, _ := counter(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	slow, _ := counter(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	closing := listen(t, func(c net.Conn) { _ = c.Close() })
	redis := listen(t, func(c net.Conn) {
		_, _ = c.Write([]byte("-ERR unknown command 'POST', with args beginning with: '/' 'HTTP/1.1'\r\n"))
		_ = c.Close()
	})
	refused := listen(t, nil)
	tlsOnPlain := "https://" + strings.TrimPrefix(failing.URL, "http://")
	for _, c := range []struct {
		url, want string
		status    int
	}{
		{failing.URL, "HTTP 500", 500},
		{slow.URL, webhook.FailureTimeout, 0},
		{"http://" + closing + "/", webhook.FailureClosed, 0},
		{"http://" + redis + "/", webhook.FailureConnect, 0},
		{"http://" + refused + "/", webhook.FailureRefused, 0},
		{tlsOnPlain, webhook.FailureTLS, 0},
		{"http://receiver.invalid/", webhook.FailureDNS, 0},
	} {
		status, failure := post(s, c.url, 300*time.Millisecond)
		if status != c.status || failure != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.url, status, failure, c.status, c.want)
		}
	}
}

// listen serves each connection with serve on a free loopback port and
// returns its address; with serve nil, the port is closed again, so that
// nothing listens on it.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if serve == nil {
		_ = ln.Close()
		return addr
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			serve(c)
		}
	}()
	return addr
}
