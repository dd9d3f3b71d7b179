package evidence

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The log is an RFC 6962 / RFC 9162 Merkle tree whose leaf i is record i.
// Stores keep every perfect subtree's hash ("node"), written once in the
// transaction that completes it and never changed, so that any proof at
// any tree size is at most 2·log2(n) node reads, and a small "head": the
// tree size, its root and its right border (the compact range of
// [0, size): at most 64 hashes), from which the next batch is integrated
// without reading anything else.

// HashSize is the size of every hash in the log.
const HashSize = 32

// Errors of the tree.
var (
	// ErrInvalidRecord: a record cannot be encoded as a leaf (empty or
	// oversized id, control characters in a field).
	ErrInvalidRecord = errors.New("invalid evidence record")
	// ErrTreeSize: a proof was asked for a size the log has not reached,
	// or for sizes in the wrong order.
	ErrTreeSize = errors.New("tree size out of range")
	// ErrTreeCorrupt: the stored tree does not agree with itself or with the
	// records (a node missing, a head that does not match the log).
	ErrTreeCorrupt = errors.New("evidence tree corrupt")
)

// MaxFieldLen bounds a record's id, kind and partner, which leaves encode.
const MaxFieldLen = 256

var hasher = rfc6962.DefaultHasher

// NodeID names a perfect subtree of the log: level 0 are the leaves, and
// node (l, i) covers leaves [i·2^l, (i+1)·2^l).
type NodeID = compact.NodeID

// Head is the state of the tree as last committed.
type Head struct {
	Size uint64
	Root [HashSize]byte
	// Border is the compact range of [0, Size): the hashes of the perfect
	// subtrees covering it, left to right, concatenated.
	Border []byte
}

// EmptyRoot is the root of the empty tree (SHA-256 of nothing).
func EmptyRoot() [HashSize]byte { return to32(hasher.EmptyRoot()) }

// leafVersion heads every leaf's data, so that a later encoding can be told
// apart.
const leafVersion = "credgate-evidence-v1"

// LeafData is the canonical encoding a leaf commits to: the record's
// position-independent identity (id, kind, caller, time to the microsecond,
// UTC) and its record hash SHA-256(salt ‖ body). The body itself is not in
// the leaf, so erasing a body (and its salt) leaves the tree intact.
func LeafData(r Record) []byte {
	return appendLeafData(make([]byte, 0, leafDataSize(r)), r) // record.go
}

// LeafHash is the RFC 6962 leaf hash of the record: SHA-256(0x00 ‖ LeafData).
func LeafHash(r Record) [HashSize]byte { return leafHash(r) }

// LeafHashes are the leaf hashes of recs, in order: what a store's
// AppendBatch computes when no appender hashed the records before it.
func LeafHashes(recs []Record) [][HashSize]byte {
	leaves := make([][HashSize]byte, len(recs))
	for i := range recs {
		leaves[i] = leafHash(recs[i])
	}
	return leaves
}

// ValidateBatch checks what every store's AppendLeaves is given: one leaf
// hash per record, and records that Validate.
func ValidateBatch(recs []Record, leaves [][HashSize]byte) error {
	if len(leaves) != len(recs) {
		return fmt.Errorf("%d leaves for %d records", len(leaves), len(recs))
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// hashChildren is hasher.HashChildren, SHA-256(0x01 ‖ l ‖ r), with one
// allocation (the result) instead of three: each evidence commit hashes
// about two nodes per level of the tree on the check path, and that
// garbage set part of the GC's pace (docs/PERFORMANCE.md, "What a slow
// commit is made of").
func hashChildren(l, r []byte) []byte {
	if len(l) != HashSize || len(r) != HashSize {
		return hasher.HashChildren(l, r)
	}
	var b [1 + 2*HashSize]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+HashSize:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// Validate reports whether the record can be a leaf: the fields the leaf
// encodes line by line must be non-empty (partner may be empty), bounded
// and free of control characters, so that no two records share an
// encoding.
func (r Record) Validate() error {
	for _, f := range []struct {
		name, v  string
		required bool
	}{{"id", r.ID, true}, {"kind", string(r.Kind), true}, {"partner", r.Partner, false}} {
		if f.v == "" {
			if f.required {
				return fmt.Errorf("%w: empty %s", ErrInvalidRecord, f.name)
			}
			continue
		}
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidRecord, f.name, MaxFieldLen)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidRecord, f.name)
		}
		for _, c := range f.v {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("%w: control character in %s", ErrInvalidRecord, f.name)
			}
		}
	}
	return nil
}

// Tree integrates leaves into the tree kept by a store. It holds only the
// right border; every node it completes is reported to the caller, which
// stores it in the same transaction as the records.
type Tree struct {
	rng *compact.Range
}

var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// TreeFrom resumes a tree from its stored head.
func TreeFrom(h Head) (*Tree, error) {
	if len(h.Border)%HashSize != 0 {
		return nil, fmt.Errorf("%w: border of %d bytes", ErrTreeCorrupt, len(h.Border))
	}
	hashes := make([][]byte, len(h.Border)/HashSize)
	for i := range hashes {
		hashes[i] = h.Border[i*HashSize : (i+1)*HashSize : (i+1)*HashSize]
	}
	rng, err := rangeFactory.NewRange(0, h.Size, hashes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTreeCorrupt, err)
	}
	t := &Tree{rng: rng}
	if root := t.Root(); root != h.Root {
		return nil, fmt.Errorf("%w: head root %x does not match its border's %x", ErrTreeCorrupt, h.Root, root)
	}
	return t, nil
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.rng.End() }

// Append adds a leaf at index Size(), calling visit for the leaf and every
// perfect subtree it completes.
func (t *Tree) Append(leaf [HashSize]byte, visit func(id NodeID, hash [HashSize]byte)) {
	var v compact.VisitFn
	if visit != nil {
		v = func(id compact.NodeID, h []byte) { visit(id, to32(h)) }
	}
	// Append only fails on a corrupt range, which TreeFrom has ruled out.
	if err := t.rng.Append(leaf[:], v); err != nil {
		panic(fmt.Sprintf("evidence: append to a checked range: %v", err))
	}
}

// Root is the root hash of the tree.
func (t *Tree) Root() [HashSize]byte {
	root, err := t.rng.GetRootHash(nil)
	if err != nil || root == nil {
		return EmptyRoot()
	}
	return to32(root)
}

// Head is the tree's state to store.
func (t *Tree) Head() Head {
	hs := t.rng.Hashes()
	border := make([]byte, 0, len(hs)*HashSize)
	for _, h := range hs {
		border = append(border, h...)
	}
	return Head{Size: t.Size(), Root: t.Root(), Border: border}
}

// NodeReader reads stored nodes. It returns the hashes in the order of ids,
// and an error wrapping ErrTreeCorrupt when one is missing.
type NodeReader interface {
	TreeNodes(ctx context.Context, ids []NodeID) ([][HashSize]byte, error)
}

// InclusionProof is the RFC 9162 inclusion proof of leaf index in the tree
// of the given size, read from stored nodes.
func InclusionProof(ctx context.Context, r NodeReader, index, size uint64) ([][HashSize]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of %d", ErrTreeSize, index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTreeSize, err)
	}
	return fetchProof(ctx, r, nodes)
}

// ConsistencyProof is the RFC 9162 consistency proof from the tree of size
// from to the tree of size to.
func ConsistencyProof(ctx context.Context, r NodeReader, from, to uint64) ([][HashSize]byte, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d is after to %d", ErrTreeSize, from, to)
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTreeSize, err)
	}
	return fetchProof(ctx, r, nodes)
}

func fetchProof(ctx context.Context, r NodeReader, nodes proof.Nodes) ([][HashSize]byte, error) {
	if len(nodes.IDs) == 0 {
		return [][HashSize]byte{}, nil
	}
	got, err := r.TreeNodes(ctx, nodes.IDs)
	if err != nil {
		return nil, err
	}
	if len(got) != len(nodes.IDs) {
		return nil, fmt.Errorf("%w: read %d of %d nodes", ErrTreeCorrupt, len(got), len(nodes.IDs))
	}
	hs := make([][]byte, len(got))
	for i := range got {
		hs[i] = got[i][:]
	}
	hs, err = nodes.Rehash(hs, hashChildren)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTreeCorrupt, err)
	}
	out := make([][HashSize]byte, len(hs))
	for i, h := range hs {
		out[i] = to32(h)
	}
	return out, nil
}

// RootAt computes the root of the tree of the given size from stored nodes:
// the hashes of the perfect subtrees covering [0, size).
func RootAt(ctx context.Context, r NodeReader, size uint64) ([HashSize]byte, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	got, err := r.TreeNodes(ctx, ids)
	if err != nil {
		return [HashSize]byte{}, err
	}
	hs := make([][]byte, len(got))
	for i := range got {
		hs[i] = got[i][:]
	}
	rng, err := rangeFactory.NewRange(0, size, hs)
	if err != nil {
		return [HashSize]byte{}, fmt.Errorf("%w: %w", ErrTreeCorrupt, err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return [HashSize]byte{}, fmt.Errorf("%w: %w", ErrTreeCorrupt, err)
	}
	return to32(root), nil
}

// VerifyInclusion checks that leaf is at index in the tree of the given
// size and root.
func VerifyInclusion(leaf [HashSize]byte, index, size uint64, p [][HashSize]byte, root [HashSize]byte) error {
	return readable(proof.VerifyInclusion(hasher, index, size, leaf[:], slices32(p), root[:]))
}

// VerifyConsistency checks that the tree (size2, root2) extends the tree
// (size1, root1).
func VerifyConsistency(size1, size2 uint64, p [][HashSize]byte, root1, root2 [HashSize]byte) error {
	return readable(proof.VerifyConsistency(hasher, size1, size2, slices32(p), root1[:], root2[:]))
}

// rootMismatch is proof.RootMismatchError printed in hex on one line: the
// library prints the roots as decimal byte slices over several lines,
// which credgate verify and audit would pass on to people and logs.
type rootMismatch struct{ err proof.RootMismatchError }

func (e *rootMismatch) Error() string {
	return fmt.Sprintf("calculated root %x does not match expected root %x", e.err.CalculatedRoot, e.err.ExpectedRoot)
}

// Unwrap keeps errors.As(err, &proof.RootMismatchError{}) working.
func (e *rootMismatch) Unwrap() error { return e.err }

func readable(err error) error {
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return &rootMismatch{err: rm}
	}
	return err
}

func slices32(p [][HashSize]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func to32(b []byte) [HashSize]byte {
	var h [HashSize]byte
	copy(h[:], b)
	return h
}
