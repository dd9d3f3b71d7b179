package postgres

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// planIndex finds the index a plan line reads: "Index Scan using x on …",
// "Index Scan Backward using x on …", "Index Only Scan using x on …",
// "Bitmap Index Scan on x".
var planIndex = regexp.MustCompile(`(?:Scan using|Scan Backward using|Bitmap Index Scan on) (\w+)`)

// TestDerivedTablesPlans runs every read of the tables derived from checks
// (check_index, check_lists, checked_subjects) and the pruning of checked
// subjects, and checks with EXPLAIN, sequential scans disabled, that none
// has to scan one of them whole (it lost its index) and that every index
// on them is used by one of these statements: each is written on every
// check (migration 0018 dropped those nothing read), so an index no reader
// uses would be only cost.
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
		`INSERT INTO checked_subjects (subject, partner, checked_at, checked_floor)
		SELECT subject, partner, max(checked_at), min(checked_at) FROM check_index GROUP BY subject, partner`,
		`ANALYZE check_index, check_lists, feedback, checked_subjects`,
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
	// A whole scan left with this means no index can serve the statement.
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET enable_seqscan`) //nolint:errcheck // the connection goes back to the pool either way

	rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
		AND tablename IN ('check_index', 'check_lists', 'checked_subjects')`)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(indexes)
	if want := []string{"check_index_partner", "check_index_pkey", "check_index_subject",
		"check_index_time", "check_lists_pkey", "checked_subjects_floor", "checked_subjects_pkey"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on the derived tables %v, want %v", indexes, want)
	}
	used := map[string]bool{}
	n := 0
	for _, st := range stmts {
		if !strings.Contains(st.SQL, "check_index") && !strings.Contains(st.SQL, "check_lists") && !strings.Contains(st.SQL, "checked_subjects") {
			continue
		}
		n++
		rows, err := conn.Query(ctx, `EXPLAIN `+st.SQL, st.Args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
		}
		for _, line := range plan {
			for _, m := range planIndex.FindAllStringSubmatch(line, -1) {
				used[m[1]] = true
			}
			for _, tbl := range []string{"check_index", "check_lists", "checked_subjects"} {
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

// TestRepeatCheckIsHOT: a subject checked again by the same partner moves
// checked_at only, which no index covers since migration 0018, so the
// update is heap-only (HOT) and writes no index entry; pruning deletes
// exactly the subjects last checked before its time and raises the floor
// of those it keeps. Run in a database of its own, which pageinspect is
// created in to read the heap page's flags.
func TestRepeatCheckIsHOT(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.FreshDatabase(t, "credgate_test_hot")
	s, err := Open(ctx, url, WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		testenv.Need(t, "pageinspect: %v", err)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	n := 0
	check := func(subject string, at time.Time) evidence.Record {
		n++
		id := fmt.Sprintf("chk-%d", n)
		r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "p1", At: at,
			Body: []byte(`{"check_id":"` + id + `","subject":{"id":"` + subject + `"},"action":"bank_credit","outcome":"clear","context":{}}`)}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, batch := range [][]evidence.Record{
		{check("S1", t0), check("S2", t0), check("S3", t0)},
		{check("S1", t0.Add(48*time.Hour)), check("S3", t0.Add(2*time.Hour))},
	} {
		if _, err := s.AppendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// HEAP_HOT_UPDATED (0x4000) on the versions S1 and S3 left,
	// HEAP_ONLY_TUPLE (0x8000) on the ones they left them for.
	var hotUpdated, heapOnly int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE t_infomask2 & 16384 <> 0), count(*) FILTER (WHERE t_infomask2 & 32768 <> 0)
		FROM heap_page_items(get_raw_page('checked_subjects', 0))`).Scan(&hotUpdated, &heapOnly); err != nil {
		t.Fatal(err)
	}
	if hotUpdated != 2 || heapOnly != 2 {
		t.Errorf("repeat checks: %d HOT-updated versions and %d heap-only ones, want 2 and 2", hotUpdated, heapOnly)
	}

	type row struct{ at, floor time.Time }
	rows := func() map[string]row {
		out := map[string]row{}
		r, err := s.pool.Query(ctx, `SELECT subject, checked_at,
			CASE WHEN isfinite(checked_floor) THEN checked_floor END FROM checked_subjects`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var subject string
			var v row
			var floor *time.Time
			if err := r.Scan(&subject, &v.at, &floor); err != nil {
				t.Fatal(err)
			}
			if floor != nil {
				v.floor = floor.UTC()
			}
			v.at = v.at.UTC()
			out[subject] = v
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Before any pruning every floor is -infinity (read as the zero time).
	if got, want := rows(), map[string]row{
		"S1": {at: t0.Add(48 * time.Hour)}, "S2": {at: t0}, "S3": {at: t0.Add(2 * time.Hour)},
	}; !maps.Equal(got, want) {
		t.Fatalf("after two commits %v, want %v", got, want)
	}
	// Checked before t0+1h: S2 only; S3 (t0+2h) and S1 stay, floors raised.
	if _, err := s.PruneEvents(ctx, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := rows(), map[string]row{
		"S1": {t0.Add(48 * time.Hour), t0.Add(48 * time.Hour)}, "S3": {t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)},
	}; !maps.Equal(got, want) {
		t.Fatalf("after pruning %v, want %v", got, want)
	}
	// S1 checked again: its floor stays; pruning at t0+3h takes S3 only.
	if _, err := s.AppendBatch(ctx, []evidence.Record{check("S1", t0.Add(72*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneEvents(ctx, t0, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := rows(), map[string]row{"S1": {t0.Add(72 * time.Hour), t0.Add(48 * time.Hour)}}; !maps.Equal(got, want) {
		t.Fatalf("after the second pruning %v, want %v", got, want)
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
	if _, err := s.PruneEvents(ctx, now.Add(-24*time.Hour), now.Add(-24*time.Hour)); err != nil {
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
