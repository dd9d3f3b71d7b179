package sqlite

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// TestTreeCatchesUpAndRefusesGaps writes records the way a gateway from
// before the Merkle tree did (rows only, no nodes): the next AppendBatch
// integrates them in order. A record deleted from the covered part, or from
// the part still to integrate, stops appends with ErrTreeCorrupt: the log
// fails closed rather than grow a tree over a hole.
func TestTreeCatchesUpAndRefusesGaps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := func(i int) evidence.Record {
		r := evidence.Record{ID: fmt.Sprintf("old-%d", i), Kind: evidence.KindCheck, Partner: "p",
			At: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var want []evidence.Record
	for i := range 5 {
		r := rec(i)
		if _, err := s.AppendBatch(ctx, []evidence.Record{r}); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	// Three legacy rows behind the tree's back.
	for i := 5; i < 8; i++ {
		r := rec(i)
		if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, i, r.ID, string(r.Kind), r.Partner, micros(r.At), r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	if head, _ := s.TreeHead(ctx); head.Size != 5 {
		t.Fatalf("tree of %d before catching up", head.Size)
	}
	next, err := s.AppendBatch(ctx, nil)
	if err != nil || next != 8 {
		t.Fatalf("catch up: %d, %v", next, err)
	}
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	for _, r := range want {
		tree.Append(evidence.LeafHash(r), nil)
	}
	if head, _ := s.TreeHead(ctx); head.Size != 8 || head.Root != tree.Root() {
		t.Fatalf("after catching up: tree of %d, root %x, want 8, %x", head.Size, head.Root, tree.Root())
	}
	for i := range 8 {
		p, err := evidence.InclusionProof(ctx, s, uint64(i), 8)
		if err != nil {
			t.Fatal(err)
		}
		if err := evidence.VerifyInclusion(evidence.LeafHash(want[i]), uint64(i), 8, p, tree.Root()); err != nil {
			t.Fatalf("record %d after catching up: %v", i, err)
		}
	}

	// A hole in the part still to integrate.
	for i := 8; i < 11; i++ {
		if i == 9 {
			continue
		}
		r := rec(i)
		if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, i, r.ID, string(r.Kind), r.Partner, micros(r.At), r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendBatch(ctx, []evidence.Record{rec(20)}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("append over a hole: %v", err)
	}
	// The tail of the covered log deleted.
	if _, err := s.w.ExecContext(ctx, `DROP TRIGGER evidence_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM evidence WHERE idx >= 7`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []evidence.Record{rec(21)}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("append after deleting covered records: %v", err)
	}
}
