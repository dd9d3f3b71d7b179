package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// TestHistoryVerifiesEachStep: the stored checkpoints come back largest
// first, in pages, each with its signer and a consistency proof from the
// next older one that verifies; a checkpoint whose signed root is not the
// tree's breaks the steps on both sides of it, and a note signed by a key
// the log never used is reported as such.
func TestHistoryVerifiesEachStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, m, s, _ := logWith(t, 0)
	for i, n := range []int{1, 2, 5, 1, 8} {
		var batch []evidence.Record
		for j := range n {
			batch = append(batch, sealed(t, fmt.Sprintf("hist-%d-%d", i, j)))
		}
		first, err := m.AppendBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Covering(ctx, first+uint64(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Start signed the empty tree; then 1, 3, 8, 9, 17 records.
	want := []uint64{17, 9, 8, 3, 1, 0}
	var got []evidence.HistoryEntry
	below := uint64(0)
	for {
		page, err := l.History(ctx, below, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		below = page[len(page)-1].Size
		if below == 0 {
			break
		}
	}
	if len(got) != len(want) {
		var sizes []uint64
		for _, c := range m.cps {
			sizes = append(sizes, c.Size)
		}
		t.Fatalf("history of %d checkpoints, want %d: stored %v", len(got), len(want), sizes)
	}
	for i, e := range got {
		if e.Size != want[i] || e.SignatureErr != nil || len(e.Signers) != 1 || e.Signers[0] != s.VerifierKey()[:len(e.Signers[0])] {
			t.Fatalf("entry %d: size %d signers %v err %v", i, e.Size, e.Signers, e.SignatureErr)
		}
		last := i == len(got)-1
		if e.HasOlder == last || e.ConsistencyErr != nil || (!last && e.Older != want[i+1]) {
			t.Fatalf("entry %d (%d): older %v %d, err %v", i, e.Size, e.HasOlder, e.Older, e.ConsistencyErr)
		}
	}

	// A rewritten checkpoint of 8 records, validly signed but with another
	// root: the steps 8→9 and 3→8 fail; the others still verify.
	forged := m.cps[3]
	if forged.Size != 8 {
		t.Fatalf("stored checkpoints %+v", m.cps)
	}
	root := forged.Root
	root[0] ^= 1
	sc, err := s.Sign(8, root)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.cps[3] = evidence.StoredCheckpoint{Size: 8, Root: root, Note: sc.Note, At: forged.At}
	// And the one of 1 record signed by a key the log never had.
	other, err := newSigner(t, "elsewhere").Sign(1, m.cps[1].Root)
	if err != nil {
		t.Fatal(err)
	}
	m.cps[1].Note = other.Note
	m.mu.Unlock()
	page, err := l.History(ctx, 0, evidence.MaxHistoryPage+5)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page {
		broken := e.Size == 9 || e.Size == 8
		if broken != (e.ConsistencyErr != nil) {
			t.Errorf("checkpoint of %d: consistency %v", e.Size, e.ConsistencyErr)
		}
		if broken && !errors.Is(e.ConsistencyErr, evidence.ErrTreeCorrupt) {
			t.Errorf("checkpoint of %d: %v, want ErrTreeCorrupt", e.Size, e.ConsistencyErr)
		}
		if (e.Size == 1) != (e.SignatureErr != nil) {
			t.Errorf("checkpoint of %d: signature %v", e.Size, e.SignatureErr)
		}
	}
	if e := page[len(page)-2]; e.Size == 1 && !errors.Is(e.SignatureErr, evidence.ErrCheckpointSignature) {
		t.Errorf("a note of an unknown key: %v", e.SignatureErr)
	}
}
