// Package client is a Go client for credgate's API, for the credgate
// command line and for partner systems written in Go.
//
// A Client holds the base URL, an *http.Client and, optionally, a
// credential: a client secret (WithClientSecret) or a private key for
// private_key_jwt (WithPrivateKeyJWT). It gets access tokens by the client
// credentials grant, caches each until shortly before it expires and gets
// a new one then (and once more if the server refuses a cached token).
// Every refusal is an *Error decoded from the RFC 9457 problem+json answer:
// switch on its Code, which is stable, not on its text.
//
//	c, err := client.New("https://credgate.example", client.WithClientSecret(id, secret))
//	ans, err := c.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: "91350100M000100Y43"}, Action: "government_procurement"})
//	if client.IsCode(err, "invalid_subject_id") { … }
//
// The evidence log's public routes (keys, checkpoints, proofs, tlog-tiles)
// need no credential; client/audit verifies what they serve.
package client

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	// DefaultTimeout bounds each request, including reading the answer.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxResponse bounds an answer's body.
	DefaultMaxResponse = 16 << 20
	// refreshBefore is how long before its expiry a cached token is
	// replaced, so that a request never leaves with a token about to die.
	refreshBefore = 30 * time.Second
)

// Errors of the client itself (the server's refusals are *Error).
var (
	// ErrNoCredentials: an authenticated route was called on a Client
	// made without a credential.
	ErrNoCredentials = errors.New("credgate client: no credential configured")
	// ErrInvalidURL: the base URL is not an absolute http(s) URL.
	ErrInvalidURL = errors.New("credgate client: invalid base URL")
	// ErrResponse: the server's answer is not what the API promises (not
	// JSON, too large, a token missing).
	ErrResponse = errors.New("credgate client: unexpected answer")
)

// Client calls credgate's API. It is safe for concurrent use.
type Client struct {
	base        string // without a trailing slash
	http        *http.Client
	timeout     time.Duration
	maxResponse int64
	userAgent   string
	cred        credential
	now         func() time.Time
	// overloadRetries: WithOverloadRetries; sleep waits between them.
	overloadRetries int
	sleep           func(ctx context.Context, d time.Duration) error

	tok atomic.Pointer[token]
	// fetching is a one-slot lock: one token request at a time, which a
	// caller waits for only as long as its context lets it (a
	// sync.Mutex would hold it past its deadline for as long as another
	// caller's token request hangs).
	fetching chan struct{}
}

type token struct {
	value   string
	expires time.Time
}

// credential authenticates the client at the token endpoint.
type credential interface {
	clientID() string
	// authenticate adds the client's authentication to a token request.
	authenticate(req *http.Request, form url.Values, endpoint string, now time.Time) error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a new one). Its own
// Timeout, if any, applies besides WithTimeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeout bounds each request (default DefaultTimeout); 0 leaves it to
// the context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = max(d, 0) } }

// WithMaxResponse bounds an answer's body (default DefaultMaxResponse).
func WithMaxResponse(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxResponse = n
		}
	}
}

// WithOverloadRetries sends a request refused 503 overloaded again, up to
// n times, each after the Retry-After the server gave (1 s when it gave
// none, at most maxOverloadWait) and up to a half of it more at random
// (OverloadWait), unless ctx ends first (then ctx's error). A refusal for
// capacity is made before any work, nothing charged or recorded
// (openapi.yaml, code overloaded), so sending a check again cannot answer
// it twice. Waiting the Retry-After out here also spares the server: a
// replica shedding load pauses new connections for about that long, and
// a caller retrying at once would wait in its accept queue instead. 0
// (the default): the refusal is returned at once as an *Error with its
// RetryAfter. Streams (screening uploads) are not retried.
func WithOverloadRetries(n int) Option {
	return func(c *Client) { c.overloadRetries = max(n, 0) }
}

// maxOverloadWait bounds one wait of WithOverloadRetries, whatever
// Retry-After says.
const maxOverloadWait = time.Minute

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithClientSecret authenticates with a client id and secret (HTTP Basic at
// the token endpoint). The secret is sent only there.
func WithClientSecret(clientID, secret string) Option {
	return func(c *Client) { c.cred = secretCredential{id: clientID, secret: secret} }
}

// WithPrivateKeyJWT authenticates with a signed client assertion
// (private_key_jwt, RFC 7523): key is an ed25519.PrivateKey (EdDSA), an
// *ecdsa.PrivateKey on P-256 (ES256) or an *rsa.PrivateKey (RS256), whose
// public key was registered for the partner under kid.
func WithPrivateKeyJWT(clientID, kid string, key crypto.Signer) Option {
	return func(c *Client) { c.cred = &keyCredential{id: clientID, kid: kid, key: key} }
}

// withSleep replaces the waits between overload retries (tests).
func withSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = f }
}

// withClock sets the clock (tests).
func withClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client of the credgate at baseURL (e.g.
// https://credgate.example).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q: want http(s)://host[:port][/prefix]", ErrInvalidURL, baseURL)
	}
	c := &Client{base: u.String(), timeout: DefaultTimeout, maxResponse: DefaultMaxResponse,
		userAgent: "credgate-go-client", now: time.Now, sleep: sleepCtx,
		fetching: make(chan struct{}, 1)}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	return c, nil
}

// BaseURL is the base URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// HTTPClient is the underlying HTTP client, for callers that send requests
// of their own with Authorization (e.g. a load generator).
func (c *Client) HTTPClient() *http.Client { return c.http }

// ClientID is the configured credential's client id, or "".
func (c *Client) ClientID() string {
	if c.cred == nil {
		return ""
	}
	return c.cred.clientID()
}

// Token returns a valid access token: the cached one, or a new one when
// none is cached or it expires within 30 seconds.
func (c *Client) Token(ctx context.Context) (string, error) {
	if t := c.tok.Load(); t != nil && c.now().Before(t.expires) {
		return t.value, nil
	}
	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("access token: waiting for another request of one: %w", ctx.Err())
	}
	defer func() { <-c.fetching }()
	// Another caller may have refreshed it while this one waited.
	if t := c.tok.Load(); t != nil && c.now().Before(t.expires) {
		return t.value, nil
	}
	t, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	c.tok.Store(t)
	return t.value, nil
}

// Authorization is the Authorization header value for the current token.
func (c *Client) Authorization(ctx context.Context) (string, error) {
	t, err := c.Token(ctx)
	if err != nil {
		return "", err
	}
	return "Bearer " + t, nil
}

// forget drops the cached token if it is still bad, so that the next
// request gets a new one.
func (c *Client) forget(bad string) {
	if t := c.tok.Load(); t != nil && t.value == bad {
		c.tok.CompareAndSwap(t, nil)
	}
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (c *Client) fetchToken(ctx context.Context) (*token, error) {
	if c.cred == nil {
		return nil, ErrNoCredentials
	}
	endpoint := c.base + "/v1/oauth/token"
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	now := c.now()
	if err := c.cred.authenticate(req, form, endpoint, now); err != nil {
		return nil, err
	}
	var tr TokenResponse
	err = c.send(ctx, req, []byte(form.Encode()), "application/x-www-form-urlencoded", &tr, nil)
	if err != nil {
		return nil, fmt.Errorf("access token for %s: %w", c.cred.clientID(), err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: no access_token from the token endpoint", ErrResponse)
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Minute
	}
	// Refresh 30 s early, or at half the lifetime of a short-lived token.
	early := min(refreshBefore, ttl/2)
	return &token{value: tr.AccessToken, expires: now.Add(ttl - early)}, nil
}

// Do sends an authenticated request to path (below the base URL, with its
// query) and decodes a 2xx JSON answer into out (nil discards it; a
// *json.RawMessage or *[]byte keeps it verbatim). body is sent as
// contentType (JSON when empty and body is not nil). A token the server
// refuses is replaced once.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	return c.call(ctx, method, path, body, contentType, out, true, nil)
}

// DoPublic is Do without a token, for the public routes.
func (c *Client) DoPublic(ctx context.Context, method, path string, out any) error {
	return c.call(ctx, method, path, nil, "", out, false, nil)
}

// exchange is what a call sends and keeps besides the body: request
// headers of its own (hdr) and, when got is set, the answer's headers.
type exchange struct {
	hdr http.Header
	got *http.Header
}

func (c *Client) call(ctx context.Context, method, path string, body []byte, contentType string, out any, authed bool, x *exchange) error {
	if body != nil && contentType == "" {
		contentType = "application/json"
	}
	renewed, overloaded := false, 0
	for {
		req, err := newRequest(ctx, method, c.base+path, nil)
		if err != nil {
			return err
		}
		var tok string
		if authed {
			if tok, err = c.Token(ctx); err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		var got *http.Header
		if x != nil {
			for k, v := range x.hdr {
				req.Header[k] = v
			}
			got = x.got
		}
		err = c.send(ctx, req, body, contentType, out, got)
		var e *Error
		if authed && !renewed && errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			// The token expired early, was revoked, or the server rotated
			// its signing key: one new token, one more try.
			renewed = true
			c.forget(tok)
			continue
		}
		if overloaded < c.overloadRetries && errors.As(err, &e) && e.Status == http.StatusServiceUnavailable && e.Code == "overloaded" {
			overloaded++
			if err := c.sleep(ctx, OverloadWait(e.RetryAfter)); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// OverloadWait is how long a caller honouring Retry-After waits before
// sending again a request refused 503 overloaded with Retry-After d (0:
// none given): d (1 s when none was given, at most a minute) and up to a
// half of it more, at random. The client's WithOverloadRetries waits so,
// and credgate bench's overload phase with --retry-after.
//
// The jitter matters: a server refuses in bursts, and pauses accepting
// connections for its Retry-After (server.shed_accept_pause); callers that
// all waited exactly that long would come back together as the pause
// ends, be refused together and start the next one.
func OverloadWait(d time.Duration) time.Duration {
	if d <= 0 {
		d = time.Second
	}
	d = min(d, maxOverloadWait)
	return d + rand.N(d/2+1)
}

// sleepCtx waits d, or returns ctx's error if it ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send sends req with body and decodes the answer; got, when set, keeps
// the answer's headers.
func (c *Client) send(ctx context.Context, req *http.Request, body []byte, contentType string, out any, got *http.Header) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Header.Set("Content-Type", contentType)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	req.Header.Set("Accept", "application/json, application/problem+json;q=0.9, */*;q=0.1")
	res, err := c.http.Do(req)
	if err != nil {
		return requestFailed(req, err)
	}
	defer res.Body.Close()
	if got != nil {
		*got = res.Header
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, c.maxResponse+1))
	if err != nil {
		return requestFailed(req, err)
	}
	if int64(len(raw)) > c.maxResponse {
		return fmt.Errorf("%w: %s %s: answer larger than %d bytes", ErrResponse, req.Method, req.URL.Path, c.maxResponse)
	}
	if res.StatusCode/100 != 2 {
		return decodeError(res, raw)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = raw
		return nil
	case *json.RawMessage:
		*o = raw
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%w: %s %s: content type %q, want JSON", ErrResponse, req.Method, req.URL.Path, mt)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrResponse, req.Method, req.URL.Path, err)
	}
	return nil
}

// postStream posts file to path as contentType and returns the 2xx
// answer. size is the file's length (-1: unknown, sent chunked). The file
// is read as it is sent and is not closed; a stream cannot be sent again,
// so there is no retry with a new token, and no per-request timeout (ctx
// bounds it: a large file takes as long as the link needs).
func (c *Client) postStream(ctx context.Context, path, contentType string, file io.Reader, size int64) ([]byte, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(ctx, http.MethodPost, c.base+path, io.NopCloser(file))
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json, application/problem+json;q=0.9")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, requestFailed(req, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, c.maxResponse+1))
	if err != nil {
		return nil, requestFailed(req, err)
	}
	if int64(len(raw)) > c.maxResponse {
		return nil, fmt.Errorf("%w: POST %s: answer larger than %d bytes", ErrResponse, req.URL.Path, c.maxResponse)
	}
	if res.StatusCode/100 != 2 {
		return nil, decodeError(res, raw)
	}
	return raw, nil
}

// requestError is a request that got no whole answer: the method and path
// (no query) and the transport's error, without the *url.Error that
// quotes the whole URL. Queries carry subject ids (resident ID numbers are
// personal data), and errors end up in logs.
type requestError struct {
	method, path string
	// msg is err's text with the URL's query taken out.
	msg string
	err error
}

func (e *requestError) Error() string { return e.method + " " + e.path + ": " + e.msg }

// Unwrap keeps errors.Is(err, context.DeadlineExceeded) and the like.
func (e *requestError) Unwrap() error { return e.err }

// Timeout reports whether the request timed out, as *url.Error does
// (net.Error's method).
func (e *requestError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// newRequest is http.NewRequestWithContext, whose *url.Error for a URL it
// cannot parse would quote the URL, query and all.
func newRequest(ctx context.Context, method, rawURL string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		path, _, _ := strings.Cut(rawURL, "?")
		return nil, &requestError{method: method, path: path, msg: withoutQueries(err.Error(), rawURL), err: err}
	}
	return req, nil
}

// requestFailed is the error of req, which failed with err (from
// http.Client.Do or reading the body).
func requestFailed(req *http.Request, err error) error {
	urls := []string{req.URL.String()}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Op is the method; URL may be a redirect's target, not req's.
		urls = append(urls, ue.URL)
		err = ue.Err
	}
	return &requestError{method: req.Method, path: req.URL.Path, msg: withoutQueries(err.Error(), urls...), err: err}
}

// withoutQueries is msg with the queries of urls, and each of their
// values, replaced by "…": an inner error may quote the URL again (a
// CheckRedirect's, say).
func withoutQueries(msg string, urls ...string) string {
	for _, raw := range urls {
		_, q, ok := strings.Cut(raw, "?")
		if !ok || q == "" {
			continue
		}
		q, _, _ = strings.Cut(q, "#")
		msg = strings.ReplaceAll(msg, q, "…")
		vals, _ := url.ParseQuery(q)
		for _, vs := range vals {
			for _, v := range vs {
				// Short values (a limit, a format) identify no one, and
				// replacing them would garble the message.
				if len(v) >= 4 {
					msg = strings.ReplaceAll(msg, v, "…")
				}
			}
		}
	}
	return msg
}

// Error is a refusal by the server: its RFC 9457 problem (or, for an
// answer that is not one, the status alone).
type Error struct {
	// Status is the HTTP status.
	Status int `json:"status"`
	// Code is the stable problem code (invalid_subject, not_found …); the
	// status text in snake case when the answer was not a problem.
	Code   string `json:"code"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field names the request field at fault, where there is one.
	Field  string `json:"field"`
	Reason string `json:"reason"`
	Rule   string `json:"rule"`
	// Lines are the rejected lines of an import.
	Lines     []ErrorLine `json:"errors"`
	RequestID string      `json:"request_id"`
	// OAuthError is the RFC 6749 error code of a token endpoint refusal.
	OAuthError string `json:"error"`
	// RetryAfter is the Retry-After header (429, 503), when sent.
	RetryAfter time.Duration `json:"-"`
}

// ErrorLine is one rejected line of an import.
type ErrorLine struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

// Error is "STATUS code: detail".
func (e *Error) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Code)
	switch {
	case e.Detail != "":
		msg += ": " + e.Detail
	case e.Title != "":
		msg += ": " + e.Title
	}
	return msg
}

// IsCode reports whether err is a server refusal with the problem code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// CodeReceiptPending is the problem code (status 404, with Retry-After) of
// a record answered with a spooled receipt and not yet in the log: unlike
// not_found, the record exists and is served once the replica has
// integrated its spool.
const CodeReceiptPending = "receipt_pending"

// IsReceiptPending reports whether err is the refusal of a record that
// waits in a replica's evidence spool (CodeReceiptPending): ask again
// after the error's RetryAfter, rather than take it as no such record.
func IsReceiptPending(err error) bool { return IsCode(err, CodeReceiptPending) }

func decodeError(res *http.Response, raw []byte) error {
	e := &Error{}
	if json.Unmarshal(raw, e) != nil || e.Code == "" {
		e = &Error{Code: strings.ReplaceAll(strings.ToLower(http.StatusText(res.StatusCode)), " ", "_")}
		if e.Code == "" {
			e.Code = "http_" + res.Status
		}
	}
	e.Status = res.StatusCode
	if e.RequestID == "" {
		e.RequestID = res.Header.Get("X-Request-Id")
	}
	e.RetryAfter = RetryAfter(res.Header)
	return e
}

// RetryAfter is the wait an answer's header h asks for in Retry-After
// (RFC 9110 §10.2.3): delay-seconds, the form credgate sends, or an
// HTTP-date, counted from the answer's Date (the server's clock, so that
// skew between the clocks does not count) or, without one, from now. 0 when
// absent, malformed or already past. The header comes from whatever
// answered, a proxy included, so nothing but those two forms is read: "1x"
// or "-1" is no wait at all, not 1 s; a number of seconds too large for a
// Duration reads as the largest (OverloadWait bounds every wait anyway).
func RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, ok := delaySeconds(v); ok {
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	now := time.Now()
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return max(at.Sub(now), 0)
}

// delaySeconds reads RFC 9110's delay-seconds (1*DIGIT), saturating at
// math.MaxInt64 rather than failing on a long run of digits. (ParseInt
// alone would also take a sign.)
func delaySeconds(v string) (int64, bool) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil { // digits only: the one error left is ErrRange
		return math.MaxInt64, true
	}
	return n, true
}
