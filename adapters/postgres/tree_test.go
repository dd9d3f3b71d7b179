package postgres_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// TestTreeCatchesUp writes records the way a gateway from before the
// Merkle tree did (rows only): the next AppendBatch, under the append
// lock, integrates them in order; a hole in them stops appends with
// ErrTreeCorrupt.
func TestTreeCatchesUp(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(2))
	ctx := t.Context()
	rec := func(i int) evidence.Record {
		r := evidence.Record{ID: fmt.Sprintf("old-%d", i), Kind: evidence.KindAdmin, Partner: "admin",
			At: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	table := pgx.Identifier{schema, "evidence"}.Sanitize()
	legacy := func(i int) evidence.Record {
		r := rec(i)
		if _, err := admin.Exec(ctx, `INSERT INTO `+table+` (idx, id, kind, partner, at, body, salt, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, i, r.ID, string(r.Kind), r.Partner, r.At, r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 3 {
		if _, err := s.AppendBatch(ctx, []evidence.Record{rec(i)}); err != nil {
			t.Fatal(err)
		}
	}
	legacy(3)
	legacy(4)
	if first, err := s.AppendBatch(ctx, []evidence.Record{rec(5)}); err != nil || first != 5 {
		t.Fatalf("append after legacy rows: %d, %v", first, err)
	}
	stored, err := s.RecordsBetween(ctx, 0, 6)
	if err != nil || len(stored) != 6 {
		t.Fatalf("records: %d, %v", len(stored), err)
	}
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	for _, r := range stored {
		tree.Append(evidence.LeafHash(r), nil)
	}
	head, err := s.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != 6 || head.Root != tree.Root() {
		t.Fatalf("tree of %d, root %x; want 6, %x", head.Size, head.Root, tree.Root())
	}
	legacy(7) // index 6 missing
	if _, err := s.AppendBatch(ctx, nil); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("catching up over a hole: %v", err)
	}
}
