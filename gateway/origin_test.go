package gateway_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/gateway"
)

// TestRequestOriginAgreesWithGin: the console (outside the gin router)
// must throttle the same address the API's throttling sees, so
// RequestOrigin is held to gin's ClientIP, masked to /64 for IPv6 as the
// API's keys are.
func TestRequestOriginAgreesWithGin(t *testing.T) {
	proxies := []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"}
	cases := []struct {
		name, remote, xff, xRealIP, proto string
		tls                               bool
		wantAddr                          string
		wantHTTPS                         bool
	}{
		{name: "direct", remote: "203.0.113.7:5000", wantAddr: "203.0.113.7"},
		{name: "untrusted peer's XFF ignored", remote: "203.0.113.7:5000", xff: "198.51.100.1", proto: "https", wantAddr: "203.0.113.7"},
		{name: "trusted proxy", remote: "10.1.2.3:5000", xff: "198.51.100.1", proto: "https", wantAddr: "198.51.100.1", wantHTTPS: true},
		{name: "trusted bare address", remote: "192.168.1.1:5000", xff: "198.51.100.2", wantAddr: "198.51.100.2"},
		{name: "bare address is /32", remote: "192.168.1.2:5000", xff: "198.51.100.2", wantAddr: "192.168.1.2"},
		{name: "multi-hop skips trusted", remote: "10.1.2.3:5000", xff: "198.51.100.1, 10.9.9.9, 10.8.8.8", wantAddr: "198.51.100.1"},
		{name: "spoofed left of an untrusted hop", remote: "10.1.2.3:5000", xff: "1.1.1.1, 198.51.100.9, 10.8.8.8", wantAddr: "198.51.100.9"},
		{name: "all trusted: leftmost", remote: "10.1.2.3:5000", xff: "10.5.5.5, 10.6.6.6", wantAddr: "10.5.5.5"},
		{name: "garbage hop stops the walk, X-Real-IP next", remote: "10.1.2.3:5000", xff: "198.51.100.1, junk", xRealIP: "198.51.100.4", wantAddr: "198.51.100.4"},
		{name: "garbage only: peer", remote: "10.1.2.3:5000", xff: "junk", wantAddr: "10.1.2.3"},
		{name: "X-Real-IP from trusted", remote: "10.1.2.3:5000", xRealIP: "198.51.100.5", wantAddr: "198.51.100.5"},
		{name: "X-Real-IP from untrusted", remote: "203.0.113.7:5000", xRealIP: "198.51.100.5", wantAddr: "203.0.113.7"},
		{name: "IPv6 client /64", remote: "[fd00::1]:5000", xff: "2001:db8:1:2:aaaa::1", proto: "HTTPS", wantAddr: "2001:db8:1:2::", wantHTTPS: true},
		{name: "IPv6 direct /64", remote: "[2001:db8:9:9:1::2]:5000", xff: "198.51.100.1", wantAddr: "2001:db8:9:9::"},
		{name: "proto http from trusted", remote: "10.1.2.3:5000", proto: "http", wantAddr: "10.1.2.3"},
		{name: "TLS direct", remote: "203.0.113.7:5000", tls: true, wantAddr: "203.0.113.7", wantHTTPS: true},
		{name: "bad remote", remote: "nonsense", wantAddr: "unknown"},
	}

	s := gateway.New(nil, nil, nil, nil, gateway.WithTrustedProxies(proxies...))
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	if err := engine.SetTrustedProxies(proxies); err != nil {
		t.Fatal(err)
	}
	var ginIP string
	engine.GET("/", func(c *gin.Context) { ginIP = c.ClientIP() })

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.xRealIP != "" {
				r.Header.Set("X-Real-IP", tc.xRealIP)
			}
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			addr, https := s.RequestOrigin(r)
			if addr != tc.wantAddr || https != tc.wantHTTPS {
				t.Errorf("RequestOrigin = %q, %v; want %q, %v", addr, https, tc.wantAddr, tc.wantHTTPS)
			}
			ginIP = ""
			engine.ServeHTTP(httptest.NewRecorder(), r)
			if got := masked(ginIP); got != addr {
				t.Errorf("gin's ClientIP %q (masked %q) differs from RequestOrigin's %q", ginIP, got, addr)
			}
		})
	}
}

// TestRequestOriginUnixSocket: gin trusts a unix socket's peer (a proxy on
// the same host); so does RequestOrigin.
func TestRequestOriginUnixSocket(t *testing.T) {
	s := gateway.New(nil, nil, nil, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "@"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	r.Header.Set("X-Forwarded-Proto", "https")
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/credgate.sock", Net: "unix"}))
	if addr, https := s.RequestOrigin(r); addr != "198.51.100.1" || !https {
		t.Errorf("RequestOrigin = %q, %v; want 198.51.100.1, true", addr, https)
	}
}

func masked(s string) string {
	ip := net.ParseIP(s)
	if ip == nil {
		return "unknown"
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return ip.String()
}
