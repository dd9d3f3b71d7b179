package faults

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/internal/testenv"
)

// spanLog reads, per trace, how long a server under test spent in each
// named span, from the spans it exports to a receiver. A test sends each
// request with a traceparent of its own trace, so that it can split a slow
// answer into its parts as the server timed them: the time a fault's
// component held it apart from a stall that every request shared (a slow
// commit on a loaded machine, say).
type spanLog struct {
	r      *testenv.SpanReceiver
	traces map[string]trace // as of the last index
}

// trace is what the server timed of one request.
type trace struct {
	// server is the request span's length: headers read to handler done.
	server time.Duration
	// byName is the summed length of each other span, by name.
	byName map[string]time.Duration
}

func newSpanLog(t *testing.T) *spanLog { return &spanLog{r: testenv.NewSpanReceiver(t)} }

// serverEnv is the env that makes a server send its spans here: every
// request traced, batches sent every 100 ms (the SDK's default is 5 s)
// from a queue long enough for a run of checks.
func (s *spanLog) serverEnv() []string {
	return []string{"CREDGATE_TRACING_EXPORTER=otlp-http", "CREDGATE_TRACING_ENDPOINT=" + s.r.URL(),
		"CREDGATE_TRACING_SAMPLE_RATIO=1", "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_BSP_MAX_QUEUE_SIZE=100000"}
}

// index groups the spans received so far by trace.
func (s *spanLog) index() error {
	all, err := s.r.Spans()
	s.traces = map[string]trace{}
	for _, sp := range all {
		id := hex.EncodeToString(sp.GetTraceId())
		tr, ok := s.traces[id]
		if !ok {
			tr = trace{byName: map[string]time.Duration{}}
		}
		d := time.Duration(sp.GetEndTimeUnixNano() - sp.GetStartTimeUnixNano())
		if sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			tr.server = d
		} else {
			tr.byName[sp.GetName()] += d
		}
		s.traces[id] = tr
	}
	return err
}

// lookup is what the server timed of trace id, as of the last index, once
// its request span came.
func (s *spanLog) lookup(id string) (trace, bool) {
	tr, ok := s.traces[id]
	return tr, ok && tr.server > 0
}

// await indexes the spans until every trace of ids has come, or fails the
// test.
func (s *spanLog) await(t *testing.T, ids []string, limit time.Duration) {
	t.Helper()
	eventually(t, "spans of every request", limit, func() error {
		if err := s.index(); err != nil {
			return err
		}
		missing := 0
		for _, id := range ids {
			if _, ok := s.lookup(id); !ok {
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

// figures is, over as, the longest time in the server, the longest hold
// and the longest waits on the database and on Redis.
func (s *spanLog) figures(as []answer) string {
	var longest, held, db, rd time.Duration
	for _, a := range as {
		if tr, ok := s.lookup(a.trace); ok {
			longest, held = max(longest, tr.server), max(held, tr.held())
			db, rd = max(db, tr.sum(dbWaits)), max(rd, tr.sum(redisCalls))
		}
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("longest %s, held %s, database %s, Redis %s", r(longest), r(held), r(db), r(rd))
}
