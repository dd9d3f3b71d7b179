package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// seedEntries bulk-loads n black-list entries of synthetic subjects, every
// 10th naming a responsible person, with generate_series. It bypasses the
// triggers (and foreign key checks) as a bulk load by an operator would,
// and builds the indexes after the load.
func seedEntries(b *testing.B, dbURL string, n int) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	for _, q := range []string{
		`SET session_replication_role = replica`,
		`SET maintenance_work_mem = '256MB'`,
		`DROP INDEX entries_subject`, `DROP INDEX entries_list`, `DROP INDEX entry_persons_person`,
		`INSERT INTO entries (id, subject, subject_kind, list, originating_department, reason, legal_basis,
			decided_at, published_at, created_at, updated_at, version)
		 SELECT 'seed-' || i, 'S' || lpad(i::text, 17, '0'), 'organization', 'safety_production_blacklist',
			'应急管理部', '发生重大生产安全责任事故', '《安全生产法》', now() - interval '2 days', now() - interval '1 day',
			now(), now(), 1
		 FROM generate_series(1, ` + strconv.Itoa(n) + `) AS i`,
		`INSERT INTO entry_persons (entry_id, person_id, role)
		 SELECT 'seed-' || i, 'P' || lpad((i % 1000000)::text, 17, '0'), 'legal_representative'
		 FROM generate_series(1, ` + strconv.Itoa(n) + `, 10) AS i`,
		`CREATE INDEX entries_subject ON entries (subject, id)`,
		`CREATE INDEX entries_list ON entries (list, id)`,
		`CREATE INDEX entry_persons_person ON entry_persons (person_id, entry_id)`,
		// Settle the load before measuring: hint bits and the visibility
		// map set, statistics current, dirty pages written out, so that
		// neither autovacuum nor a checkpoint runs during the benchmark.
		`VACUUM (ANALYZE) entries`, `VACUUM (ANALYZE) entry_persons`, `CHECKPOINT`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("seed: %s: %v", strings.Fields(q)[0], err)
		}
	}
	b.Logf("seeded %d entries in %v", n, time.Since(start).Round(time.Second))
}

// BenchmarkCheckListSize: a check that misses every cache (its subject is
// read from PostgreSQL), with lists of different sizes, to show that its
// cost does not grow with the list. Sizes come from
// CREDGATE_BENCH_LIST_SIZES (default "10000,1000000"), each in a fresh
// database of its own (10 million take minutes to load). Every iteration
// measures every size in turn, so that a busy machine slows them alike and
// their ratios hold; metrics are named by size, e.g. 10000000-lookup-p50-µs.
func BenchmarkCheckListSize(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if v := os.Getenv("CREDGATE_BENCH_LIST_SIZES"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("CREDGATE_BENCH_LIST_SIZES: %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	cat, err := policy.BundledCatalog()
	if err != nil {
		b.Fatal(err)
	}
	caller := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	type setup struct {
		n               int
		tier            *Tier
		checker         *service.Checker
		subjects        []string
		lookups, checks timer
	}
	var setups []*setup
	for _, n := range sizes {
		dbURL := testenv.FreshDatabase(b, "credgate_bench")
		st := pgStore(b, dbURL, "")
		seedEntries(b, dbURL, n)
		// Real subjects among the synthetic ones: a quarter listed.
		subjects := benchSubjects(b, st, "91110000MH", 2000)
		tier, err := New(st, st, WithReconcileInterval(time.Hour), WithMaxStaleness(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		tier.Start(context.Background())
		b.Cleanup(tier.Close)
		app := evidence.NewAppender(st)
		b.Cleanup(func() { app.Close() })
		// One untimed pass: what is measured is the steady state, the pages
		// of the indexes the lookups touch in memory.
		for _, s := range subjects {
			if _, err := tier.LookupEntries(context.Background(), s); err != nil {
				b.Fatal(err)
			}
			tier.local.Invalidate(s)
		}
		setups = append(setups, &setup{n: n, tier: tier, subjects: subjects,
			checker: service.NewChecker(cat, tier, app, st, service.WithMaxStaleness(time.Hour))})
	}
	rng := rand.New(rand.NewPCG(1, 7))
	for b.Loop() {
		i := rng.IntN(2000)
		for _, su := range setups {
			s := su.subjects[i]
			// The store's part alone: the lookup of a subject not cached.
			su.tier.local.Invalidate(s)
			t0 := time.Now()
			if _, err := su.tier.LookupEntries(context.Background(), s); err != nil {
				b.Fatal(err)
			}
			su.lookups.add(time.Since(t0))
			// A whole check (decision, evidence committed), not cached either.
			su.tier.local.Invalidate(s)
			t0 = time.Now()
			if _, err := su.checker.Check(context.Background(), caller, service.CheckRequest{Subject: s, Action: "government_procurement"}); err != nil {
				b.Fatal(err)
			}
			su.checks.add(time.Since(t0))
		}
	}
	for _, su := range setups {
		for name, tm := range map[string]*timer{"lookup": &su.lookups, "check": &su.checks} {
			slices.Sort(tm.d)
			pct := func(p float64) float64 { return float64(tm.d[int(p*float64(len(tm.d)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(pct(0.50), fmt.Sprintf("%d-%s-p50-µs", su.n, name))
			b.ReportMetric(pct(0.99), fmt.Sprintf("%d-%s-p99-µs", su.n, name))
		}
	}
}
