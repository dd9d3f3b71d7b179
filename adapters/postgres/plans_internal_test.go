package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/internal/testenv"
)

// planIndex finds the index a plan line reads: "Index Scan using x on …",
// "Index Scan Backward using x on …", "Index Only Scan using x on …",
// "Bitmap Index Scan on x".
var planIndex = regexp.MustCompile(`(?:Scan using|Scan Backward using|Bitmap Index Scan on) (\w+)`)

// TestDerivedTablesPlans runs every read of the tables derived from checks
// (check_index, check_lists), and checks with EXPLAIN, sequential scans
// disabled, that none has to scan one of them whole (it lost its index) and
// that every index on them is used by one of these statements: each is
// written on every check (migration 0018 dropped those nothing read), so an
// index no reader uses would be only cost. The push fan-out's Subscribers,
// planned with sequential scans allowed, reads the checks of each subject
// and action from the window's start, never the window's checks of every
// subject (check_index_time) nor every check of the subject.
func TestDerivedTablesPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(testenv.FreshSchema(t, "credgate_test")), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := sqlplans.NewRecorder(db{s.pool})
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// Plans are chosen from statistics: half a year of checks, one every
	// ten minutes, in log order (as appends write them), five partners,
	// five actions, 5 000 subjects; lists on a tenth, feedback on a third.
	for _, q := range []string{
		`INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
		SELECT 'chk-' || i, i, 'p' || i % 5, 'S' || i % 5000, (ARRAY['bank_credit', 'procurement', 'licence', 'a4', 'a5'])[1 + i % 5],
			(ARRAY['clear', 'restrict', 'deny'])[1 + i % 3], '4501' || i % 10, $1::timestamptz - (30000 - i) * interval '10 minutes'
		FROM generate_series(0, 29999) AS i`,
		`INSERT INTO check_lists (check_id, list) SELECT check_id, 'list' || idx % 7 FROM check_index WHERE idx % 10 = 0`,
		`INSERT INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at)
		SELECT 'fb-' || idx, 30000 + idx, check_id, partner, 'approved', 1, 0, checked_at + interval '1 day' FROM check_index WHERE idx % 3 = 0`,
		`ANALYZE check_index, check_lists, feedback`,
		`SELECT brin_summarize_new_values('check_index_time')`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, now)
		}
		if _, err := s.pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Coverage looks back a long while: the subject narrows it, not the time.
	stmts := sqlplans.DerivedReads(t, sqlcommon.New(rec, dialect), rec, now, now.AddDate(-1, 0, 0))

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	explain := func(how string, st sqlcommon.Stmt) []string {
		t.Helper()
		rows, err := conn.Query(ctx, how+st.SQL, st.Args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
		}
		return plan
	}
	subscribers := slices.IndexFunc(stmts, func(st sqlcommon.Stmt) bool { return strings.Contains(st.SQL, "FROM acts a") })
	if subscribers < 0 {
		t.Fatal("Subscribers not recorded")
	}
	// Run: EXPLAIN alone leaves out the probes of the recursive step.
	checkSubscribersPlan(t, explain(`EXPLAIN (ANALYZE) `, stmts[subscribers]))
	// A whole scan left with this means no index can serve the statement.
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET enable_seqscan`) //nolint:errcheck // the connection goes back to the pool either way

	rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
		AND tablename IN ('check_index', 'check_lists')`)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(indexes)
	if want := []string{"check_index_partner", "check_index_pkey", "check_index_subject",
		"check_index_time", "check_lists_pkey"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on the derived tables %v, want %v", indexes, want)
	}
	used := map[string]bool{}
	n := 0
	for _, st := range stmts {
		if !strings.Contains(st.SQL, "check_index") && !strings.Contains(st.SQL, "check_lists") {
			continue
		}
		n++
		plan := explain(`EXPLAIN `, st)
		for _, line := range plan {
			for _, m := range planIndex.FindAllStringSubmatch(line, -1) {
				used[m[1]] = true
			}
			for _, tbl := range []string{"check_index", "check_lists"} {
				if strings.Contains(line, "Seq Scan on "+tbl+" ") {
					t.Errorf("%s scans %s whole:\n%s", st.SQL, tbl, strings.Join(plan, "\n"))
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d statements on the derived tables recorded", n)
	}
	for _, ix := range indexes {
		if !used[ix] {
			t.Errorf("no read uses index %s", ix)
		}
	}
}

// checkSubscribersPlan holds the plan of Subscribers to a probe of
// check_index_subject for the first action of each subject, one for each
// next action, and one for the checks of each from the window's start, and
// to no other read of check_index; and to a cost below jit_above_cost's
// default (100 000): compiling the plan (JIT) took 40 ms, the read 1.
func checkSubscribersPlan(t *testing.T, plan []string) {
	t.Helper()
	text := strings.Join(plan, "\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Index Only Scan using check_index_subject on check_index \w+ .*\n\s+Index Cond: \(subject = \w+\.subject\)\n`),
		regexp.MustCompile(`Index Only Scan using check_index_subject on check_index \w+ .*\n\s+Index Cond: \(\(subject = \w+\.subject\) AND \(action > \w+\.action\)\)\n`),
		regexp.MustCompile(`Index (Only )?Scan using check_index_subject on check_index \w+ .*\n\s+Index Cond: \(\(subject = a\.subject\) AND \(action = a\.action\) AND \(checked_at >= `),
	} {
		if !want.MatchString(text) {
			t.Errorf("subscribers: no %s in\n%s", want, text)
		}
	}
	if n := strings.Count(text, " on check_index "); n != 3 {
		t.Errorf("subscribers: %d reads of check_index, want 3:\n%s", n, text)
	}
	var cost float64
	if _, err := fmt.Sscanf(plan[0][strings.Index(plan[0], "..")+2:], "%g", &cost); err != nil || cost >= 100_000 {
		t.Errorf("subscribers: plan cost %g (%v), want it below JIT's threshold:\n%s", cost, err, text)
	}
}

// TestPruningSummarisesTheTimeIndex: check_index_time is BRIN, summarised by
// autovacuum where it runs; the hourly pruning summarises the ranges filled
// since, so a server without autovacuum does not leave statistics queries
// reading every check since the index was made.
func TestPruningSummarisesTheTimeIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(testenv.FreshSchema(t, "credgate_test")), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// 30 000 rows fill a few of BRIN's 128-page ranges.
	if _, err := s.pool.Exec(ctx, `INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
		SELECT 'chk-' || i, i, 'p', 'S' || i % 5000, 'bank_credit', 'clear', '4501', $1::timestamptz - (30000 - i) * interval '1 minute'
		FROM generate_series(0, 29999) AS i`, now); err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_relation_size('check_index') / current_setting('block_size')::int`).Scan(&pages); err != nil || pages < 256 {
		t.Fatalf("check_index has %d pages (%v), want two full ranges", pages, err)
	}
	if _, err := s.PruneEvents(ctx, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var left int64
	if err := s.pool.QueryRow(ctx, `SELECT brin_summarize_new_values('check_index_time')`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d ranges of check_index_time were left unsummarised by the pruning", left)
	}
}
