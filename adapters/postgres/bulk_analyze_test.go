package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// TestLargeLoadRefreshesStatistics: a bulk load of 10 000 entries or more
// analyses entries before it returns, so the next lookups are planned from
// the grown table (a batch lookup after a 100 000-entry load was planned as
// a full scan until autovacuum came by); a small load leaves that to
// autovacuum.
func TestLargeLoadRefreshesStatistics(t *testing.T) {
	testenv.Postgres(t)
	ctx := t.Context()
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, testenv.PostgresURL(), schema, postgres.WithMaxConns(4))
	conn, err := pgx.Connect(ctx, testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

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
		entries := make([]policy.Entry, 0, n)
		for i := from; i < from+n; i++ {
			now := time.Now().UTC()
			entries = append(entries, policy.Entry{
				ID:          fmt.Sprintf("stat-%06d", i),
				Subject:     policy.SubjectID{Kind: policy.KindOrganization, Value: fmt.Sprintf("91110000%010d", i)},
				List:        "black",
				Reason:      "严重违法失信",
				LegalBasis:  "《企业信息公示暂行条例》第十七条",
				DecidedAt:   now,
				PublishedAt: now,
				CreatedAt:   now,
				UpdatedAt:   now,
				Version:     1,
			})
		}
		if err := s.StageEntries(ctx, id, entries); err != nil {
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
