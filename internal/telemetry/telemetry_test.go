package telemetry_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/credgate/credgate/internal/telemetry"
	"github.com/credgate/credgate/internal/telemetry/spans"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	good := []telemetry.Config{
		{},
		telemetry.DefaultConfig(),
		{Exporter: telemetry.ExporterOTLPHTTP, Endpoint: "http://collector:4318", SampleRatio: 0.1},
		{Exporter: telemetry.ExporterOTLPGRPC, Endpoint: "https://collector.example:4317", SampleRatio: 1},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []telemetry.Config{
		{Exporter: "jaeger"},
		{Exporter: telemetry.ExporterOTLPHTTP, SampleRatio: 1.5},
		{Exporter: telemetry.ExporterOTLPHTTP, SampleRatio: -0.1},
		{Exporter: telemetry.ExporterOTLPHTTP, SampleRatio: math.NaN()},
		{Exporter: telemetry.ExporterOTLPHTTP, Endpoint: "collector:4318"},
		{Exporter: telemetry.ExporterOTLPHTTP, Endpoint: "ftp://collector"},
		{Exporter: telemetry.ExporterOTLPHTTP, Endpoint: "http://user:pw@collector:4318"},
	}
	for _, c := range bad {
		err := c.Validate()
		if !errors.Is(err, telemetry.ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c, err)
		}
		if _, err := telemetry.Setup(context.Background(), c); !errors.Is(err, telemetry.ErrInvalidConfig) {
			t.Errorf("Setup(%+v): %v, want ErrInvalidConfig", c, err)
		}
	}
}

// Off, the provider is one the components recognise and skip.
func TestOffIsNoop(t *testing.T) {
	t.Parallel()
	for _, c := range []telemetry.Config{{}, telemetry.DefaultConfig()} {
		tr, err := telemetry.Setup(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if spans.Tracer(tr.TracerProvider(), spans.ScopeService) != nil {
			t.Fatalf("%+v: tracing off yields a tracer", c)
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	got, span := spans.Start(ctx, nil, spans.Check)
	if got != ctx || span.IsRecording() {
		t.Fatal("a nil tracer starts a span")
	}
}

// kept is an in-memory exporter whose spans outlive the provider's
// shutdown (tracetest's forgets them then).
type kept struct{ *tracetest.InMemoryExporter }

func (kept) Shutdown(context.Context) error { return nil }

func TestSampleRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ratio float64
		want  int
	}{{0, 0}, {1, 50}} {
		exp := tracetest.NewInMemoryExporter()
		tr, err := telemetry.Setup(context.Background(), telemetry.Config{SampleRatio: tc.ratio}, telemetry.WithSpanExporter(kept{exp}))
		if err != nil {
			t.Fatal(err)
		}
		tracer := spans.Tracer(tr.TracerProvider(), spans.ScopeGateway)
		for range 50 {
			_, s := spans.Start(context.Background(), tracer, "request")
			s.End()
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(exp.GetSpans()); n != tc.want {
			t.Errorf("ratio %v: %d spans exported, want %d", tc.ratio, n, tc.want)
		}
	}
}

// With otlp-http the spans reach the collector's /v1/traces.
func TestOTLPHTTPExports(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	ctx := context.Background()
	tr, err := telemetry.Setup(ctx, telemetry.Config{Exporter: telemetry.ExporterOTLPHTTP, Endpoint: collector.URL, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, s := spans.Start(ctx, spans.Tracer(tr.TracerProvider(), spans.ScopeGateway), "request")
	s.End()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no span reached the collector")
	}
}

// The gRPC exporter is made without connecting: a collector that is down
// costs spans, never the start.
func TestOTLPGRPCStartsWithoutCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr, err := telemetry.Setup(ctx, telemetry.Config{Exporter: telemetry.ExporterOTLPGRPC, Endpoint: "http://127.0.0.1:1", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = tr.Shutdown(sctx) // nothing to flush; an unreachable collector may report an error
}
