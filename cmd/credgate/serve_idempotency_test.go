package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/credgate/credgate/service"
)

// prunerFunc is a store's PruneIdempotencyKeys.
type prunerFunc func(ctx context.Context, before time.Time, limit int) (int64, error)

func (f prunerFunc) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	return f(ctx, before, limit)
}

// TestIdempotencySweepStartsAndStops: serve's sweep deletes at once, counts
// what it deleted in credgate_idempotency_keys_pruned_total, and stop
// returns only once it has ended (before the store closes).
func TestIdempotencySweepStartsAndStops(t *testing.T) {
	var calls, running atomic.Int64
	st := prunerFunc(func(ctx context.Context, _ time.Time, limit int) (int64, error) {
		running.Add(1)
		defer running.Add(-1)
		if calls.Add(1) == 1 {
			return int64(limit), nil // a full batch: the sweep goes on
		}
		return 3, nil
	})
	pruned := prometheus.NewCounter(prometheus.CounterOpts{Name: "pruned"})
	stop := runIdempotencySweep(t.Context(), st, pruned, slog.New(slog.DiscardHandler),
		service.WithIdempotencySweepBatch(10), service.WithIdempotencySweepInterval(time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if running.Load() != 0 {
		t.Fatal("a sweep still runs after stop")
	}
	n := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != n || n != 2 {
		t.Fatalf("%d statements, then %d after stop; want 2", n, calls.Load())
	}

	var m dto.Metric
	if err := pruned.Write(&m); err != nil || m.GetCounter().GetValue() != 13 {
		t.Fatalf("pruned counter %v, %v; want 13", m.GetCounter().GetValue(), err)
	}
	// A store that keeps no keys: nothing runs, stop returns.
	_, stop = startIdempotencySweep(t.Context(), struct{}{}, slog.New(slog.DiscardHandler))
	stop()
}
