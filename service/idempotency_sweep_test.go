package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestIdempotencySweep: the sweep deletes the mappings of keys past their
// lifetime (a key then records anew, as it did before the sweep) and keeps
// the younger ones, whose checks and batches still replay after it; it
// reports what it deleted, and with nothing to delete deletes nothing.
func TestIdempotencySweep(t *testing.T) {
	eachReopenedStore(t, func(t *testing.T, open func() testStore) {
		ctx := context.Background()
		var now atomic.Int64
		now.Store(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixNano())
		w := newIdemWorld(t, open(), &now)
		clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
		var reported atomic.Int64
		sweeper := service.NewIdempotencySweeper(w.store.(service.IdempotencyPruner), service.WithIdempotencySweepClock(clock),
			service.WithIdempotencySweepBatch(2), service.WithIdempotencyPruned(func(n int64) { reported.Add(n) }))

		// Old keys: three checks alone and a batch of two.
		for _, k := range []string{"old-1", "old-2", "old-3"} {
			if _, err := w.checker.Check(ctx, idemCaller, idemRequest(k)); err != nil {
				t.Fatal(err)
			}
		}
		batch := service.BatchRequest{Subjects: []string{"91350100M000100Y43", testenv.USCC(t, "91110000MA0000301")}, Action: "bank_credit",
			IdempotencyKey: "old-batch"}
		if _, err := w.checker.CheckBatch(ctx, idemCaller, batch); err != nil {
			t.Fatal(err)
		}
		now.Add(int64(service.IdempotencyKeyRetention))
		// Young ones, an hour before the sweep.
		young, err := w.checker.Check(ctx, idemCaller, idemRequest("young"))
		if err != nil {
			t.Fatal(err)
		}
		batch.IdempotencyKey = "young-batch"
		youngBatch, err := w.checker.CheckBatch(ctx, idemCaller, batch)
		if err != nil {
			t.Fatal(err)
		}
		now.Add(int64(time.Hour + time.Minute))

		n, err := sweeper.Sweep(ctx)
		if err != nil || n != 5 || reported.Load() != 5 {
			t.Fatalf("sweep: %d deleted (%d reported), %v; want 5", n, reported.Load(), err)
		}
		if n, err := sweeper.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("a sweep with nothing to delete: %d, %v", n, err)
		}
		records := w.checkRecords()
		a, err := w.checker.Check(ctx, idemCaller, idemRequest("young"))
		if err != nil || !a.Replayed() || a.CheckID != young.CheckID {
			t.Fatalf("a young key after the sweep: %v, replayed %v", err, a.Replayed())
		}
		b, err := w.checker.CheckBatch(ctx, idemCaller, batch)
		if err != nil || !b[1].Answer.Replayed() || b[1].Answer.CheckID != youngBatch[1].Answer.CheckID {
			t.Fatalf("a young batch after the sweep: %v", err)
		}
		if got := w.checkRecords(); got != records {
			t.Fatalf("%d check records after the replays, %d before", got, records)
		}
	})
}

// TestIdempotencySweepRunStops: Run sweeps at once and returns when its
// context ends.
func TestIdempotencySweepRunStops(t *testing.T) {
	swept := make(chan time.Time, 10)
	s := service.NewIdempotencySweeper(prunerFunc(func(_ context.Context, before time.Time, _ int) (int64, error) {
		swept <- before
		return 0, nil
	}), service.WithIdempotencySweepInterval(time.Hour),
		service.WithIdempotencySweepClock(func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	select {
	case before := <-swept:
		if want := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).Add(-service.IdempotencyKeyRetention); !before.Equal(want) {
			t.Errorf("swept before %v, want %v", before, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not sweep at once")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}

type prunerFunc func(ctx context.Context, before time.Time, limit int) (int64, error)

func (f prunerFunc) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	return f(ctx, before, limit)
}
