package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/credgate/credgate/evidence"
)

// ReceiptBuilder proves a committed record into a signed checkpoint;
// evidence.Log is the implementation.
type ReceiptBuilder interface {
	Receipt(ctx context.Context, rec evidence.Record) (evidence.Receipt, error)
}

// Receipts hands out evidence receipts: a partner gets those of its own
// records (the bodies are already what it was shown); administrators and
// auditors get any.
type Receipts struct {
	records EvidenceReader
	log     ReceiptBuilder
}

// ReceiptsOption configures Receipts.
type ReceiptsOption func(*Receipts)

// NewReceipts returns the receipts use case.
func NewReceipts(records EvidenceReader, log ReceiptBuilder, opts ...ReceiptsOption) *Receipts {
	r := &Receipts{records: records, log: log}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Receipt returns the receipt of record id (a check id or an act id).
func (r *Receipts) Receipt(ctx context.Context, caller Caller, id string) (evidence.Receipt, error) {
	if id == "" || len(id) > evidence.MaxFieldLen {
		return evidence.Receipt{}, fmt.Errorf("evidence record %q: %w", id, ErrNotFound)
	}
	rec, err := r.records.Record(ctx, id)
	if err != nil {
		if errors.Is(err, evidence.ErrNotFound) {
			return evidence.Receipt{}, fmt.Errorf("evidence record %q: %w", id, ErrNotFound)
		}
		return evidence.Receipt{}, err
	}
	switch caller.Role {
	case RoleAdmin, RoleAuditor:
	default:
		// Not ErrForbidden: telling a partner that another's record exists
		// would leak it.
		if rec.Partner != caller.ClientID {
			return evidence.Receipt{}, fmt.Errorf("evidence record %q: %w", id, ErrNotFound)
		}
	}
	return r.log.Receipt(ctx, rec)
}

// AppendLeaves passes the leaf hashes the appender computed ahead of the
// commit (evidence.LeafSink) to a store that takes them, and is
// AppendBatch otherwise. Like AppendBatch it is a write, bounded by the
// appender's commit timeout rather than the read bound.
func (b *BoundedStore) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	if ls, ok := b.Store.(evidence.LeafSink); ok {
		return ls.AppendLeaves(ctx, recs, leaves)
	}
	return b.Store.AppendBatch(ctx, recs)
}

var _ evidence.LeafSink = (*BoundedStore)(nil)
