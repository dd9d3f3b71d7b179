package evidence

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The tree's own hashing must give exactly rfc6962's hashes, which every
// stored node, receipt and proof was made with; and it exists to spare the
// commit path garbage, so its allocations are held too.
func TestHashesAsRFC6962(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		l, r := make([]byte, HashSize), make([]byte, HashSize)
		for j := range l {
			l[j], r[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		if got, want := hashChildren(l, r), hasher.HashChildren(l, r); !bytes.Equal(got, want) {
			t.Fatalf("hashChildren %d: %x, rfc6962 %x", i, got, want)
		}
		rec := Record{ID: "chk-" + strings.Repeat("x", rng.IntN(300)), Kind: KindCheck,
			Partner: strings.Repeat("p", rng.IntN(300)), At: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("X", 3600))}
		copy(rec.Hash[:], l)
		if got, want := LeafHash(rec), to32(hasher.HashLeaf(LeafData(rec))); got != want {
			t.Fatalf("LeafHash %d: %x, rfc6962 %x", i, got, want)
		}
	}
	// Not 32-byte children (no stored node is): rfc6962's answer.
	if got, want := hashChildren([]byte("a"), []byte("bc")), hasher.HashChildren([]byte("a"), []byte("bc")); !bytes.Equal(got, want) {
		t.Fatalf("short children: %x, rfc6962 %x", got, want)
	}
}

func TestTreeHashingAllocations(t *testing.T) {
	l, r := make([]byte, HashSize), make([]byte, HashSize)
	if n := testing.AllocsPerRun(100, func() { hashChildren(l, r) }); n > 1 {
		t.Errorf("hashChildren: %v allocations, want at most 1 (its result)", n)
	}
	rec := Record{ID: "chk-1", Kind: KindCheck, Partner: "client-1", At: time.Now()}
	if n := testing.AllocsPerRun(100, func() { LeafHash(rec) }); n > 0 {
		t.Errorf("LeafHash: %v allocations, want none", n)
	}
}
