package evidence

import (
	"fmt"
	"testing"
)

// TestFileTree: the file tree's root is the log tree's root over the same
// leaves, and every leaf's proof from its files verifies, for sizes on and
// off powers of two.
func TestFileTree(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100, 1025} {
		w, err := CreateFileTree(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := TreeFrom(Head{Root: EmptyRoot()})
		leaves := make([][HashSize]byte, n)
		for i := range n {
			leaves[i] = HashLeaf(fmt.Appendf(nil, `{"n":%d}`, i))
			if got := w.Append(leaves[i]); got != uint64(i) {
				t.Fatalf("index %d, want %d", got, i)
			}
			ref.Append(leaves[i], nil)
		}
		size, root, err := w.Finish()
		if err != nil || size != uint64(n) || root != ref.Root() {
			t.Fatalf("n=%d: size %d root %x (want %x), %v", n, size, root, ref.Root(), err)
		}
		ft, err := OpenFileTree(w.dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			p, err := InclusionProof(t.Context(), ft, uint64(i), size)
			if err != nil {
				t.Fatalf("n=%d leaf %d: %v", n, i, err)
			}
			if err := VerifyInclusion(leaves[i], uint64(i), size, p, root); err != nil {
				t.Fatalf("n=%d leaf %d: %v", n, i, err)
			}
		}
		ft.Close()
	}
}
