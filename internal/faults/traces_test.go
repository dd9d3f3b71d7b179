package faults

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/credgate/credgate/internal/telemetry/spans"
)

// spanLog is a trace collector for a server under test: an OTLP/HTTP
// receiver that keeps, per trace, how long the server spent in each named
// span. A test sends each request with a traceparent of its own trace, so
// that it can split a slow answer into its parts as the server timed them:
// the time a fault's component held it apart from a stall that every
// request shared (a slow commit on a loaded machine, say).
type spanLog struct {
	srv *httptest.Server

	mu     sync.Mutex
	traces map[string]*trace
	bad    error
}

// trace is what the server timed of one request.
type trace struct {
	// server is the request span's length: headers read to handler done.
	server time.Duration
	// byName is the summed length of each other span, by name.
	byName map[string]time.Duration
}

// serverEnv is the env that makes a server send its spans here: every
// request traced, batches sent every 100 ms (the SDK's default is 5 s)
// from a queue long enough for a run of checks.
func (s *spanLog) serverEnv() []string {
	return []string{"CREDGATE_TRACING_EXPORTER=otlp-http", "CREDGATE_TRACING_ENDPOINT=" + s.srv.URL,
		"CREDGATE_TRACING_SAMPLE_RATIO=1", "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_BSP_MAX_QUEUE_SIZE=100000"}
}

func newSpanLog(t *testing.T) *spanLog {
	s := &spanLog{traces: map[string]*trace{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.receive))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *spanLog) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad = fmt.Errorf("spans received: %w", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				tr := s.traces[id]
				if tr == nil {
					tr = &trace{byName: map[string]time.Duration{}}
					s.traces[id] = tr
				}
				d := time.Duration(sp.GetEndTimeUnixNano() - sp.GetStartTimeUnixNano())
				if sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
					tr.server = d
				} else {
					tr.byName[sp.GetName()] += d
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// trace is what the server timed of trace id, once its request span came.
func (s *spanLog) trace(id string) (trace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := s.traces[id]
	if tr == nil || tr.server == 0 {
		return trace{}, false
	}
	return *tr, true
}

// await waits until every trace of ids has come, or fails the test.
func (s *spanLog) await(t *testing.T, ids []string, limit time.Duration) {
	t.Helper()
	eventually(t, "spans of every request", limit, func() error {
		s.mu.Lock()
		bad := s.bad
		s.mu.Unlock()
		if bad != nil {
			return bad
		}
		missing := 0
		for _, id := range ids {
			if _, ok := s.trace(id); !ok {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d requests' spans not received", missing, len(ids))
		}
		return nil
	})
}

// newTraceparent is a W3C traceparent of a new sampled trace, and the
// trace's id.
func newTraceparent() (header, id string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:16])
	return "00-" + id + "-" + hex.EncodeToString(b[16:]) + "-01", id
}

// dbWaits are the spans of the check path that wait on the database.
var dbWaits = []string{spans.EvidenceAppend, spans.CacheStore, spans.Violations}

// redisCalls are the spans of the check path that wait on Redis.
var redisCalls = []string{spans.CacheRedis, spans.RateLimit}

// sum is the summed length of the spans named.
func (tr trace) sum(names []string) time.Duration {
	var d time.Duration
	for _, n := range names {
		d += tr.byName[n]
	}
	return d
}

// held is the request's time in the server less its waits on the
// database.
func (tr trace) held() time.Duration { return tr.server - tr.sum(dbWaits) }

func (tr trace) String() string {
	return fmt.Sprintf("in the server %s: database %s, Redis %s", tr.server.Round(time.Millisecond),
		tr.sum(dbWaits).Round(time.Millisecond), tr.sum(redisCalls).Round(time.Millisecond))
}

// figures is the longest time in the server of as, its longest hold, its
// longest waits on the database and on Redis.
func (s *spanLog) figures(as []answer) string {
	var most trace
	var held, db, rd time.Duration
	for _, a := range as {
		tr, ok := s.trace(a.trace)
		if !ok {
			continue
		}
		most.server = max(most.server, tr.server)
		held, db, rd = max(held, tr.held()), max(db, tr.sum(dbWaits)), max(rd, tr.sum(redisCalls))
	}
	return fmt.Sprintf("longest %s, held %s, database %s, Redis %s", most.server.Round(time.Millisecond),
		held.Round(time.Millisecond), db.Round(time.Millisecond), rd.Round(time.Millisecond))
}
