// Package webhook sends credgate's signed webhook requests over HTTP: the
// outbound side of push, kept out of service (which decides what to send,
// signs it and records the attempt) so that the use cases carry no HTTP.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sender POSTs webhook bodies. It reaches only public unicast addresses
// and those the allow-list names, checked on every connection it opens
// (after name resolution, so a name that resolves, or comes to resolve,
// to an internal address is refused too); it follows no redirect (a
// receiver that moves must be re-registered) and goes through no proxy
// (the check must see the receiver's address); it reads at most 64 KiB of
// an answer.
type Sender struct {
	client   *http.Client
	allow    *Allow
	resolver *net.Resolver
}

// Option configures a Sender.
type Option func(*Sender)

// WithAllow sets the allow-list (events.webhook_allow; default: none).
func WithAllow(a *Allow) Option { return func(s *Sender) { s.allow = a } }

// NewSender returns a Sender; the caller bounds each attempt with its
// context.
func NewSender(opts ...Option) *Sender {
	s := &Sender{resolver: net.DefaultResolver}
	for _, o := range opts {
		o(s)
	}
	guarded := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: s.control}
	open := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	s.client = &http.Client{
		Transport: &http.Transport{
			// No proxy (whatever HTTPS_PROXY says): the check must see
			// the receiver's address, not the proxy's.
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				// A host the operator allows by name is reached wherever
				// it resolves; any other is checked once resolved.
				if host, _, err := net.SplitHostPort(addr); err == nil && s.allow.PermitsHost(host) {
					return open.DialContext(ctx, network, addr)
				}
				return guarded.DialContext(ctx, network, addr)
			},
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           100,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// control refuses a connection to an address webhooks may not reach; it
// runs for every address a dial tries, after resolution.
func (s *Sender) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !s.allow.Permits(ap.Addr()) {
		return ErrAddressNotAllowed
	}
	return nil
}

// CheckURL tells, when a webhook is set, whether Post would refuse to
// reach rawURL's host: an IP address that is not allowed, or a name that
// resolves to one. A name that does not resolve now is not refused (the
// receiver's DNS may come later); each connection is checked again.
func (s *Sender) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if s.allow.PermitsHost(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !s.allow.Permits(ip) {
			return ErrAddressNotAllowed
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := s.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if !s.allow.Permits(ip) {
			return ErrAddressNotAllowed
		}
	}
	return nil
}

// Post sends body with header to rawURL. status is the receiver's HTTP
// status (0: none); failure is "" on a 2xx answer, else why not, as one of
// a few coarse categories: never the URL (which may hold a token of the
// receiver's) nor the transport's own text, which would tell a partner
// what answers at an address it is not allowed to reach.
func (s *Sender) Post(ctx context.Context, rawURL string, header map[string]string, body []byte) (status int, failure string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid webhook url"
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, transportFailure(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// The categories of a failed request (Post's failure besides "HTTP nnn").
const (
	FailureNotAllowed = "address not allowed"
	FailureTimeout    = "timeout"
	FailureRefused    = "connection refused"
	FailureClosed     = "connection closed"
	FailureDNS        = "host not found"
	FailureTLS        = "TLS error"
	FailureConnect    = "connection failed"
)

// transportFailure puts a transport error into a category.
func transportFailure(err error) string {
	var (
		dnsErr   *net.DNSError
		netErr   net.Error
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		verErr   *tls.CertificateVerificationError
		authErr  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  x509.CertificateInvalidError
		opErr    *net.OpError
	)
	switch {
	case errors.Is(err, ErrAddressNotAllowed):
		return FailureNotAllowed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return FailureTimeout
	case errors.As(err, &dnsErr):
		return FailureDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureRefused
	case errors.As(err, &recErr), errors.As(err, &alertErr), errors.As(err, &verErr), errors.As(err, &authErr),
		errors.As(err, &hostErr), errors.As(err, &certErr),
		// An alert the receiver sent, or one crypto/tls raised.
		errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error"),
		// net/http's own text for a plain-HTTP answer to a TLS hello.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return FailureTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return FailureClosed
	}
	return FailureConnect
}
