package sqlite

import (
	"errors"
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/evidence"
)

// TestTreeCatchesUpAndRefusesGaps: records written the way a gateway from
// before the Merkle tree did (rows only) are integrated by the next
// AppendBatch, and a hole in them stops appends; so does a record deleted
// from the part the tree covers.
func TestTreeCatchesUpAndRefusesGaps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	storetest.CheckTreeCatchesUp(t, s, func(i int, r evidence.Record) {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, i, r.ID, string(r.Kind), r.Partner, micros(r.At), r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatal(err)
		}
	})
	// The tail of the covered log deleted.
	if _, err := s.w.ExecContext(ctx, `DROP TRIGGER evidence_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM evidence WHERE idx >= 7`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []evidence.Record{{ID: "new", Kind: evidence.KindCheck, Body: []byte("{}")}}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("append after deleting covered records: %v", err)
	}
}
