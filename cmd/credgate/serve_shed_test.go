package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve wires load shedding below HTTP: with one check slot, no queue and
// an accept pause of a minute from the first refusal, checks sent at once on several connections
// meet a refusal (503 overloaded, Retry-After, Connection: close, and the
// connection closed by the server); from then on a new connection to the
// partner port is not read from, not even for /healthz, while the admin
// listener still answers and shows the pause on /metrics; and stopping
// the server does not wait the pause out.
func TestServeShedsBelowHTTP(t *testing.T) {
	dataDir := t.TempDir()
	base, logs, stop := serveInProcess(t, dataDir, "--admin-addr", "127.0.0.1:0",
		"--checks-in-flight", "1", "--check-queue", "0", "--shed-accept-pause", "1m", "--shed-pause-after", "1")
	defer stop()
	admin := adminURL(t, logs.String())
	_, adminTok := adminToken(t, base, dataDir)
	tok := createPartner(t, base, adminTok, "government_procurement")
	addr := strings.TrimPrefix(base, "http://")
	body := `{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`
	request := fmt.Sprintf("POST /v1/checks HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, tok, len(body), body)

	// Eight connections, opened before any refusal, each sending checks
	// one after another until one of them is refused.
	conns := make([]net.Conn, 8)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type refusal struct {
		res   *http.Response
		after error // the next read on the connection
	}
	refused := make(chan refusal, len(conns))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			br := bufio.NewReader(c)
			for ctx.Err() == nil {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, request); err != nil {
					return
				}
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusServiceUnavailable {
					_, err := br.ReadByte()
					refused <- refusal{res, err}
					cancel()
					return
				}
				if res.StatusCode != http.StatusOK {
					t.Errorf("check answered %d", res.StatusCode)
					cancel()
					return
				}
			}
		})
	}
	var r refusal
	select {
	case r = <-refused:
	case <-ctx.Done():
		t.Fatal("no check was refused with one slot, no queue and eight connections sending")
	}
	wg.Wait()
	if r.res.Header.Get("Retry-After") != "1" || !r.res.Close {
		t.Errorf("refusal: Retry-After %q, Connection: close %v", r.res.Header.Get("Retry-After"), r.res.Close)
	}
	if !errors.Is(r.after, io.EOF) {
		t.Errorf("the refused connection was not closed by the server: %v", r.after)
	}

	// A new connection: the kernel completes it, serve does not read it.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/catalog HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if n, err := c.Read(make([]byte, 64)); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a connection opened in the pause was answered: %d bytes, %v", n, err)
	}

	// The operations listener is never paused, and says the partner port is.
	page := getBody(t, admin+"/metrics")
	for _, want := range []string{`(?m)^credgate_connections_accept_paused 1$`, `(?m)^credgate_connections_accept_pauses_total 1$`,
		`(?m)^credgate_checks_shed_total [1-9]`} {
		if !regexp.MustCompile(want).Match(page) {
			t.Errorf("/metrics on the admin listener lacks %s", want)
		}
	}

	// Shutdown ends the pause's wait: serveInProcess's stop fails the
	// test if serve has not returned within 20 s.
	start := time.Now()
	stop()
	t.Logf("serve stopped %s after the stop, in a pause of a minute", time.Since(start).Round(time.Millisecond))
}
