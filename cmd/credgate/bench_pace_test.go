package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// pace hands out every slot once, in order, none before its time, and
// closes the channel after the last.
func TestPaceHandsOutEverySlot(t *testing.T) {
	const total, interval = 200, float64(100 * time.Microsecond)
	slots := make(chan int64)
	start := time.Now()
	go pace(t.Context(), start, interval, total, slots)
	var got []int64
	for slot := range slots {
		if early := time.Until(start.Add(time.Duration(float64(slot) * interval))); early > 0 {
			t.Errorf("slot %d handed out %s before its time", slot, early)
		}
		got = append(got, slot)
	}
	if len(got) != total || !slices.IsSorted(got) || got[0] != 0 || got[total-1] != total-1 {
		t.Errorf("slots %v, want 0..%d in order", got, total-1)
	}
}

// A cancelled context ends the pacing (the channel is closed) though
// slots remain, also while it sleeps toward a slot far ahead or waits
// for a free worker.
func TestPaceStopsWithContext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"asleep", time.Hour}, {"no worker free", time.Nanosecond}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			slots := make(chan int64)
			done := make(chan struct{})
			go func() { defer close(done); pace(ctx, time.Now(), float64(tc.interval), 1000, slots) }()
			<-slots // slot 0, due at once
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("pace did not return after its context ended")
			}
			if _, open := <-slots; open {
				t.Error("a slot handed out after the context ended")
			}
		})
	}
}

// BenchmarkPacing reports how late an open loop at 2 000/s hands each
// send to a free worker: pace (nanosleep on a thread of its own) against
// each worker waiting on a Go timer, as the bench did before. Each worker
// then holds its slot 0.3 ms, about a check's answer here. Run with
// -benchtime=1x: one op is one second of 2 000 slots.
func BenchmarkPacing(b *testing.B) {
	const rate, workers = 2000, 200
	interval := float64(time.Second) / rate
	run := func(b *testing.B, hand func(start time.Time, lags []time.Duration)) {
		var all []time.Duration
		for b.Loop() {
			lags := make([]time.Duration, rate)
			hand(time.Now(), lags)
			all = append(all, lags...)
		}
		slices.Sort(all)
		q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
		b.ReportMetric(q(.5), "lag-p50-µs")
		b.ReportMetric(q(.99), "lag-p99-µs")
	}
	b.Run("pace", func(b *testing.B) {
		run(b, func(start time.Time, lags []time.Duration) {
			slots := make(chan int64)
			go pace(context.Background(), start, interval, rate, slots)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for slot := range slots {
						lags[slot] = time.Since(start.Add(time.Duration(float64(slot) * interval)))
						time.Sleep(300 * time.Microsecond)
					}
				})
			}
			wg.Wait()
		})
	})
	b.Run("timers", func(b *testing.B) {
		run(b, func(start time.Time, lags []time.Duration) {
			var mu sync.Mutex
			next := int64(0)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					t := time.NewTimer(time.Hour)
					t.Stop()
					for {
						mu.Lock()
						slot := next
						next++
						mu.Unlock()
						if slot >= rate {
							return
						}
						intended := start.Add(time.Duration(float64(slot) * interval))
						if d := time.Until(intended); d > 0 {
							t.Reset(d)
							<-t.C
						}
						lags[slot] = time.Since(intended)
						time.Sleep(300 * time.Microsecond)
					}
				})
			}
			wg.Wait()
		})
	})
}
