package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The benchmarks run against the real PostgreSQL (a schema of their own)
// and a redis-server of their own, and report, besides ns/op:
//
//	lookups/s or checks/s  throughput
//	p50-µs, p99-µs         latency of the operation alone (timed one by one)
//	redis-rt/op            Redis round trips on the operation's path
//	redis-rt-all/op        all Redis round trips, fills written behind included
//
// Run them with: go test -run '^$' -bench . -benchtime 2000x ./cache

// benchSubjects are n valid organisation codes; every 4th is on the black
// list in store.
func benchSubjects(b *testing.B, store entryWriter, prefix string, n int) []string {
	b.Helper()
	var subjects []string
	var es []policy.Entry
	for i := range n {
		s := testenv.USCC(b, fmt.Sprintf("%s%07d", prefix, i))
		subjects = append(subjects, s)
		if i%4 == 0 {
			es = append(es, blackEntry(fmt.Sprintf("b-%s-%d", prefix, i), s))
		}
	}
	for chunk := range slices.Chunk(es, 1000) {
		if err := store.InsertEntries(context.Background(), chunk); err != nil {
			b.Fatal(err)
		}
	}
	return subjects
}

// timer collects per-operation latencies.
type timer struct {
	mu sync.Mutex
	d  []time.Duration
}

func (t *timer) add(ds ...time.Duration) {
	t.mu.Lock()
	t.d = append(t.d, ds...)
	t.mu.Unlock()
}

// report adds the latency percentiles.
func (t *timer) report(b *testing.B) {
	if len(t.d) == 0 {
		return
	}
	slices.Sort(t.d)
	pct := func(p float64) float64 { return float64(t.d[int(p*float64(len(t.d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func roundTrips(t *Tier) (lookup, all uint64) {
	s := t.Stats()
	for p, n := range s.RedisRoundTrips {
		if p != pathOther { // health pings, connection handshakes
			all += n
		}
	}
	return s.RedisRoundTrips[pathLookup], all
}

func reportRoundTrips(b *testing.B, t *Tier, lookup0, all0 uint64, ops int) {
	lookup, all := roundTrips(t)
	b.ReportMetric(float64(lookup-lookup0)/float64(ops), "redis-rt/op")
	b.ReportMetric(float64(all-all0)/float64(ops), "redis-rt-all/op")
}

// BenchmarkLookup: the cache tier alone, on a local hit, a Redis hit, a
// first sight of a clean subject answered by the listed filter and a full
// miss (Redis, then PostgreSQL), one lookup at a time; and local hits from
// every core at once.
func BenchmarkLookup(b *testing.B) {
	rs := startRedis(b)
	schema := testenv.FreshSchema(b, "credgate_cache")
	st := pgStore(b, "", schema)
	subjects := benchSubjects(b, st, "91110000MC", 2000)
	newBenchTier := func(b *testing.B, opts ...Option) *Tier {
		tier, err := New(st, st, append([]Option{WithRedis(rs.options()), WithRedisSecret(testSecret), WithPrefix(fmt.Sprintf("bench%d", rand.Int())),
			WithReconcileInterval(time.Hour), WithMaxStaleness(time.Hour)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		tier.Start(context.Background())
		b.Cleanup(tier.Close)
		return tier
	}
	warm := func(b *testing.B, t *Tier) {
		for _, s := range subjects {
			if _, err := t.LookupEntries(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()

	b.Run("local_hit", func(b *testing.B) {
		t := newBenchTier(b)
		warm(b, t)
		lk0, all0 := roundTrips(t)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if _, err := t.LookupEntries(ctx, subjects[i%len(subjects)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "lookups/s")
		reportRoundTrips(b, t, lk0, all0, i)
		// Latencies from a separate pass: timing each hit in the loop
		// above would double its cost.
		var tm timer
		for j := range 100_000 {
			t0 := time.Now()
			_, _ = t.LookupEntries(ctx, subjects[j%len(subjects)])
			tm.add(time.Since(t0))
		}
		tm.report(b)
	})

	b.Run("local_hit_parallel", func(b *testing.B) {
		t := newBenchTier(b)
		warm(b, t)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var n int64
		var mu sync.Mutex
		b.RunParallel(func(pb *testing.PB) {
			i, local := rand.IntN(len(subjects)), int64(0)
			for pb.Next() {
				if _, err := t.LookupEntries(ctx, subjects[i%len(subjects)]); err != nil {
					b.Error(err)
					return
				}
				i++
				local++
			}
			mu.Lock()
			n += local
			mu.Unlock()
		})
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lookups/s")
	})

	b.Run("redis_hit", func(b *testing.B) {
		filler, t := newBenchTier(b), newBenchTier(b)
		t.redis.prefix, t.redis.channel = filler.redis.prefix, filler.redis.channel
		warm(b, filler)
		waitFor(b, "fills", 30*time.Second, func() bool { return filler.stats.fillsWritten.Load() >= uint64(len(subjects)) })
		warm(b, t) // connections up; every subject now also local, dropped below
		lk0, all0 := roundTrips(t)
		var tm timer
		i := 0
		var busy time.Duration
		for b.Loop() {
			s := subjects[i%len(subjects)]
			i++
			t.local.Invalidate(s) // a local miss each time, Redis holding the set
			t0 := time.Now()
			if _, err := t.LookupEntries(ctx, s); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			busy += d
			tm.add(d)
		}
		tm.report(b)
		b.ReportMetric(float64(i)/busy.Seconds(), "lookups/s")
		if hits := t.stats.redisHits.Load(); hits < uint64(i) {
			b.Fatalf("%d Redis hits in %d lookups", hits, i)
		}
		reportRoundTrips(b, t, lk0, all0, i)
	})

	// A first sight: a subject nobody read, neither here nor in Redis;
	// clean, so that with the listed filter no round trip is needed.
	firstSight := func(b *testing.B, t *Tier, series string) int {
		var tm timer
		var busy time.Duration
		i := 0
		for b.Loop() {
			b.StopTimer()
			s := testenv.USCC(b, fmt.Sprintf("%s%07d", series, i))
			b.StartTimer()
			i++
			t0 := time.Now()
			if _, err := t.LookupEntries(ctx, s); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			busy += d
			tm.add(d)
		}
		tm.report(b)
		b.ReportMetric(float64(i)/busy.Seconds(), "lookups/s")
		return i
	}

	b.Run("first_sight_listed_filter", func(b *testing.B) {
		t := newBenchTier(b, WithListedFilter(st, 0))
		waitFor(b, "the listed filter", 30*time.Second, func() bool { s, _ := t.listed.state(); return s == "ready" })
		warm(b, t)
		lk0, all0 := roundTrips(t)
		h0 := t.Stats().ListedHits
		i := firstSight(b, t, "91110000ME")
		if hits := t.Stats().ListedHits - h0; hits != uint64(i) {
			b.Fatalf("the filter answered %d of %d first sights", hits, i)
		}
		reportRoundTrips(b, t, lk0, all0, i)
	})

	b.Run("full_miss", func(b *testing.B) {
		t := newBenchTier(b)
		warm(b, t)
		lk0, all0 := roundTrips(t)
		i := firstSight(b, t, "91110000MD")
		// Let the fills written behind land before counting them.
		waitFor(b, "fills", 30*time.Second, func() bool {
			return t.stats.fillsWritten.Load()+t.stats.fillsDropped.Load() >= uint64(len(subjects)+i)
		})
		reportRoundTrips(b, t, lk0, all0, i)
	})
}

// BenchmarkCheck: whole checks (lookup, decision, evidence committed to
// PostgreSQL by group commit) from 16 concurrent callers, on a local hit,
// a Redis hit and a full miss.
func BenchmarkCheck(b *testing.B) {
	rs := startRedis(b)
	schema := testenv.FreshSchema(b, "credgate_cache")
	st := pgStore(b, "", schema)
	subjects := benchSubjects(b, st, "91110000ME", 2000)
	cat, err := policy.BundledCatalog()
	if err != nil {
		b.Fatal(err)
	}
	caller := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	run := func(b *testing.B, prep func(t *Tier, s string) string, t *Tier) {
		app := evidence.NewAppender(st)
		b.Cleanup(func() { app.Close() })
		checker := service.NewChecker(cat, t, app, st, service.WithMaxStaleness(time.Hour))
		lk0, all0 := roundTrips(t)
		var tm timer
		var ops int64
		var mu sync.Mutex
		b.SetParallelism(8) // 8 × GOMAXPROCS callers
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var ds []time.Duration
			i := rand.IntN(1 << 20)
			for pb.Next() {
				i++
				s := prep(t, subjects[i%len(subjects)])
				t0 := time.Now()
				if _, err := checker.Check(context.Background(), caller, service.CheckRequest{Subject: s, Action: "government_procurement"}); err != nil {
					b.Error(err)
					return
				}
				ds = append(ds, time.Since(t0))
			}
			tm.add(ds...)
			mu.Lock()
			ops += int64(len(ds))
			mu.Unlock()
		})
		tm.report(b)
		b.ReportMetric(float64(ops)/time.Since(start).Seconds(), "checks/s")
		reportRoundTrips(b, t, lk0, all0, int(max(ops, 1)))
	}
	newBenchTier := func(b *testing.B, prefix string) *Tier {
		tier, err := New(st, st, WithRedis(rs.options()), WithRedisSecret(testSecret), WithPrefix(prefix), WithReconcileInterval(time.Hour), WithMaxStaleness(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		tier.Start(context.Background())
		b.Cleanup(tier.Close)
		for _, s := range subjects {
			if _, err := tier.LookupEntries(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
		return tier
	}
	b.Run("local_hit", func(b *testing.B) {
		run(b, func(_ *Tier, s string) string { return s }, newBenchTier(b, fmt.Sprintf("bc%d", rand.Int())))
	})
	b.Run("redis_hit", func(b *testing.B) {
		prefix := fmt.Sprintf("bc%d", rand.Int())
		filler := newBenchTier(b, prefix)
		waitFor(b, "fills", 30*time.Second, func() bool { return filler.stats.fillsWritten.Load() >= uint64(len(subjects)) })
		run(b, func(t *Tier, s string) string { t.local.Invalidate(s); return s }, newBenchTier(b, prefix))
	})
	b.Run("full_miss", func(b *testing.B) {
		var mu sync.Mutex
		n := 0
		run(b, func(t *Tier, _ string) string {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			return testenv.USCC(b, fmt.Sprintf("91110000MF%07d", i))
		}, newBenchTier(b, fmt.Sprintf("bc%d", rand.Int())))
	})
}
