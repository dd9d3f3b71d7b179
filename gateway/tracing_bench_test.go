package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/service"
)

// memSink commits evidence batches in memory: the benchmark below
// measures the check path's CPU, not the disk.
type memSink struct {
	mu   sync.Mutex
	next uint64
}

func (m *memSink) AppendBatch(_ context.Context, recs []evidence.Record) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := m.next
	m.next += uint64(len(recs))
	return first, nil
}

// noEntries is a subject on no list.
type noEntries struct{}

func (noEntries) LookupEntries(context.Context, string) (service.Lookup, error) {
	return service.Lookup{}, nil
}

// BenchmarkCheckTracing measures what tracing costs one check through the
// gateway (authentication with a cached token, rate limit, lookup,
// decision, evidence, receipt), with the entries and the evidence log in
// memory so that nothing but the check path's CPU is timed:
//
//   - off: no tracer provider (the default);
//   - noop_provider: a no-op provider, as telemetry.Setup returns when
//     tracing is off; it must cost what off costs;
//   - sdk_no_exporter: the SDK recording every span and exporting none,
//     the cost of tracing on before the exporter's.
//
// Run: go test -run '^$' -bench BenchmarkCheckTracing -benchtime 20000x -count 3 ./gateway
func BenchmarkCheckTracing(b *testing.B) {
	for _, tc := range []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return nil }},
		{"noop_provider", func() trace.TracerProvider { return noop.NewTracerProvider() }},
		{"sdk_no_exporter", func() trace.TracerProvider { return sdktrace.NewTracerProvider() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cat, st := sqlitetest.Open(b)
			app := evidence.NewAppender(&memSink{})
			b.Cleanup(app.Close)
			bp := newBenchPartner(b, st, cat, "bank_credit", "1000000000-S")
			partners, tokens, p, cred := bp.partners, bp.tokens, bp.partner, bp.cred
			var gopts []gateway.Option
			var copts []service.CheckerOption
			if tp := tc.tp(); tp != nil {
				gopts = append(gopts, gateway.WithTracerProvider(tp))
				copts = append(copts, service.WithTracerProvider(tp))
			}
			srv := gateway.New(service.NewChecker(cat, noEntries{}, app, st, copts...), service.NewEntries(st, cat), partners, tokens, gopts...)
			h := srv.Handler()
			tok, err := tokens.Issue(p.ClientID, string(p.Role), cred)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := json.Marshal(checkBody("914403001922038216", "bank_credit"))
			check := func() {
				req := httptest.NewRequest(http.MethodPost, "/v1/checks", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("check: %d %s", rec.Code, rec.Body)
				}
			}
			check() // the token verified once, then cached
			b.ReportAllocs()
			for b.Loop() {
				check()
			}
		})
	}
}
