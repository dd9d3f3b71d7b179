package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// stalledSink, once armed, holds every evidence commit until released, so
// that checks stay in progress; before, commits (the harness's own acts)
// pass.
type stalledSink struct {
	service.Store
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	// stalled counts the commits held since arm.
	stalled atomic.Int64
	freed   sync.Once
}

func (s *stalledSink) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.entered, s.release = true, make(chan struct{}), make(chan struct{})
}

// free releases the held commits, once (a test that fails early must
// still let the store close).
func (s *stalledSink) free() { s.freed.Do(func() { close(s.release) }) }

func (s *stalledSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	s.mu.Lock()
	armed, entered, release := s.armed, s.entered, s.release
	s.mu.Unlock()
	if armed {
		s.stalled.Add(1)
		s.once.Do(func() { close(entered) })
		<-release
	}
	return s.Store.AppendBatch(ctx, recs)
}

// TestChecksPastCapacityAreShed: with one check in progress and one
// waiting (capacity 1, queue 1), the next is answered 503 overloaded with
// Retry-After at once, before authentication and the quota (no RateLimit
// headers: nothing was charged); the two admitted are answered when the
// store catches up, and so are checks after.
func TestChecksPastCapacityAreShed(t *testing.T) {
	t.Parallel()
	h, sink := shedHarness(t)
	// Creating the partner records an act through the same sink, which
	// stalls only from here on.
	_, tok := h.partner("shed bank", "government_procurement")
	sink.arm()
	body := []byte(`{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`)

	send := func() int {
		req := httptest.NewRequest(http.MethodPost, "/v1/checks", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		return rec.Code
	}
	statuses := make(chan int, 2)
	go func() { statuses <- send() }()
	<-sink.entered // the first check holds the one slot
	go func() { statuses <- send() }()

	// The second waits in the queue; once it does, the next is shed.
	for !strings.Contains(h.metrics(), "credgate_checks_waiting 1") {
		time.Sleep(time.Millisecond)
	}
	res := h.doJSON(http.MethodPost, "/v1/checks", tok, string(body))
	problemCode(t, res, http.StatusServiceUnavailable, "overloaded")
	if got := res.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := res.Header.Get("RateLimit-Remaining"); got != "" {
		t.Errorf("a shed check was charged to the quota (RateLimit-Remaining %s)", got)
	}
	// A batch shares the same slots.
	batch := h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{
		"action": "government_procurement", "subjects": []map[string]string{{"id": "914403001922038216"}}})
	problemCode(t, batch, http.StatusServiceUnavailable, "overloaded")

	sink.free()
	for range 2 {
		if st := <-statuses; st != http.StatusOK {
			t.Fatalf("an admitted check was answered %d", st)
		}
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", tok, string(body)); res.Status != http.StatusOK {
		t.Fatalf("check after the load: %d %s", res.Status, res.Body)
	}
}

// TestShedsAtOnceAndQueueStaysBounded: with the one slot held by a
// stalled commit and the one queue place taken, 64 more checks sent at
// once are all answered 503 while the commit is still held, so none of
// them waited for a slot: the queue never holds more than its one check
// (checked throughout), exactly one check ever queued (a refusal that
// waited first would count), and nothing else reached the store. Refused
// checks need no token (shedding runs before authentication), and a
// client refused over and over keeps its one connection.
func TestShedsAtOnceAndQueueStaysBounded(t *testing.T) {
	t.Parallel()
	h, sink := shedHarness(t)
	_, tok := h.partner("shed bank", "government_procurement")
	sink.arm()
	t.Cleanup(sink.free) // before the harness closes the store
	body := []byte(`{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`)
	send := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/checks", bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		return rec
	}
	admitted := make(chan int, 2)
	go func() { admitted <- send(tok).Code }()
	<-sink.entered
	go func() { admitted <- send(tok).Code }()
	for metricValue(t, h.metrics(), "credgate_checks_waiting") != 1 {
		time.Sleep(time.Millisecond)
	}

	const extra = 64
	refused := make(chan *httptest.ResponseRecorder, extra)
	for k := range extra {
		token := tok
		if k%2 == 1 {
			token = "" // no token: refused before authentication all the same
		}
		go func() { refused <- send(token) }()
	}
	// Until every one of them is answered, the commit stays held: an
	// answer can only be a refusal that did not wait for a slot. A queue
	// that stopped being bounded shows here as more than one waiting.
	for got := 0; got < extra; {
		select {
		case rec := <-refused:
			got++
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
				t.Fatalf("a check past capacity was answered %d (Retry-After %q): %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["code"] != "overloaded" || p["status"] != float64(503) ||
				p["instance"] != "/v1/checks" || p["request_id"] != rec.Header().Get("X-Request-Id") {
				t.Fatalf("refusal %s (%v)", rec.Body, err)
			}
		default:
			if w := metricValue(t, h.metrics(), "credgate_checks_waiting"); w > 1 {
				t.Fatalf("%v checks waiting with a queue of 1: the queue is not bounded", w)
			}
			time.Sleep(time.Millisecond)
		}
	}
	page := h.metrics()
	if n := metricValue(t, page, "credgate_checks_shed_total"); n != extra {
		t.Errorf("credgate_checks_shed_total %v, want %d", n, extra)
	}
	if n := metricValue(t, page, "credgate_checks_queued_total"); n != 1 {
		t.Errorf("credgate_checks_queued_total %v, want 1: a refused check waited for a slot first", n)
	}
	if n := sink.stalled.Load(); n != 1 {
		t.Errorf("%d commits reached the store while it was held, want the first check's only", n)
	}

	// Over a real connection: refusals keep it open (no Connection: close),
	// so a caller retrying after Retry-After does not reconnect.
	ts := httptest.NewUnstartedServer(h.handler)
	var conns atomic.Int64
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	reused := 0
	const sequential = 20
	for range sequential {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				reused++
			}
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodPost, ts.URL+"/v1/checks", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || res.Close {
			t.Fatalf("over HTTP: %d, Connection: close %v", res.StatusCode, res.Close)
		}
	}
	if n := conns.Load(); n != 1 || reused != sequential-1 {
		t.Errorf("%d refusals took %d connections (%d reused), want one", sequential, n, reused)
	}

	sink.free()
	for range 2 {
		if st := <-admitted; st != http.StatusOK {
			t.Fatalf("an admitted check was answered %d", st)
		}
	}
	if n := metricValue(t, h.metrics(), "credgate_checks_waiting"); n != 0 {
		t.Errorf("credgate_checks_waiting %v after the load, want 0", n)
	}
}

// metricValue is the value of an unlabelled metric on a /metrics page.
func metricValue(t *testing.T, page, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s on the metrics page", name)
	return 0
}

// metrics is the /metrics page.
func (h *harness) metrics() string {
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// TestConnectionsPastTheLimitAreClosed: with two connections open (kept
// alive), a third is closed before anything is read from it, and counted;
// the two open ones keep being answered, and once one closes a new one is
// taken.
func TestConnectionsPastTheLimitAreClosed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := gateway.LimitConnections(ln, 2, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(limit) }()
	defer srv.Close()

	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			return fmt.Errorf("answer %q", buf[:n])
		}
		return nil
	}
	dial := func() net.Conn { return dialTCP(t, ln.Addr().String()) }
	a, b := dial(), dial()
	for _, c := range []net.Conn{a, b} {
		if err := get(c); err != nil {
			t.Fatalf("a connection within the limit: %v", err)
		}
	}
	if err := get(dial()); err == nil {
		t.Fatal("a third connection was answered past a limit of two")
	}
	if n := limit.Refused(); n != 1 {
		t.Errorf("Refused %d, want 1", n)
	}
	if err := get(a); err != nil {
		t.Fatalf("an open connection after the refusal: %v", err)
	}
	b.Close()
	// The server sees b closed when its read returns; until then a new
	// connection may still be refused, so dial until one is taken.
	for {
		if err := get(dial()); err == nil {
			break
		}
		if limit.Refused() > 1000 {
			t.Fatal("no connection taken after one of the two closed")
		}
	}
	if n := limit.Open(); n != 2 {
		t.Errorf("Open %d, want 2", n)
	}
}

// TestServerConnectionLimitMetrics: the server's own connection limit
// puts the connections open, the limit and the refusals on /metrics, the
// only place an operator sees a refusal that closed a connection unread
// (its caller gets no 503).
func TestServerConnectionLimitMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := h.server.LimitConnections(ln, 2)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h.handler}
	go func() { _ = hs.Serve(limit) }()
	defer hs.Close()
	const healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for range 2 {
		c := dialTCP(t, ln.Addr().String())
		if res, err := rawExchange(c, healthz); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("a connection within the limit: %v %v", res, err)
		}
	}
	if res, err := rawExchange(dialTCP(t, ln.Addr().String()), healthz); err == nil {
		t.Fatalf("a third connection was answered past a limit of two: %d", res.StatusCode)
	}
	page := h.metrics()
	for name, want := range map[string]float64{
		"credgate_connections_open": 2, "credgate_connections_max": 2, "credgate_connections_refused_total": 1,
	} {
		if v := metricValue(t, page, name); v != want {
			t.Errorf("%s %v, want %v", name, v, want)
		}
	}
	// One limit per server: its metrics are registered once.
	if _, err := h.server.LimitConnections(ln, 2); err == nil {
		t.Error("a second limit on the same server registered its metrics again")
	}
}

// shedHarness is a gateway with one check slot and one queue place whose
// evidence commits stall, once armed, until freed.
func shedHarness(t *testing.T) (*harness, *stalledSink) {
	t.Helper()
	var sink *stalledSink
	h := newHarness(t, func(c *harnessConfig) {
		c.gateway = append(c.gateway, gateway.WithCheckCapacity(1, 1))
		c.wrap = func(st service.Store) service.Store {
			sink = &stalledSink{Store: st}
			return sink
		}
	})
	return h, sink
}

// TestRefusalBeforeTheRouter: a check past capacity is answered before the
// gin router sees it, so before the middleware it runs first: a body sent
// as text/plain is refused 503 overloaded, not 415. The refusal is still
// the whole answer — the caller's request ID echoed (or a new one), the
// problem document valid against openapi.yaml with its Content-Length,
// Retry-After — and is counted in the request metrics under the route
// the router gives the path, the same series as its own answers there.
// Only POSTs to the two check paths are refused there. And it allocates
// almost nothing: through the router it took 14 allocations.
func TestRefusalBeforeTheRouter(t *testing.T) {
	// Not parallel: AllocsPerRun.
	srv, release := fullServer(t)
	h := srv.Handler()
	ts := httptest.NewServer(h)
	defer ts.Close()
	body := []byte(`{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`)

	send := func(method, path, contentType, requestID string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		validateContract(t, method, path, contentType, body, res.StatusCode, res.Header, b)
		return res, b
	}
	refused := func(path, contentType, requestID string) {
		t.Helper()
		res, b := send(http.MethodPost, path, contentType, requestID)
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil || res.StatusCode != http.StatusServiceUnavailable || p["code"] != "overloaded" {
			t.Fatalf("POST %s past capacity: %d %s (%v)", path, res.StatusCode, b, err)
		}
		id := res.Header.Get("X-Request-Id")
		if (requestID != "" && id != requestID) || len(id) == 0 || p["request_id"] != id || p["instance"] != path {
			t.Errorf("POST %s: request ID %q (sent %q), document %s", path, id, requestID, b)
		}
		if res.Header.Get("Retry-After") != "1" || res.ContentLength != int64(len(b)) {
			t.Errorf("POST %s: Retry-After %q, Content-Length %d for %d bytes", path, res.Header.Get("Retry-After"), res.ContentLength, len(b))
		}
	}
	refused("/v1/checks", "text/plain", "caller-id.1")
	refused("/v1/checks:batch", "application/json", "")
	// Not a check: the router answers (no token: 401; no such route: 404).
	if res, b := send(http.MethodGet, "/v1/checks/chk_1", "", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/checks/chk_1 at capacity: %d %s", res.StatusCode, b)
	}
	if res, b := send(http.MethodPost, "/v1/checks/", "application/json", ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/checks/ at capacity: %d %s", res.StatusCode, b)
	}

	// With a slot free, the router answers a batch (401: no token) and
	// records it under its route label, which the refusal's must share.
	release()
	if res, b := send(http.MethodPost, "/v1/checks:batch", "application/json", ""); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a batch within capacity without a token: %d %s", res.StatusCode, b)
	}
	res, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var batchRoutes []string
	counts := map[string]string{}
	for _, line := range strings.Split(string(page), "\n") {
		rest, ok := strings.CutPrefix(line, "credgate_http_request_duration_seconds_count{")
		if !ok || !strings.Contains(rest, `method="POST"`) {
			continue
		}
		labels, n, _ := strings.Cut(rest, "} ")
		counts[labels] = n
		if strings.Contains(labels, "batch") {
			batchRoutes = append(batchRoutes, labels)
		}
	}
	if n := counts[`method="POST",route="/v1/checks",status="503"`]; n != "1" {
		t.Errorf("refusals of /v1/checks in the request metrics: %q, want 1 (%v)", n, counts)
	}
	if len(batchRoutes) != 2 || strings.Replace(batchRoutes[0], `status="401"`, `status="503"`, 1) != batchRoutes[1] {
		t.Errorf("batch series %q: the refusal's route label is not the router's", batchRoutes)
	}
	// Allocations of one refusal in the handler, the request reused.
	gateway.HoldCheckSlots(srv)
	req := httptest.NewRequest(http.MethodPost, "/v1/checks", nil)
	w := &refusalWriter{header: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.header)
		w.status = 0
		h.ServeHTTP(w, req)
	})
	if w.status != http.StatusServiceUnavailable || allocs > 3 {
		t.Errorf("a refusal: status %d, %v allocations, want 503 and at most 3 (the request ID and its header)", w.status, allocs)
	}
}

// fullServer is a server with one check slot and no queue, the slot held
// until release is called: every check is refused for capacity. It has no
// store: a refusal reaches none.
func fullServer(tb testing.TB) (*gateway.Server, func()) {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	srv := gateway.New(nil, nil, nil, access.NewTokens(key), gateway.WithCheckCapacity(1, 0))
	return srv, gateway.HoldCheckSlots(srv)
}

// TestRefusalsPauseAccepting: with WithShedAcceptPause, a check refused
// for capacity over a real connection is answered 503 with Retry-After
// and Connection: close, and the server closes that connection; from
// then on, for the pause, a ConnLimit gated by the server accepts no new
// connection (one dialled gets no answer, not even to /healthz, while
// the pause holds), the gauge says so, and closing the server ends the
// wait at once. Before any refusal, connections are accepted as usual.
func TestRefusalsPauseAccepting(t *testing.T) {
	t.Parallel()
	var sink *stalledSink
	h := newHarness(t, func(c *harnessConfig) {
		c.gateway = append(c.gateway, gateway.WithCheckCapacity(1, 0), gateway.WithShedAcceptPause(time.Hour, 1))
		c.wrap = func(st service.Store) service.Store {
			sink = &stalledSink{Store: st}
			return sink
		}
	})
	_, tok := h.partner("paused bank", "government_procurement")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := gateway.LimitConnections(ln, 16, nil, gateway.WithAcceptGate(h.server))
	hs := &http.Server{Handler: h.handler}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(limit) }()
	dial := func() net.Conn { return dialTCP(t, ln.Addr().String()) }
	const healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

	a := dial()
	if res, err := rawExchange(a, healthz); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("before any refusal: %v %v", res, err)
	}
	if p := h.server.AcceptPause(); p != 0 {
		t.Fatalf("AcceptPause %v before any refusal", p)
	}

	sink.arm()
	t.Cleanup(sink.free)
	body := `{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`
	admitted := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/v1/checks", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		admitted <- rec.Code
	}()
	<-sink.entered // the one slot is held; no queue

	res, err := rawExchange(a, fmt.Sprintf("POST /v1/checks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" || !res.Close {
		t.Fatalf("refusal: %d, Retry-After %q, Connection: close %v", res.StatusCode, res.Header.Get("Retry-After"), res.Close)
	}
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := a.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the refused connection was not closed by the server: read %d, %v", n, err)
	}
	if p := h.server.AcceptPause(); p < 59*time.Minute {
		t.Fatalf("AcceptPause %v after a refusal, want about an hour", p)
	}
	page := h.metrics()
	if v := metricValue(t, page, "credgate_connections_accept_paused"); v != 1 {
		t.Errorf("credgate_connections_accept_paused %v during the pause", v)
	}
	if v := metricValue(t, page, "credgate_connections_accept_pauses_total"); v != 1 {
		t.Errorf("credgate_connections_accept_pauses_total %v after one pause began", v)
	}

	// The kernel completes the handshake, but nobody reads the request.
	b := dial()
	if _, err := io.WriteString(b, healthz); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
		t.Fatalf("a connection dialled during the pause was read from: %d bytes, %v", n, err)
	}
	if limit.Paused() < 1 {
		t.Errorf("Paused %d during the pause", limit.Paused())
	}

	sink.free()
	if st := <-admitted; st != http.StatusOK {
		t.Errorf("the admitted check was answered %d", st)
	}
	// Shutdown does not wait out the pause.
	if err := hs.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still waiting out the pause after Close")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestAcceptPauseRunsFromARefusal: a refusal starts a pause of
// WithShedAcceptPause; a refusal during it does not extend it, nor does
// one in the window after it (a twentieth of it) start another, so the
// connections that waited are all accepted; one after the window does.
// Asked to pause after more than one, refusals start a pause only as
// many within a tenth of it. None without the option.
func TestAcceptPauseRunsFromARefusal(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond
	on := gateway.New(nil, nil, nil, nil, gateway.WithShedAcceptPause(time.Second, 1))
	if got := gateway.AcceptPauseAt(on, t0); got != 0 {
		t.Fatalf("before any refusal: pause %v", got)
	}
	for _, step := range []struct {
		refuse bool
		at     time.Duration
		want   time.Duration
	}{
		{true, 0, time.Second},
		{false, 300 * ms, 700 * ms},
		{true, 500 * ms, 500 * ms},     // not extended
		{false, 1000 * ms, 0},          // over
		{true, 1020 * ms, 0},           // in the window: no new pause
		{false, 1040 * ms, 0},          //
		{true, 1050 * ms, time.Second}, // past the window: a new pause
		{false, 1550 * ms, 500 * ms},   //
		{false, time.Hour, 0},          //
	} {
		if step.refuse {
			gateway.RefusedAt(on, at(step.at))
		}
		if got := gateway.AcceptPauseAt(on, at(step.at)); got != step.want {
			t.Errorf("at %v (refusal %v): pause %v, want %v", step.at, step.refuse, got, step.want)
		}
	}
	// With a pause after three refusals within a tenth of it (100 ms):
	// three spread over more than that start none; three within it do.
	three := gateway.New(nil, nil, nil, nil, gateway.WithShedAcceptPause(time.Second, 3))
	for _, step := range []struct {
		at   time.Duration
		want time.Duration
	}{
		{0, 0}, {60 * ms, 0}, {120 * ms, 0}, // the third is in a span of its own
		{150 * ms, 0}, {200 * ms, time.Second}, // the third of 120 ms's span
		{700 * ms, 500 * ms},
	} {
		gateway.RefusedAt(three, at(step.at))
		if got := gateway.AcceptPauseAt(three, at(step.at)); got != step.want {
			t.Errorf("pausing after three: refusal at %v: pause %v, want %v", step.at, got, step.want)
		}
	}
	// The options apply whatever their order: a capacity set after the
	// pause keeps the pause.
	for _, opts := range [][]gateway.Option{
		{gateway.WithShedAcceptPause(time.Second, 1), gateway.WithCheckCapacity(4, 4)},
		{gateway.WithCheckCapacity(4, 4), gateway.WithShedAcceptPause(time.Second, 1)},
	} {
		s := gateway.New(nil, nil, nil, nil, opts...)
		gateway.RefusedAt(s, t0)
		if got := gateway.AcceptPauseAt(s, t0); got != time.Second {
			t.Errorf("capacity and pause in either order: pause %v, want 1s", got)
		}
	}
	off := gateway.New(nil, nil, nil, nil)
	gateway.RefusedAt(off, t0)
	if got := gateway.AcceptPauseAt(off, t0); got != 0 {
		t.Errorf("without the option: pause %v", got)
	}
}

// pauseOnce is a gate that asks for one pause of d, then none.
type pauseOnce struct {
	d     time.Duration
	asked atomic.Int64
}

func (g *pauseOnce) AcceptPause() time.Duration {
	if g.asked.Add(1) == 1 {
		return g.d
	}
	return 0
}

// TestConnLimitWaitsOutItsGate: a connection dialled while the gate asks
// for a pause is accepted and answered once it ends (the gate asked
// again first), and the pause is counted.
func TestConnLimitWaitsOutItsGate(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &pauseOnce{d: 50 * time.Millisecond}
	limit := gateway.LimitConnections(ln, 2, nil, gateway.WithAcceptGate(gate))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(limit) }()
	defer srv.Close()
	c := dialTCP(t, ln.Addr().String())
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	res, err := rawExchange(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("after the pause: %v %v", res, err)
	}
	if n := limit.Paused(); n != 1 {
		t.Errorf("Paused %d, want 1", n)
	}
	if n := gate.asked.Load(); n < 2 {
		t.Errorf("the gate was asked %d times: accepted without asking again after the pause", n)
	}
}

// dialTCP is a connection to addr, closed when the test ends.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawExchange writes req, a whole HTTP/1.1 request, on c and reads the
// answer, its body discarded.
func rawExchange(c net.Conn, req string) (*http.Response, error) {
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, nil
}
