package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// leafRecords is a log as a LeafReader sees it; a nil record is a hole.
type leafRecords []*evidence.Record

func (l leafRecords) LeafRecords(_ context.Context, from, to uint64) ([]evidence.Record, error) {
	var out []evidence.Record
	for i := from; i < to && i < uint64(len(l)); i++ {
		if l[i] != nil {
			out = append(out, *l[i])
		}
	}
	return out, nil
}

func integrateRecs(t *testing.T, n int) ([]*evidence.Record, [][evidence.HashSize]byte) {
	t.Helper()
	recs := make([]*evidence.Record, n)
	leaves := make([][evidence.HashSize]byte, n)
	for i := range n {
		r := evidence.Record{Index: uint64(i), ID: fmt.Sprintf("r-%d", i), Kind: evidence.KindCheck,
			At: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Body: []byte("{}")}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		recs[i], leaves[i] = &r, evidence.LeafHash(r)
	}
	return recs, leaves
}

// TestIntegrate: records the tree does not cover yet are integrated before
// the new leaves; every perfect subtree is reported once; the result is the
// tree of all leaves; a hole or a head beyond the log is ErrTreeCorrupt.
func TestIntegrate(t *testing.T) {
	ctx := t.Context()
	recs, leaves := integrateRecs(t, 13)
	want, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	for _, l := range leaves {
		want.Append(l, nil)
	}
	empty := evidence.Head{Root: evidence.EmptyRoot()}

	// 5 in one batch, then 8 behind the tree's back plus nothing new, then
	// nothing at all.
	h5, nodes5, err := evidence.Integrate(ctx, leafRecords(recs), empty, 0, leaves[:5])
	if err != nil || h5.Size != 5 || len(nodes5) != 5+2+1 {
		t.Fatalf("first batch: head %d, %d nodes, %v", h5.Size, len(nodes5), err)
	}
	h13, nodes13, err := evidence.Integrate(ctx, leafRecords(recs), h5, 13, nil)
	if err != nil || h13.Size != 13 || h13.Root != want.Root() {
		t.Fatalf("catch up: head %d root %x, %v; want 13 %x", h13.Size, h13.Root, err, want.Root())
	}
	seen := map[evidence.NodeID]bool{}
	for _, n := range append(nodes5, nodes13...) {
		if seen[n.ID] {
			t.Fatalf("node %v reported twice", n.ID)
		}
		seen[n.ID] = true
	}
	if len(seen) != 13+6+3+1 {
		t.Fatalf("%d nodes stored for 13 leaves", len(seen))
	}
	same, nodes, err := evidence.Integrate(ctx, leafRecords(recs), h13, 13, nil)
	if err != nil || len(nodes) != 0 || same.Size != 13 || same.Root != h13.Root {
		t.Fatalf("nothing to do: %d nodes, %v", len(nodes), err)
	}

	holed := append(leafRecords(nil), recs...)
	holed[7] = nil
	if _, _, err := evidence.Integrate(ctx, holed, h5, 13, nil); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("hole: %v", err)
	}
	short := leafRecords(recs[:10])
	if _, _, err := evidence.Integrate(ctx, short, h5, 13, nil); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("missing tail: %v", err)
	}
	if _, _, err := evidence.Integrate(ctx, leafRecords(recs), h13, 12, leaves[:1]); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("head beyond the log: %v", err)
	}
}
