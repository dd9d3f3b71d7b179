package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credgate/credgate/client"
)

// benchAnswerTimeout bounds a request's write and answer on a worker's
// connection, as the transport's ResponseHeaderTimeout did.
const benchAnswerTimeout = 30 * time.Second

// benchTarget is where the phases' workers send: the server's address, the
// Host header, the path prefix of --url and, for https, the TLS settings.
type benchTarget struct {
	addr   string
	host   string
	prefix string
	tls    *tls.Config // nil: plain HTTP
	// dial opens a connection to addr; nil: a net.Dialer's.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newBenchTarget(raw string) (benchTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return benchTarget{}, err
	}
	t := benchTarget{host: u.Host, prefix: strings.TrimRight(u.Path, "/"), addr: u.Host}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
		t.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return t, nil
}

// workerConn is a worker's own keep-alive connection. The phases' workers
// send on it directly rather than through http.Client: the transport hands
// each request to a writer goroutine and each answer back from a reader
// goroutine, three goroutines woken per request and a channel hand-off
// each way, on the cores the server is measured on. Here the worker
// writes the request and reads the answer itself; http.ReadResponse
// parses it.
type workerConn struct {
	// mu guards nc and watched, which only the worker holding the
	// connection writes, against the context watch, which reads them from
	// its own goroutine. The worker's own reads need no lock.
	mu      sync.Mutex
	nc      net.Conn
	br      *bufio.Reader
	wbuf    []byte
	watched context.Context // the context whose end ends the exchange
	unwatch func() bool
	// dialled: the last exchange dialled its connection (the first, or
	// again after a failure or the server's Connection: close).
	dialled bool
	// retryAfter: the last answer's Retry-After, when it was a 503.
	retryAfter time.Duration
}

// errAnswerTooLong: an answer longer than the exchange reads (benchMaxBody
// in the phases); its connection is dropped.
var errAnswerTooLong = errors.New("answer longer than the bench reads")

// exchange sends one POST of body to path with auth and reads the answer
// into buf (at most limit bytes), returning its status. The connection is
// dialled on first use and again after any failure, or once the server
// asks to close it.
func (c *workerConn) exchange(ctx context.Context, t *benchTarget, path, auth string, body []byte, buf *bytes.Buffer, limit int64) (int, error) {
	c.watch(ctx)
	c.dialled = false
	nc, br, err := c.connect(ctx, t)
	if err != nil {
		return 0, err
	}
	status, keep, err := c.roundTrip(ctx, nc, br, t, path, auth, body, buf, limit)
	if err != nil || !keep {
		c.drop(nc)
	}
	return status, err
}

func (c *workerConn) roundTrip(ctx context.Context, nc net.Conn, br *bufio.Reader, t *benchTarget, path, auth string, body []byte, buf *bytes.Buffer, limit int64) (int, bool, error) {
	deadline := time.Now().Add(benchAnswerTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	// After the deadline is set: a context ended since is seen here, or
	// its watch moves the deadline to the past after this point.
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	// The request in one write, built into a buffer kept from one request
	// to the next: only the token and the body change. Request.Write would
	// need a Request and its Header map per request, on the generator's
	// path, to write these same few lines.
	c.wbuf = append(c.wbuf[:0], "POST "...)
	c.wbuf = append(c.wbuf, t.prefix...)
	c.wbuf = append(c.wbuf, path...)
	c.wbuf = append(c.wbuf, " HTTP/1.1\r\nHost: "...)
	c.wbuf = append(c.wbuf, t.host...)
	c.wbuf = append(c.wbuf, "\r\nUser-Agent: credgate-bench\r\nContent-Type: application/json\r\nAuthorization: "...)
	c.wbuf = append(c.wbuf, auth...)
	c.wbuf = append(c.wbuf, "\r\nContent-Length: "...)
	c.wbuf = strconv.AppendInt(c.wbuf, int64(len(body)), 10)
	c.wbuf = append(c.wbuf, "\r\n\r\n"...)
	c.wbuf = append(c.wbuf, body...)
	if _, err := nc.Write(c.wbuf); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, err
	}
	c.retryAfter = 0
	if resp.StatusCode == http.StatusServiceUnavailable {
		c.retryAfter = client.RetryAfter(resp.Header)
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(buf.Len()) > limit {
		// Whatever is left of an answer this long is not read: the
		// connection cannot carry another request.
		err = errAnswerTooLong
	}
	resp.Body.Close()
	return resp.StatusCode, err == nil && !resp.Close, err
}

// connect returns the connection, dialling it first if there is none.
func (c *workerConn) connect(ctx context.Context, t *benchTarget) (net.Conn, *bufio.Reader, error) {
	nc, br := c.nc, c.br
	if nc != nil {
		return nc, br, nil
	}
	dial := t.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, nil, err
	}
	c.dialled = true
	if t.tls != nil {
		tc := tls.Client(nc, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		br.Reset(nc)
	}
	c.mu.Lock()
	c.nc, c.br = nc, br
	c.mu.Unlock()
	return nc, br, nil
}

// drop closes nc, the connection of a failed or closing exchange.
func (c *workerConn) drop(nc net.Conn) {
	c.mu.Lock()
	if c.nc == nc {
		c.nc = nil
	}
	c.mu.Unlock()
	nc.Close()
}

// watch makes ctx's end unblock the exchange under way, as a request's
// context does in http.Client: one watch per context, not per request.
func (c *workerConn) watch(ctx context.Context) {
	if c.watched == ctx {
		return
	}
	c.unwatchNow()
	c.mu.Lock()
	c.watched = ctx
	c.mu.Unlock()
	c.unwatch = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		// A watch that fires late, once the connection has passed to
		// another context (the next phase), leaves it alone.
		if c.watched == ctx && c.nc != nil {
			c.nc.SetDeadline(time.Unix(1, 0))
		}
	})
}

// unwatchNow stops the context watch, so that an idle connection does not
// hold on to the context of the phase that used it last, nor is cut when
// that context ends.
func (c *workerConn) unwatchNow() {
	if c.unwatch != nil {
		c.unwatch()
		c.unwatch = nil
	}
	c.mu.Lock()
	c.watched = nil
	c.mu.Unlock()
}

// close closes the connection and stops the watch.
func (c *workerConn) close() {
	c.unwatchNow()
	c.mu.Lock()
	nc := c.nc
	c.nc = nil
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}
