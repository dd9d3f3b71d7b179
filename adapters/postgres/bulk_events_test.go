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

// TestLoadAnnouncesEntriesAtCommit: a bulk load writes no outbox row while
// it copies (the push fan-out's readings would walk past all of them), and
// at its commit one per entry it copied, before those of the entries
// applied with the commit; a load rolled back announces nothing, and a
// write after a load announces itself as it goes.
func TestLoadAnnouncesEntriesAtCommit(t *testing.T) {
	url, conn := testenv.Postgres(t)
	ctx := t.Context()
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(4))
	outbox := pgx.Identifier{schema, "event_outbox"}.Sanitize()
	outboxBytes := func() int64 {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT pg_relation_size($1::regclass)`, outbox).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	outboxRows := func() int64 {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+outbox).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A load rolled back announces nothing.
	if err := s.BeginEntryLoad(ctx, "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.StageEntries(ctx, "gone", loadEntries(5000, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardEntryLoad(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	// Chunks out of id order: the second holds the least id.
	if err := s.BeginEntryLoad(ctx, "load", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A failure with the load open would leave its connection taken and
	// the store's Close waiting for it.
	t.Cleanup(func() { _ = s.DiscardEntryLoad(context.Background(), "load") })
	for _, c := range [][]policy.Entry{loadEntries(1000, 300), loadEntries(0, 300), loadEntries(2000, 300)} {
		if err := s.StageEntries(ctx, "load", c); err != nil {
			t.Fatal(err)
		}
	}
	if n := outboxBytes(); n != 0 {
		t.Fatalf("the outbox grew to %d bytes while the load copied", n)
	}
	held := loadEntry(9000)
	if n, err := s.CommitEntryLoad(ctx, "load", service.EntryChanges{Insert: []policy.Entry{held}}); err != nil || n != 900 {
		t.Fatalf("commit: %d entries, %v", n, err)
	}
	var rows, distinct, matching int64
	var lastEntry string
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT o.entry_id),
			count(*) FILTER (WHERE e.version = o.version AND e.updated_at = o.recorded_at),
			(SELECT entry_id FROM `+outbox+` ORDER BY seq DESC LIMIT 1)
		FROM `+outbox+` o LEFT JOIN `+pgx.Identifier{schema, "entries"}.Sanitize()+` e ON e.id = o.entry_id`).
		Scan(&rows, &distinct, &matching, &lastEntry); err != nil {
		t.Fatal(err)
	}
	if rows != 901 || distinct != 901 || matching != 901 {
		t.Fatalf("outbox after the load: %d rows, %d entries, %d matching their entry; want 901 each", rows, distinct, matching)
	}
	if lastEntry != held.ID {
		t.Fatalf("last outbox row is %s, want the entry applied with the commit (%s)", lastEntry, held.ID)
	}

	// The deferral ends with the load: the next load's applied entry, on
	// a connection of the same pool, announces itself.
	if err := s.BeginEntryLoad(ctx, "after", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CommitEntryLoad(ctx, "after", service.EntryChanges{Insert: []policy.Entry{loadEntry(9001)}}); err != nil || n != 0 {
		t.Fatalf("commit: %d entries, %v", n, err)
	}
	if n := outboxRows(); n != 902 {
		t.Fatalf("outbox holds %d rows after an applied entry, want 902", n)
	}
}

// loadEntry is the i-th of the organisation entries the bulk-load tests
// stage: its own id and subject, every optional field unset.
func loadEntry(i int) policy.Entry {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return policy.Entry{
		ID:          fmt.Sprintf("ent_%032x", i),
		Subject:     policy.SubjectID{Kind: policy.KindOrganization, Value: fmt.Sprintf("91110000%010d", i)},
		List:        "black",
		Reason:      "严重违法失信",
		LegalBasis:  "《企业信息公示暂行条例》第十七条",
		DecidedAt:   now,
		PublishedAt: now,
		CreatedAt:   now,
		UpdatedAt:   now,
		Version:     1,
	}
}

// loadEntries is loadEntry for i from from to from+n-1.
func loadEntries(from, n int) []policy.Entry {
	es := make([]policy.Entry, 0, n)
	for i := from; i < from+n; i++ {
		es = append(es, loadEntry(i))
	}
	return es
}
