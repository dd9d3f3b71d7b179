package service

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/credgate/credgate/evidence"
)

// ErrRecordErased: the record's body was erased (personal data past its
// retention: body and salt deleted, the rest kept, docs/EVIDENCE.md); only
// its place in the log remains provable. *ErasedRecord carries what does.
var ErrRecordErased = errors.New("evidence record erased")

// ErasedRecord is what remains provable of an erased record: its identity,
// position, hashes and, when it can be built, its receipt (which proves the
// hash into a signed checkpoint but no longer the body).
type ErasedRecord struct {
	ID         string
	Index      uint64
	RecordHash string // hex
	LeafHash   string // hex
	Receipt    *evidence.Receipt
}

func (e *ErasedRecord) Error() string {
	return fmt.Sprintf("evidence record %q (log index %d): body erased", e.ID, e.Index)
}

// Unwrap makes errors.Is(err, ErrRecordErased) hold.
func (e *ErasedRecord) Unwrap() error { return ErrRecordErased }

// TreeLeafReader reads the tree's leaves, so that a record read back can
// be held to the leaf the log signed at its position (one primary-key
// read); the stores implement it.
type TreeLeafReader interface {
	TreeNodes(ctx context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error)
}

// WithReceiptBuilder lets a read of an erased record carry its receipt.
func WithReceiptBuilder(b ReceiptBuilder) CheckerOption {
	return func(c *Checker) { c.receipts = b }
}

// verifyRecord holds a record read from the store to what the log
// committed: SHA-256(salt ‖ body) must be its stored hash, and its leaf
// must be the tree's leaf at its index. A record that fails is never
// served (evidence.ErrTreeCorrupt: the body was changed, or rows were
// moved); an erased one answers *ErasedRecord.
func (c *Checker) verifyRecord(ctx context.Context, rec evidence.Record) error {
	leaf := evidence.LeafHash(rec)
	if c.leaves != nil {
		got, err := c.leaves.TreeNodes(ctx, []evidence.NodeID{{Level: 0, Index: rec.Index}})
		if err != nil {
			return fmt.Errorf("read the tree leaf of record %q: %w", rec.ID, err)
		}
		if got[0] != leaf {
			return fmt.Errorf("%w: record %q stored at index %d is not the record the log holds there", evidence.ErrTreeCorrupt, rec.ID, rec.Index)
		}
	}
	if len(rec.Body) == 0 && len(rec.Salt) == 0 {
		e := &ErasedRecord{ID: rec.ID, Index: rec.Index, RecordHash: hex.EncodeToString(rec.Hash[:]), LeafHash: hex.EncodeToString(leaf[:])}
		if c.receipts != nil {
			// The erased record is still in the tree: its receipt proves
			// the hash. Without one (no checkpoint yet, database trouble)
			// the rest is still worth answering.
			if r, err := c.receipts.Receipt(ctx, rec); err == nil {
				e.Receipt = &r
			}
		}
		return e
	}
	if evidence.RecordHash(rec.Salt, rec.Body) != rec.Hash {
		return fmt.Errorf("%w: the body of record %q no longer matches its record hash", evidence.ErrTreeCorrupt, rec.ID)
	}
	return nil
}
