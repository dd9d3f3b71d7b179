package evidence

import (
	"context"
	"fmt"
)

// One integration for every store, as Tessera keeps one Integrate for all
// its drivers: a store reads the head and the end of the log inside its
// appending transaction, calls Integrate, and writes the nodes and the head
// it returns in the same transaction, in whatever way suits its database.

// LeafReader reads, inside the appending transaction, the records a tree
// does not cover yet (appended before the tree existed). Bodies are not
// needed: a leaf commits to the record's identity and hash only.
type LeafReader interface {
	// LeafRecords returns the records with from <= index < to, in index
	// order; a deleted record is simply absent.
	LeafRecords(ctx context.Context, from, to uint64) ([]Record, error)
}

// Node is a stored perfect subtree.
type Node struct {
	ID   NodeID
	Hash [HashSize]byte
}

// catchUpChunk is how many old records are read at a time when the tree
// integrates records appended before it existed.
const catchUpChunk = 10000

// Integrate resumes the tree from head and integrates first the records
// [head.Size, next) read from r, then leaves, which take indexes next,
// next+1, …. It returns the new head and every node completed on the way,
// which the caller stores with the records in one transaction. The head
// returned equals head when there was nothing to integrate.
//
// A head covering more than next records, or a record missing from the
// part to integrate, is ErrTreeCorrupt: the log fails closed rather than
// grow a tree over a hole.
func Integrate(ctx context.Context, r LeafReader, head Head, next uint64, leaves [][HashSize]byte) (Head, []Node, error) {
	if head.Size > next {
		return Head{}, nil, fmt.Errorf("%w: the tree covers %d records but the log has only %d: records were deleted",
			ErrTreeCorrupt, head.Size, next)
	}
	tree, err := TreeFrom(head)
	if err != nil {
		return Head{}, nil, err
	}
	var nodes []Node
	visit := func(id NodeID, h [HashSize]byte) { nodes = append(nodes, Node{ID: id, Hash: h}) }
	for tree.Size() < next {
		from := tree.Size()
		to := min(from+catchUpChunk, next)
		old, err := r.LeafRecords(ctx, from, to)
		if err != nil {
			return Head{}, nil, fmt.Errorf("read records: %w", err)
		}
		for _, rec := range old {
			if rec.Index != tree.Size() {
				return Head{}, nil, fmt.Errorf("%w: record %d is missing from the log", ErrTreeCorrupt, tree.Size())
			}
			tree.Append(LeafHash(rec), visit)
		}
		if tree.Size() != to {
			return Head{}, nil, fmt.Errorf("%w: record %d is missing from the log", ErrTreeCorrupt, tree.Size())
		}
	}
	for _, l := range leaves {
		tree.Append(l, visit)
	}
	if tree.Size() == head.Size {
		return head, nil, nil
	}
	return tree.Head(), nodes, nil
}
