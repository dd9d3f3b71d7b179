package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestCheckSearchPlans holds the auditor's check search to the indexes of
// check_index, planned from the statistics of half a year of checks with
// sequential scans allowed: with a partner it reads check_index_partner
// over the period (backward, in the answer's order, when the partner is
// the only filter); without one (PostgreSQL has no index on the
// action since 0018) the period's checks through the BRIN check_index_time.
// None reads every check.
func TestCheckSearchPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(testenv.FreshSchema(t, "credgate_test")), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// As TestDerivedTablesPlans: a check every ten minutes for half a year,
	// five partners, five actions, three outcomes.
	for _, q := range []string{
		`INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
		SELECT 'chk-' || i, i, 'p' || i % 5, 'S' || i % 5000, (ARRAY['bank_credit', 'procurement', 'licence', 'a4', 'a5'])[1 + i % 5],
			(ARRAY['clear', 'restrict', 'deny'])[1 + i % 3], '4501' || i % 10, $1::timestamptz - (30000 - i) * interval '10 minutes'
		FROM generate_series(0, 29999) AS i`,
		`ANALYZE check_index`,
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
	rec := sqlplans.NewRecorder(db{s.pool})
	store := sqlcommon.New(rec, dialect)
	cursor := &service.CheckCursor{CheckedAt: now.Add(-time.Hour), Index: 29990}
	for _, tc := range []struct {
		q    service.CheckQuery
		want string
	}{
		{service.CheckQuery{Partner: "p1"}, "check_index_partner"},
		{service.CheckQuery{Partner: "p1", Action: "procurement", Outcome: "clear", After: cursor}, "check_index_partner"},
		{service.CheckQuery{Action: "bank_credit"}, "Bitmap Index Scan on check_index_time"},
		{service.CheckQuery{Action: "bank_credit", Outcome: "deny", After: cursor}, "Bitmap Index Scan on check_index_time"},
		{service.CheckQuery{}, "Bitmap Index Scan on check_index_time"},
		{service.CheckQuery{Outcome: "restrict", After: cursor}, "Bitmap Index Scan on check_index_time"},
	} {
		tc.q.From, tc.q.To, tc.q.Limit = now.Add(-service.DefaultCheckWindow), now, 50
		rec.Reset()
		page, err := store.FindChecks(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			t.Fatalf("%+v: nothing found", tc.q)
		}
		stmts := rec.Stmts()
		if len(stmts) != 1 {
			t.Fatalf("%+v: %d statements", tc.q, len(stmts))
		}
		rows, err := s.pool.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+stmts[0].SQL, stmts[0].Args...)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		t.Logf("%+v:\n%s", tc.q, text)
		if strings.Contains(text, "Seq Scan on check_index") || !strings.Contains(text, tc.want) {
			t.Errorf("%+v: plan\n%s\nwant %s, no sequential scan", tc.q, text, tc.want)
		}
	}
}
