package evidence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

func sealed(t testing.TB, id string) evidence.Record {
	t.Helper()
	r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "client-1",
		At: time.Date(2026, 5, 1, 8, 0, 0, 123456789, time.UTC), Body: []byte(`{"check_id":"` + id + `"}`)}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTreeProperties appends random batches and, after each, checks
// against the obvious RFC 6962 definition: the committed root, the root of
// every earlier size computed from stored nodes, an inclusion proof of
// random leaves at random sizes, and consistency proofs between random
// sizes — and that a proof is O(log n) node reads.
func TestTreeProperties(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 42))
			m := newMemStore()
			var leaves [][evidence.HashSize]byte
			n := 0
			for range 40 {
				batch := make([]evidence.Record, rng.IntN(40))
				if seed%2 == 1 {
					batch = make([]evidence.Record, 1+rng.IntN(3))
				}
				for i := range batch {
					batch[i] = sealed(t, fmt.Sprintf("r-%d", n))
					n++
				}
				first, err := m.AppendBatch(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				if first != uint64(len(leaves)) {
					t.Fatalf("first index %d, want %d", first, len(leaves))
				}
				for _, r := range batch {
					leaves = append(leaves, evidence.LeafHash(r))
				}
				head, _ := m.TreeHead(ctx)
				size := uint64(len(leaves))
				if head.Size != size || head.Root != referenceRoot(leaves) {
					t.Fatalf("head (%d, %x), want (%d, %x)", head.Size, head.Root, size, referenceRoot(leaves))
				}
				if size == 0 {
					continue
				}
				for range 8 {
					s := 1 + rng.Uint64N(size)
					want := referenceRoot(leaves[:s])
					got, err := evidence.RootAt(ctx, m, s)
					if err != nil || got != want {
						t.Fatalf("RootAt(%d) = %x, %v; want %x", s, got, err, want)
					}
					i := rng.Uint64N(s)
					m.reads = 0
					p, err := evidence.InclusionProof(ctx, m, i, s)
					if err != nil {
						t.Fatalf("InclusionProof(%d, %d): %v", i, s, err)
					}
					if limit := 2 * bits.Len64(s); m.reads > limit {
						t.Fatalf("inclusion proof at size %d read %d nodes, more than %d", s, m.reads, limit)
					}
					if err := evidence.VerifyInclusion(leaves[i], i, s, p, want); err != nil {
						t.Fatalf("inclusion of %d in %d: %v", i, s, err)
					}
					// A proof for one leaf does not prove another.
					if s > 1 {
						j := (i + 1) % s
						if leaves[j] != leaves[i] && evidence.VerifyInclusion(leaves[j], i, s, p, want) == nil {
							t.Fatalf("proof of %d verified leaf %d", i, j)
						}
					}
					s1 := rng.Uint64N(s + 1)
					c, err := evidence.ConsistencyProof(ctx, m, s1, s)
					if err != nil {
						t.Fatalf("ConsistencyProof(%d, %d): %v", s1, s, err)
					}
					if err := evidence.VerifyConsistency(s1, s, c, referenceRoot(leaves[:s1]), want); err != nil {
						t.Fatalf("consistency %d→%d: %v", s1, s, err)
					}
					if s1 > 0 && s1 < s {
						bad := referenceRoot(leaves[:s1])
						bad[0] ^= 1
						if evidence.VerifyConsistency(s1, s, c, bad, want) == nil {
							t.Fatalf("consistency %d→%d verified a wrong old root", s1, s)
						}
					}
				}
			}
		})
	}
}

func TestTreeResumesFromHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemStore()
	var leaves [][evidence.HashSize]byte
	for i := range 37 {
		r := sealed(t, fmt.Sprintf("x%d", i))
		if _, err := m.AppendBatch(ctx, []evidence.Record{r}); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, evidence.LeafHash(r))
	}
	head, _ := m.TreeHead(ctx)
	resumed, err := evidence.TreeFrom(head)
	if err != nil {
		t.Fatal(err)
	}
	// The resumed tree goes on exactly as one built from all the leaves.
	extra := sealed(t, "x37")
	resumed.Append(evidence.LeafHash(extra), nil)
	if resumed.Root() != referenceRoot(append(leaves, evidence.LeafHash(extra))) {
		t.Fatal("a tree resumed from its head diverges")
	}
	// A head whose root does not match its border is refused.
	bad := head
	bad.Root[3] ^= 0x40
	if _, err := evidence.TreeFrom(bad); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("corrupt head: %v", err)
	}
	bad = head
	bad.Border = bad.Border[:len(bad.Border)-1]
	if _, err := evidence.TreeFrom(bad); !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("short border: %v", err)
	}
	if _, err := evidence.InclusionProof(ctx, m, 37, 37); !errors.Is(err, evidence.ErrTreeSize) {
		t.Fatalf("proof beyond the tree: %v", err)
	}
	if _, err := evidence.ConsistencyProof(ctx, m, 5, 4); !errors.Is(err, evidence.ErrTreeSize) {
		t.Fatalf("backwards consistency: %v", err)
	}
	if got, err := evidence.RootAt(ctx, m, 0); err != nil || got != sha256.Sum256(nil) {
		t.Fatalf("empty root %x %v", got, err)
	}
}

func TestLeafDataCommitsToEveryField(t *testing.T) {
	t.Parallel()
	base := sealed(t, "chk-1")
	leaf := evidence.LeafHash(base)
	mutations := map[string]func(r *evidence.Record){
		"id":      func(r *evidence.Record) { r.ID = "chk-2" },
		"kind":    func(r *evidence.Record) { r.Kind = evidence.KindAdmin },
		"partner": func(r *evidence.Record) { r.Partner = "client-2" },
		"at":      func(r *evidence.Record) { r.At = r.At.Add(time.Microsecond) },
		"hash":    func(r *evidence.Record) { r.Hash[31] ^= 1 },
	}
	for name, mutate := range mutations {
		r := base
		mutate(&r)
		if evidence.LeafHash(r) == leaf {
			t.Errorf("changing %s does not change the leaf", name)
		}
	}
	// What the leaf does not commit to: the body and salt (so they can be
	// erased), the position, and time below the stored microsecond or its
	// zone.
	r := base
	r.Body, r.Salt, r.Index = nil, nil, 99
	r.At = r.At.Truncate(time.Microsecond).In(time.FixedZone("CST", 8*3600))
	if evidence.LeafHash(r) != leaf {
		t.Error("the leaf depends on the body, position, sub-microsecond time or zone")
	}
	if !bytes.HasPrefix(evidence.LeafData(base), []byte("credgate-evidence-v1\nid chk-1\n")) {
		t.Errorf("leaf data %q", evidence.LeafData(base))
	}
}

func TestRecordValidate(t *testing.T) {
	t.Parallel()
	ok := sealed(t, "ok")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(r *evidence.Record){
		"empty id":        func(r *evidence.Record) { r.ID = "" },
		"newline in id":   func(r *evidence.Record) { r.ID = "a\nkind admin" },
		"long partner":    func(r *evidence.Record) { r.Partner = string(bytes.Repeat([]byte("p"), 300)) },
		"empty kind":      func(r *evidence.Record) { r.Kind = "" },
		"invalid utf8":    func(r *evidence.Record) { r.Partner = "\xff" },
		"delete in kind":  func(r *evidence.Record) { r.Kind = "a\x7f" },
		"tab in partner":  func(r *evidence.Record) { r.Partner = "a\tb" },
		"newline partner": func(r *evidence.Record) { r.Partner = "x\nhash 00" },
	} {
		r := ok
		mutate(&r)
		if err := r.Validate(); !errors.Is(err, evidence.ErrInvalidRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateBatch(t *testing.T) {
	t.Parallel()
	recs := []evidence.Record{sealed(t, "a"), sealed(t, "b")}
	leaves := evidence.LeafHashes(recs)
	if len(leaves) != 2 || leaves[0] != evidence.LeafHash(recs[0]) || leaves[1] != evidence.LeafHash(recs[1]) {
		t.Fatal("LeafHashes is not LeafHash of each record in order")
	}
	if err := evidence.ValidateBatch(recs, leaves); err != nil {
		t.Fatal(err)
	}
	if err := evidence.ValidateBatch(recs, leaves[:1]); err == nil {
		t.Error("one leaf for two records accepted")
	}
	bad := append([]evidence.Record(nil), recs...)
	bad[1].ID = ""
	if err := evidence.ValidateBatch(bad, leaves); !errors.Is(err, evidence.ErrInvalidRecord) {
		t.Errorf("an invalid record: %v", err)
	}
}
