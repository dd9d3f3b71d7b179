package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/internal/testenv"
)

func spanAttr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// Each lookup's span says which tier answered and whether the local tier
// had the subject, with the Redis and store reads as children; the
// subject is never recorded.
func TestTracingNamesTheTier(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("t"), WithReconcileInterval(time.Hour), WithTracerProvider(tp))
	subject := testenv.USCC(t, "91110000MA0000021")

	lookup(t, tier, subject) // a miss everywhere: the store answers and fills Redis
	waitFor(t, "the fill", 5*time.Second, func() bool { return tier.stats.fillsWritten.Load() == 1 })
	lookup(t, tier, subject) // a local hit
	tier.local.Invalidate(subject)
	lookup(t, tier, subject) // Redis answers

	got := exp.GetSpans()
	type want struct {
		tier     string
		hit      bool
		children []string
	}
	wants := []want{
		{spans.TierStore, false, []string{spans.CacheRedis, spans.CacheStore}},
		{spans.TierLocal, true, nil},
		{spans.TierRedis, false, []string{spans.CacheRedis}},
	}
	var lookups []tracetest.SpanStub
	for _, s := range got {
		if s.Name == spans.CacheLookup {
			lookups = append(lookups, s)
		}
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.String(), subject) {
				t.Errorf("span %s holds the subject in %s", s.Name, kv.Key)
			}
		}
	}
	if len(lookups) != len(wants) {
		t.Fatalf("%d lookup spans, want %d", len(lookups), len(wants))
	}
	for i, w := range wants {
		l := lookups[i]
		if tierV, hit := spanAttr(l, spans.CacheTier).AsString(), spanAttr(l, spans.CacheHit).AsBool(); tierV != w.tier || hit != w.hit {
			t.Errorf("lookup %d: tier %q hit %v, want %q %v", i, tierV, hit, w.tier, w.hit)
		}
		var children []string
		for _, s := range got {
			if s.Parent.SpanID() == l.SpanContext.SpanID() {
				children = append(children, s.Name)
			}
		}
		if strings.Join(children, ",") != strings.Join(w.children, ",") {
			t.Errorf("lookup %d: children %v, want %v", i, children, w.children)
		}
	}
	for _, s := range got {
		if s.Name == spans.CacheRedis && s.Parent.SpanID() == lookups[2].SpanContext.SpanID() && !spanAttr(s, spans.CacheHit).AsBool() {
			t.Error("the Redis read that answered is not marked a hit")
		}
	}
}

// A lookup the listed filter answers says so, and has no child: neither
// Redis nor the store was read.
func TestTracingNamesTheListedFilter(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0), WithTracerProvider(tp))
	waitListed(t, tier, 1)
	lookup(t, tier, testenv.USCC(t, "91110000MA0000023"))
	var lookups []tracetest.SpanStub
	got := exp.GetSpans()
	for _, s := range got {
		if s.Name == spans.CacheLookup {
			lookups = append(lookups, s)
		}
	}
	if len(lookups) != 1 {
		t.Fatalf("%d lookup spans, want 1", len(lookups))
	}
	l := lookups[0]
	if tierV, hit := spanAttr(l, spans.CacheTier).AsString(), spanAttr(l, spans.CacheHit).AsBool(); tierV != spans.TierListed || hit {
		t.Errorf("tier %q hit %v, want %q false", tierV, hit, spans.TierListed)
	}
	for _, s := range got {
		if s.Parent.SpanID() == l.SpanContext.SpanID() {
			t.Errorf("a filter answer has a child span %s", s.Name)
		}
	}
}

// With tracing off a local hit still allocates nothing.
// (AllocsPerRun refuses parallel tests.)
func TestLocalHitWithoutTracingDoesNotAllocate(t *testing.T) {
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000022")
	lookup(t, tier, subject)
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { _, _ = tier.LookupEntries(ctx, subject) }); n != 0 {
		t.Fatalf("a local hit allocates %v times", n)
	}
}
