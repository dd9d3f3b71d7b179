package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/credgate/credgate/service"
)

// DefaultMaxPages caps the pages of one HTTP snapshot.
const DefaultMaxPages = 1000

// httpGetter fetches a URL with fixed headers and a size cap.
type httpGetter struct {
	client   *http.Client
	headers  http.Header
	maxBytes int64
}

// HTTPOption configures an HTTP source or URL feed.
type HTTPOption func(*httpGetter, *HTTPSource)

// WithHeader sends a header with every request (for example the
// upstream's token). Header values are never logged.
func WithHeader(name, value string) HTTPOption {
	return func(g *httpGetter, _ *HTTPSource) { g.headers.Add(name, value) }
}

// WithHTTPClient sets the client (default: one with no overall timeout;
// the runner bounds each attempt).
func WithHTTPClient(c *http.Client) HTTPOption {
	return func(g *httpGetter, _ *HTTPSource) { g.client = c }
}

// WithMaxBytes caps each payload (default 64 MiB).
func WithMaxBytes(n int64) HTTPOption {
	return func(g *httpGetter, _ *HTTPSource) {
		if n > 0 {
			g.maxBytes = n
		}
	}
}

// WithMaxPages caps the pages of an HTTP source's snapshot (default 1000).
func WithMaxPages(n int) HTTPOption {
	return func(_ *httpGetter, s *HTTPSource) {
		if s != nil && n > 0 {
			s.maxPages = n
		}
	}
}

func newGetter(opts []HTTPOption, s *HTTPSource) httpGetter {
	g := httpGetter{client: &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 60 * time.Second,
	}}, headers: http.Header{}, maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		o(&g, s)
	}
	return g
}

// get fetches u. Transport failures, timeouts, 408, 429 and 5xx are
// transient; other non-200 answers are ErrUpstreamRefused.
func (g *httpGetter) get(ctx context.Context, u *url.URL) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", redact(u), cleanErr(err))
	}
	for k, vs := range g.headers {
		req.Header[k] = vs
	}
	res, err := g.client.Do(req)
	if err != nil {
		return nil, nil, transient("GET %s: %w", redact(u), cleanErr(err))
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusOK:
	case res.StatusCode == http.StatusRequestTimeout, res.StatusCode == http.StatusTooManyRequests, res.StatusCode >= 500:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil, nil, transient("GET %s: %s", redact(u), res.Status)
	default:
		return nil, nil, fmt.Errorf("%w: GET %s: %s", ErrUpstreamRefused, redact(u), res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, g.maxBytes+1))
	if err != nil {
		return nil, nil, transient("GET %s: reading the body: %w", redact(u), cleanErr(err))
	}
	if int64(len(b)) > g.maxBytes {
		return nil, nil, fmt.Errorf("%w: GET %s: more than %d bytes", ErrPayloadTooLarge, redact(u), g.maxBytes)
	}
	return b, res.Header, nil
}

// HTTPSource is an upstream platform's API returning JSON records, mapped
// onto entries by a Mapping, possibly over several pages.
type HTTPSource struct {
	url      *url.URL
	mapping  *Mapping
	getter   httpGetter
	maxPages int
}

// NewHTTPSource returns a source reading rawURL (http or https) with m.
func NewHTTPSource(rawURL string, m *Mapping, opts ...HTTPOption) (*HTTPSource, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("upstream: the URL must be an absolute http(s) URL")
	}
	if m == nil {
		return nil, fmt.Errorf("%w: none", ErrInvalidMapping)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	s := &HTTPSource{url: u, mapping: m, maxPages: DefaultMaxPages}
	s.getter = newGetter(opts, s)
	return s, nil
}

// Fetch reads every page and maps every record. Records that cannot be
// mapped reject the snapshot (a *service.SnapshotError listing them).
func (s *HTTPSource) Fetch(ctx context.Context) ([]service.SourceItem, error) {
	var (
		items []service.SourceItem
		bad   []service.LineError
	)
	u := s.url
	for page := 0; ; page++ {
		if page == s.maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrMalformed, s.maxPages)
		}
		body, _, err := s.getter.get(ctx, u)
		if err != nil {
			return nil, err
		}
		p, err := s.mapping.MapRecords(body, len(items)+len(bad)+1)
		if err != nil {
			return nil, fmt.Errorf("page %d of %s: %w", page+1, redact(s.url), err)
		}
		items, bad = append(items, p.Items...), append(bad, p.Bad...)
		if len(items)+len(bad) > service.MaxSourceItems {
			return nil, fmt.Errorf("%w: more than %d records", service.ErrSnapshotTooLarge, service.MaxSourceItems)
		}
		if p.Next == "" {
			break
		}
		next, err := u.Parse(p.Next)
		if err != nil {
			return nil, fmt.Errorf("%w: page %d: the next page link is not a URL", ErrMalformed, page+1)
		}
		// Never send the source's credentials elsewhere.
		if next.Scheme != s.url.Scheme || next.Host != s.url.Host {
			return nil, fmt.Errorf("%w: page %d: the next page is on another host", ErrMalformed, page+1)
		}
		u = next
	}
	if len(bad) > 0 {
		return nil, &service.SnapshotError{Lines: bad}
	}
	return items, nil
}
