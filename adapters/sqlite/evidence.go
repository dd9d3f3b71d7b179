package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// AppendBatch commits recs in one durable transaction with consecutive
// indexes following the last record, integrating them into the Merkle tree
// in the same transaction, and returns the first index. An empty batch
// appends nothing (it only integrates records the tree does not cover yet)
// and returns the index the next record will get.
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return 0, fmt.Errorf("sqlite: append evidence record %d: %w", i, err)
		}
	}
	// The write pool has one connection and transactions begin IMMEDIATE, so
	// no other writer can slip in between reading the end of the log and
	// appending to it.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: append evidence: %w", err)
	}
	defer tx.Rollback()
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM evidence`).Scan(&next); err != nil {
		return 0, fmt.Errorf("sqlite: append evidence: %w", err)
	}
	if len(recs) == 0 {
		if err := integrateTree(ctx, tx, next, nil); err != nil {
			return 0, fmt.Errorf("sqlite: append evidence: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("sqlite: append evidence: %w", err)
		}
		return uint64(next), nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: append evidence: %w", err)
	}
	defer ins.Close()
	for i, r := range recs {
		body, salt := r.Body, r.Salt
		if body == nil {
			body = []byte{}
		}
		if salt == nil {
			salt = []byte{}
		}
		if _, err := ins.ExecContext(ctx, next+int64(i), r.ID, string(r.Kind), r.Partner,
			micros(storeutil.Time(r.At)), body, salt, r.Hash[:]); err != nil {
			return 0, fmt.Errorf("sqlite: append evidence record %q: %w", r.ID, mapErr(err))
		}
	}
	if err := integrateTree(ctx, tx, next, recs); err != nil {
		return 0, fmt.Errorf("sqlite: append evidence: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: append evidence: %w", err)
	}
	return uint64(next), nil
}

// Record returns the record with the given ID, or evidence.ErrNotFound.
func (s *Store) Record(ctx context.Context, id string) (evidence.Record, error) {
	var (
		r       evidence.Record
		idx, at int64
		kind    string
		hash    []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT idx, id, kind, partner, at, body, salt, hash
		FROM evidence WHERE id = ?`, id).Scan(&idx, &r.ID, &kind, &r.Partner, &at, &r.Body, &r.Salt, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return evidence.Record{}, fmt.Errorf("sqlite: evidence %q: %w", id, evidence.ErrNotFound)
	}
	if err != nil {
		return evidence.Record{}, fmt.Errorf("sqlite: evidence %q: %w", id, err)
	}
	if len(hash) != len(r.Hash) {
		return evidence.Record{}, fmt.Errorf("sqlite: evidence %q: stored hash is %d bytes", id, len(hash))
	}
	r.Index = uint64(idx)
	r.Kind = evidence.Kind(kind)
	r.At = fromMicros(at)
	copy(r.Hash[:], hash)
	return r, nil
}
