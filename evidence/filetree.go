package evidence

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// A screening job's answers form a Merkle tree of their own, kept in files
// beside the job rather than in the store: one file per level, node i of
// level L at offset 32·i, each perfect subtree written once when it
// completes. Its root is one record of the evidence log, so each answer is
// proved by two chained proofs (the answer in the job's tree, the job's
// record in the log), and millions of answers cost one log record.

// HashLeaf is the RFC 6962 hash of a leaf holding data.
func HashLeaf(data []byte) [HashSize]byte { return to32(hasher.HashLeaf(data)) }

// FileTreeWriter builds a tree into files, leaf by leaf, holding only the
// tree's right border in memory.
type FileTreeWriter struct {
	dir    string
	tree   *Tree
	files  []*os.File
	levels []*bufio.Writer
	err    error
}

// CreateFileTree starts an empty tree in dir (created, and emptied of a
// previous attempt's levels).
func CreateFileTree(dir string) (*FileTreeWriter, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	t, err := TreeFrom(Head{Root: EmptyRoot()})
	if err != nil {
		return nil, err
	}
	return &FileTreeWriter{dir: dir, tree: t}, nil
}

// Append adds the leaf hash of data; it returns the leaf's index.
func (w *FileTreeWriter) Append(leaf [HashSize]byte) uint64 {
	i := w.tree.Size()
	w.tree.Append(leaf, func(id NodeID, h [HashSize]byte) {
		if w.err != nil {
			return
		}
		lw, err := w.level(int(id.Level))
		if err != nil {
			w.err = err
			return
		}
		_, w.err = lw.Write(h[:])
	})
	return i
}

func (w *FileTreeWriter) level(l int) (*bufio.Writer, error) {
	for len(w.levels) <= l {
		// The levels hash answers about persons: credgate's user only.
		f, err := os.OpenFile(filepath.Join(w.dir, "level"+strconv.Itoa(len(w.levels))), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		w.files = append(w.files, f)
		w.levels = append(w.levels, bufio.NewWriterSize(f, 64<<10))
	}
	return w.levels[l], nil
}

// Finish writes the levels durably and returns the tree's size and root.
func (w *FileTreeWriter) Finish() (uint64, [HashSize]byte, error) {
	err := w.err
	for i, lw := range w.levels {
		if err == nil {
			err = lw.Flush()
		}
		if err == nil {
			err = w.files[i].Sync()
		}
		if cerr := w.files[i].Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return 0, [HashSize]byte{}, fmt.Errorf("write tree: %w", err)
	}
	return w.tree.Size(), w.tree.Root(), nil
}

// FileTree reads a tree FileTreeWriter wrote: it is a NodeReader, so
// InclusionProof works on it. Each level's file is read a block of nodes
// at a time, kept until another block is needed: proofs of consecutive
// leaves, as a job's results are read, share most of their nodes, so a
// million proofs cost thousands of reads, not tens of millions. Not safe
// for concurrent use.
type FileTree struct {
	levels []*os.File
	blocks []treeBlock
}

// treeBlockNodes is the nodes of a level read at once.
const treeBlockNodes = 256

type treeBlock struct {
	first uint64 // index of the block's first node
	n     int    // nodes held
	buf   []byte
}

// OpenFileTree opens the tree in dir.
func OpenFileTree(dir string) (*FileTree, error) {
	t := &FileTree{}
	for l := 0; ; l++ {
		f, err := os.Open(filepath.Join(dir, "level"+strconv.Itoa(l)))
		if errors.Is(err, os.ErrNotExist) {
			t.blocks = make([]treeBlock, len(t.levels))
			return t, nil
		}
		if err != nil {
			t.Close()
			return nil, err
		}
		t.levels = append(t.levels, f)
	}
}

// TreeNodes reads the nodes ids.
func (t *FileTree) TreeNodes(_ context.Context, ids []NodeID) ([][HashSize]byte, error) {
	out := make([][HashSize]byte, len(ids))
	for i, id := range ids {
		if int(id.Level) >= len(t.levels) {
			return nil, fmt.Errorf("%w: no level %d", ErrTreeCorrupt, id.Level)
		}
		b := &t.blocks[id.Level]
		if id.Index < b.first || id.Index >= b.first+uint64(b.n) {
			if b.buf == nil {
				b.buf = make([]byte, treeBlockNodes*HashSize)
			}
			first := id.Index - id.Index%treeBlockNodes
			n, err := t.levels[id.Level].ReadAt(b.buf, int64(first)*HashSize)
			if err != nil && !errors.Is(err, io.EOF) {
				b.n = 0
				return nil, fmt.Errorf("%w: node %d/%d: %w", ErrTreeCorrupt, id.Level, id.Index, err)
			}
			b.first, b.n = first, n/HashSize
			if id.Index >= b.first+uint64(b.n) {
				return nil, fmt.Errorf("%w: node %d/%d: beyond the level's %d nodes", ErrTreeCorrupt, id.Level, id.Index, b.first+uint64(b.n))
			}
		}
		off := (id.Index - b.first) * HashSize
		copy(out[i][:], b.buf[off:off+HashSize])
	}
	return out, nil
}

// Close closes the level files.
func (t *FileTree) Close() {
	for _, f := range t.levels {
		f.Close()
	}
}
