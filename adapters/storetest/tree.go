package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// referenceRoot is RFC 6962's MTH computed the slow, obvious way.
func referenceRoot(leaves [][evidence.HashSize]byte) [evidence.HashSize]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := referenceRoot(leaves[:k]), referenceRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// testTreeGrowsWithLog appends random batches and checks, after each, that
// the store's tree is the RFC 6962 tree of its records, read back from the
// store, and that inclusion and consistency proofs read from the store's
// nodes verify at random sizes.
func testTreeGrowsWithLog(t *testing.T, s service.Store) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 11))
	var leaves [][evidence.HashSize]byte
	n := 0
	for range 12 {
		batch := records(t, fmt.Sprintf("tree-%d-", n), 1+rng.IntN(20))
		n += len(batch)
		first := mustAppend(t, s, batch)
		if first != uint64(len(leaves)) {
			t.Fatalf("first index %d, want %d", first, len(leaves))
		}
		stored, err := s.RecordsBetween(ctx, first, first+uint64(len(batch)))
		if err != nil || len(stored) != len(batch) {
			t.Fatalf("RecordsBetween: %d records, %v", len(stored), err)
		}
		for i, r := range stored {
			if r.ID != batch[i].ID || r.Index != first+uint64(i) || r.Hash != batch[i].Hash {
				t.Fatalf("record %d read back as %s at %d", i, r.ID, r.Index)
			}
			leaves = append(leaves, evidence.LeafHash(r))
		}
		head, err := s.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		size := uint64(len(leaves))
		if head.Size != size || head.Root != referenceRoot(leaves) {
			t.Fatalf("tree head (%d, %x), want (%d, %x)", head.Size, head.Root, size, referenceRoot(leaves))
		}
		for range 4 {
			sz := 1 + rng.Uint64N(size)
			want := referenceRoot(leaves[:sz])
			i := rng.Uint64N(sz)
			p, err := evidence.InclusionProof(ctx, s, i, sz)
			if err != nil {
				t.Fatal(err)
			}
			if err := evidence.VerifyInclusion(leaves[i], i, sz, p, want); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, sz, err)
			}
			from := rng.Uint64N(sz + 1)
			c, err := evidence.ConsistencyProof(ctx, s, from, sz)
			if err != nil {
				t.Fatal(err)
			}
			if err := evidence.VerifyConsistency(from, sz, c, referenceRoot(leaves[:from]), want); err != nil {
				t.Fatalf("consistency %d→%d: %v", from, sz, err)
			}
		}
	}
	if _, err := s.TreeNodes(ctx, []evidence.NodeID{{Level: 0, Index: uint64(len(leaves))}}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("a node beyond the tree: %v", err)
	}
	// An empty batch appends nothing and leaves the tree as it is.
	head, _ := s.TreeHead(ctx)
	next, err := s.AppendBatch(ctx, nil)
	if err != nil || next != head.Size {
		t.Fatalf("empty batch: %d, %v", next, err)
	}
	if again, _ := s.TreeHead(ctx); again.Root != head.Root || again.Size != head.Size {
		t.Fatal("an empty batch changed the tree")
	}
}

// testTreeRollsBackWithBatch: a batch that fails (a duplicate id) leaves
// neither records nor nodes nor a moved head behind.
func testTreeRollsBackWithBatch(t *testing.T, s service.Store) {
	ctx := t.Context()
	mustAppend(t, s, records(t, "rb", 3))
	before, _ := s.TreeHead(ctx)
	bad := records(t, "rb2", 4)
	bad[3].ID = "rb-1"
	if _, err := s.AppendBatch(ctx, bad); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	after, _ := s.TreeHead(ctx)
	if after.Size != before.Size || after.Root != before.Root {
		t.Fatalf("a failed batch moved the tree from %d to %d", before.Size, after.Size)
	}
	if _, err := s.TreeNodes(ctx, []evidence.NodeID{{Level: 0, Index: 3}}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("a failed batch left a node: %v", err)
	}
	// The next batch takes the indexes the failed one did not.
	if first := mustAppend(t, s, records(t, "rb3", 2)); first != 3 {
		t.Fatalf("next batch at %d, want 3", first)
	}
	// A record the leaf cannot encode is refused before anything is
	// written.
	inv := records(t, "rb4", 1)
	inv[0].Partner = "line\nbreak"
	if _, err := s.AppendBatch(ctx, inv); !errors.Is(err, evidence.ErrInvalidRecord) {
		t.Fatalf("invalid record: %v", err)
	}
}

func testCheckpointsAndKeys(t *testing.T, s service.Store) {
	ctx := t.Context()
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, evidence.ErrNoCheckpoint) {
		t.Fatalf("no checkpoint yet: %v", err)
	}
	if _, err := s.AppendBatch(ctx, records(t, "cp", 7)); err != nil {
		t.Fatal(err)
	}
	mk := func(size uint64, note string) evidence.StoredCheckpoint {
		root, err := evidence.RootAt(ctx, s, size)
		if err != nil {
			t.Fatal(err)
		}
		return evidence.StoredCheckpoint{Size: size, Root: root, Note: []byte(note), At: at(time.Duration(size))}
	}
	for _, c := range []evidence.StoredCheckpoint{mk(0, "zero\n"), mk(7, "seven\n"), mk(3, "three\n"), mk(7, "other seven\n")} {
		if err := s.AddCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Only a size the tree has, with the tree's root at that size.
	beyond := mk(7, "eight\n")
	beyond.Size = 8
	if err := s.AddCheckpoint(ctx, beyond); !errors.Is(err, evidence.ErrTreeSize) {
		t.Fatalf("checkpoint beyond the tree: %v, want ErrTreeSize", err)
	}
	for _, size := range []uint64{7, 5} {
		wrong := mk(size, "wrong root\n")
		wrong.Root = sha256.Sum256(wrong.Note)
		if err := s.AddCheckpoint(ctx, wrong); !errors.Is(err, evidence.ErrTreeCorrupt) {
			t.Fatalf("checkpoint of %d with another root: %v, want ErrTreeCorrupt", size, err)
		}
	}
	got, err := s.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first checkpoint of a size wins: replicas that sign the same tree
	// with the same key produce the same note, and any other loses.
	want := mk(7, "seven\n")
	if got.Size != 7 || string(got.Note) != "seven\n" || got.Root != want.Root || !got.At.Equal(stored(want.At)) {
		t.Fatalf("latest %d %q %v", got.Size, got.Note, got.At)
	}
	// The history, largest first, in pages below a size, and only sizes
	// the tree has.
	page, err := s.Checkpoints(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Size != 7 || string(page[0].Note) != "seven\n" || page[1].Size != 3 || page[1].Root != mk(3, "").Root {
		t.Fatalf("first page of checkpoints: %+v", page)
	}
	page, err = s.Checkpoints(ctx, page[1].Size, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Size != 0 || !page[0].At.Equal(stored(at(0))) {
		t.Fatalf("second page of checkpoints: %+v", page)
	}
	if page, err = s.Checkpoints(ctx, 0, 0); err != nil || len(page) != 0 {
		t.Fatalf("a page of none: %v %v", page, err)
	}
	for _, k := range []string{"k1+00000001+AAAA", "k2+00000002+BBBB", "k1+00000001+AAAA"} {
		if err := s.AddVerifierKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.VerifierKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Key != "k1+00000001+AAAA" || keys[1].Key != "k2+00000002+BBBB" {
		t.Fatalf("keys %+v", keys)
	}
}

// CheckTreeCatchesUp writes records the way a gateway from before the
// Merkle tree did (rows only, written by legacy at the given index): the
// next AppendBatch integrates them in order, inclusion proofs of every
// record verify, and a hole in the part still to integrate stops appends
// with ErrTreeCorrupt (the log fails closed rather than grow a tree over
// a hole). It returns the records written, at indexes 0-7 and 9.
func CheckTreeCatchesUp(t *testing.T, s service.Store, legacy func(idx int, r evidence.Record)) []evidence.Record {
	t.Helper()
	ctx := t.Context()
	rec := func(i int) evidence.Record {
		r := evidence.Record{ID: fmt.Sprintf("old-%d", i), Kind: evidence.KindCheck, Partner: "p",
			At: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), Body: fmt.Appendf(nil, `{"n":%d}`, i)}
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
	for i := 5; i < 8; i++ {
		r := rec(i)
		legacy(i, r)
		want = append(want, r)
	}
	if head, _ := s.TreeHead(ctx); head.Size != 5 {
		t.Fatalf("tree of %d before catching up", head.Size)
	}
	if next, err := s.AppendBatch(ctx, nil); err != nil || next != 8 {
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
	r := rec(9)
	legacy(9, r) // index 8 missing
	if _, err := s.AppendBatch(ctx, []evidence.Record{rec(20)}); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("append over a hole: %v", err)
	}
	return append(want, r)
}
