package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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
}

func (s *stalledSink) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.entered, s.release = true, make(chan struct{}), make(chan struct{})
}

func (s *stalledSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	s.mu.Lock()
	armed, entered, release := s.armed, s.entered, s.release
	s.mu.Unlock()
	if armed {
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
	var sink *stalledSink
	h := newHarness(t, func(c *harnessConfig) {
		c.gateway = append(c.gateway, gateway.WithCheckCapacity(1, 1))
		c.wrap = func(st service.Store) service.Store {
			sink = &stalledSink{Store: st}
			return sink
		}
	})
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

	close(sink.release)
	for range 2 {
		if st := <-statuses; st != http.StatusOK {
			t.Fatalf("an admitted check was answered %d", st)
		}
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", tok, string(body)); res.Status != http.StatusOK {
		t.Fatalf("check after the load: %d %s", res.Status, res.Body)
	}
}

// metrics is the /metrics page.
func (h *harness) metrics() string {
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
