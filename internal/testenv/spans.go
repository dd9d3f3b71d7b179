package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// SpanReceiver is an OTLP/HTTP trace collector for tests that run
// credgate with --tracing-exporter otlp-http: it keeps every body posted
// to /v1/traces as sent, and the spans decoded from them.
type SpanReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies [][]byte
	spans  []*tracepb.Span
	err    error // the first body that was no OTLP protobuf
}

// NewSpanReceiver starts a receiver, closed when the test ends.
func NewSpanReceiver(tb testing.TB) *SpanReceiver {
	r := &SpanReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.receive))
	tb.Cleanup(r.srv.Close)
	return r
}

// URL is the receiver's base URL, the --tracing-endpoint to give.
func (r *SpanReceiver) URL() string { return r.srv.URL }

func (r *SpanReceiver) receive(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	var msg coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &msg)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.err == nil {
			r.err = fmt.Errorf("spans received: %w", err)
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.bodies = append(r.bodies, body)
	for _, rs := range msg.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// Raw is every body received, joined: for a test that a value appears
// nowhere in what was exported.
func (r *SpanReceiver) Raw() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Join(r.bodies, nil)
}

// Spans is every span received so far, and the first error decoding a
// body.
func (r *SpanReceiver) Spans() ([]*tracepb.Span, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans), r.err
}
