package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/internal/testenv"
)

// explainPlan is the text of EXPLAIN of st on s.
func explainPlan(t *testing.T, s *Store, st sqlcommon.Stmt) string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `EXPLAIN `+st.SQL, st.Args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", st.SQL, err)
	}
	return strings.Join(plan, "\n")
}

// recorded runs fn on the shared logic over s's pool and returns the
// statement it ran whose text contains marker.
func recorded(t *testing.T, s *Store, marker string, fn func(*sqlcommon.Store) error) sqlcommon.Stmt {
	t.Helper()
	rec := sqlplans.NewRecorder(db{s.pool})
	if err := fn(sqlcommon.New(rec, dialect)); err != nil {
		t.Fatal(err)
	}
	for _, st := range rec.Stmts() {
		if strings.Contains(st.SQL, marker) {
			return st
		}
	}
	t.Fatalf("no statement with %q recorded", marker)
	return sqlcommon.Stmt{}
}

// TestWatchlistUploadKeepsSubscribersOnIndex: after a large watchlist
// upload, the fan-out's read of a change's subscribers probes
// watchlist_subject, whether or not autovacuum has analysed the table
// since. Planned from statistics that predate the upload (here: none, which
// PostgreSQL takes for 200 distinct subjects), it read the whole watchlist
// for every outbox row: 44 ms each after a 250 000-subject upload, the
// fan-out at 40 rows a second.
func TestWatchlistUploadKeepsSubscribersOnIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(testenv.FreshSchema(t, "credgate_test")), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Autovacuum must not analyse it behind the test's back.
	if _, err := s.pool.Exec(ctx, `ALTER TABLE watchlist SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	const part = 50_000
	subjects := make([]string, part)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("91110000MA%08d", i)
	}
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	if changed, _, err := s.WatchSubjects(ctx, "bank", subjects, false, now); err != nil || changed != part {
		t.Fatalf("upload: %d, %v", changed, err)
	}
	st := recorded(t, s, "FROM watchlist w", func(c *sqlcommon.Store) error {
		_, err := c.Subscribers(ctx, []string{subjects[7]}, now.Add(-24*time.Hour))
		return err
	})
	plan := explainPlan(t, s, st)
	if strings.Contains(plan, "Seq Scan on watchlist") || !strings.Contains(plan, "watchlist_subject") {
		t.Fatalf("after a %d-subject upload, Subscribers reads the watchlist by:\n%s", part, plan)
	}
}

// TestSweepFindsPublicationsByIndex: the sweep's read of the entries
// whose published_at passed can be served by entries_published_later
// (sequential scans off: the table is too small here for the planner to
// prefer the index otherwise), not by a scan of every entry each 30 s.
func TestSweepFindsPublicationsByIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(testenv.FreshSchema(t, "credgate_test")), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{now, now.Add(time.Minute)} {
		if _, err := s.SweepExpired(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	st := recorded(t, s, "'published'", func(c *sqlcommon.Store) error {
		_, err := c.SweepExpired(ctx, now.Add(2*time.Minute))
		return err
	})
	// The INSERT's SELECT: EXPLAIN of the INSERT would plan it alike, but
	// EXPLAIN alone does not run it.
	_, sel, ok := strings.Cut(st.SQL, "SELECT")
	if !ok {
		t.Fatalf("no SELECT in %s", st.SQL)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET enable_seqscan`) //nolint:errcheck // the connection goes back to the pool either way
	rows, err := conn.Query(ctx, `EXPLAIN SELECT`+sel, st.Args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "entries_published_later") {
		t.Fatalf("the sweep's read of publications:\n%s", plan)
	}
}
