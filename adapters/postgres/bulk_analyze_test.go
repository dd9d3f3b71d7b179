package postgres_test

import (
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestLargeLoadRefreshesStatistics: a bulk load of 10 000 entries or more
// analyses entries before it returns, so the next lookups are planned from
// the grown table (a batch lookup after a 100 000-entry load was planned as
// a full scan until autovacuum came by); a small load leaves that to
// autovacuum.
func TestLargeLoadRefreshesStatistics(t *testing.T) {
	url, conn := testenv.Postgres(t)
	ctx := t.Context()
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(4))

	analysed := func() bool {
		var at *time.Time
		if err := conn.QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables
			WHERE schemaname = $1 AND relname = 'entries'`, schema).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at != nil
	}
	load := func(id string, n, from int) {
		t.Helper()
		if err := s.BeginEntryLoad(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.StageEntries(ctx, id, loadEntries(from, n)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.CommitEntryLoad(ctx, id, service.EntryChanges{}); err != nil || got != int64(n) {
			t.Fatalf("commit %s: %d entries, %v", id, got, err)
		}
	}

	load("small", 100, 0)
	if analysed() {
		t.Fatal("a 100-entry load analysed entries; only large loads should")
	}
	load("large", 10_000, 100)
	deadline := time.Now().Add(5 * time.Second)
	for !analysed() {
		if time.Now().After(deadline) {
			t.Fatal("entries not analysed after a 10 000-entry load")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
