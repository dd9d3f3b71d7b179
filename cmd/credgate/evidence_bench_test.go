package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

func benchStores(b *testing.B) map[string]func(b *testing.B) service.Store {
	return map[string]func(b *testing.B) service.Store{
		"sqlite": func(b *testing.B) service.Store {
			st, err := sqlite.Open(b.Context(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(b *testing.B) service.Store {
			st, err := postgres.Open(b.Context(), testenv.FreshDatabase(b, "credgate_bench"), postgres.WithMaxConns(16))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// noEvidence is the check path with evidence switched off: indexes are
// handed out, nothing is written. It exists only to measure what evidence
// costs.
type noEvidence struct{ n atomic.Uint64 }

func (l *noEvidence) Append(_ context.Context, recs ...evidence.Record) ([]evidence.Record, error) {
	for i := range recs {
		recs[i].Index = l.n.Add(1) - 1
	}
	return recs, nil
}

var benchCaller = service.Caller{ClientID: "bench-client", Role: service.RoleAdmin}

func benchSubjects(b *testing.B) []string {
	b.Helper()
	var out []string
	for i := range 64 {
		prefix := fmt.Sprintf("91110108MA%07d", i)
		for _, c := range "0123456789ABCDEFGHJKLMNPQRTUWXY" {
			if id, err := policy.ParseUSCC(prefix + string(c)); err == nil {
				out = append(out, id.Value)
				break
			}
		}
	}
	return out
}

// BenchmarkChecksEvidence measures checks per second through the real
// Checker, with evidence off (no record written) and on (group commit into
// the store, with the Merkle tree), on both stores, in one run. Callers: 16
// per CPU, as an inline gateway sees them.
func BenchmarkChecksEvidence(b *testing.B) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		b.Fatal(err)
	}
	subjects := benchSubjects(b)
	for _, name := range []string{"sqlite", "postgres"} {
		open := benchStores(b)[name]
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("store=%s/evidence=%v", name, on), func(b *testing.B) {
				st := open(b)
				var log service.EvidenceLog = &noEvidence{}
				if on {
					app := evidence.NewAppender(st)
					defer app.Close()
					log = app
				}
				checker := service.NewChecker(cat, st, log, st)
				var n atomic.Int64
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if _, err := checker.Check(b.Context(), benchCaller, service.CheckRequest{
							Subject: subjects[int(i)%len(subjects)], Action: "government_procurement"}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "checks/s")
			})
		}
	}
}

// BenchmarkReceiptLatency measures how long after a check is answered its
// receipt is available: each caller checks, then at once asks for the
// receipt (which needs a checkpoint covering the record: signed on demand
// when none does). It reports the p50 and p99 of that latency.
func BenchmarkReceiptLatency(b *testing.B) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		b.Fatal(err)
	}
	subjects := benchSubjects(b)
	for _, name := range []string{"sqlite", "postgres"} {
		open := benchStores(b)[name]
		b.Run("store="+name, func(b *testing.B) {
			st := open(b)
			app := evidence.NewAppender(st)
			defer app.Close()
			signer := testenv.Signer(b, "credgate.bench/evidence")
			evlog := evidence.NewLog(st, signer)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := evlog.Start(ctx); err != nil {
				b.Fatal(err)
			}
			go evlog.Run(ctx)
			checker := service.NewChecker(cat, st, app, st)
			receipts := service.NewReceipts(st, evlog)
			vs, _ := evidence.Verifiers(signer.VerifierKey())
			var (
				mu   sync.Mutex
				lats []time.Duration
				n    atomic.Int64
			)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := n.Add(1)
					ans, err := checker.Check(ctx, benchCaller, service.CheckRequest{
						Subject: subjects[int(i)%len(subjects)], Action: "government_procurement"})
					if err != nil {
						b.Error(err)
						return
					}
					start := time.Now()
					r, err := receipts.Receipt(ctx, benchCaller, ans.CheckID)
					mine = append(mine, time.Since(start))
					if err != nil {
						b.Error(err)
						return
					}
					if i%100 == 0 {
						if _, err := evidence.VerifyReceipt(r, vs); err != nil {
							b.Error(err)
							return
						}
					}
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lats)
			if len(lats) > 0 {
				pct := func(p float64) float64 {
					return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
			}
		})
	}
}
