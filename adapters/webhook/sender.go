// Package webhook sends credgate's signed webhook requests over HTTP: the
// outbound side of push, kept out of service (which decides what to send,
// signs it and records the attempt) so that the use cases carry no HTTP.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Sender POSTs webhook bodies. It follows no redirect (a receiver that
// moves must be re-registered) and reads at most 64 KiB of an answer.
type Sender struct {
	client *http.Client
}

// Option configures a Sender.
type Option func(*Sender)

// WithHTTPClient sets the client (default: one that follows no redirect;
// the caller bounds each attempt with its context).
func WithHTTPClient(c *http.Client) Option { return func(s *Sender) { s.client = c } }

// NewSender returns a Sender.
func NewSender(opts ...Option) *Sender {
	s := &Sender{client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Post sends body with header to rawURL. status is the receiver's HTTP
// status (0: none); failure is "" on a 2xx answer, else why not, without
// the URL (which may hold a token of the receiver's).
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
		return resp.StatusCode, "status " + strconv.Itoa(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// transportFailure names a transport error without the URL.
func transportFailure(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
