package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// appendSQL inserts a batch at consecutive indexes from $1. It runs
// after the append lock is held and the end of the log has been read under
// it, so the indexes are the log's next ones.
const appendSQL = `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
	SELECT $1::bigint + r.ord - 1, r.id, r.kind, r.partner, r.at, r.body, r.salt, r.hash
	FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[], $7::bytea[], $8::bytea[])
		WITH ORDINALITY AS r(id, kind, partner, at, body, salt, hash, ord)`

// headSQL reads the tree head and the end of the log. Under READ
// COMMITTED each statement sees what committed before it started, so once
// the lock is held this is the end of the log.
const headSQL = `SELECT h.size, h.root, h.border, (SELECT coalesce(max(idx) + 1, 0) FROM evidence)
	FROM evidence_tree_head h WHERE h.id = 1`

// AppendBatch commits recs in one transaction with consecutive indexes
// following the last record, integrates them into the Merkle tree in the
// same transaction, and returns the first index. Appenders in every
// process sharing the schema are serialised by a transaction-scoped
// advisory lock, so they grow one log and one tree. An empty batch appends
// nothing (it only integrates records the tree does not cover yet) and
// returns the index the next record will get.
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	var (
		n       = len(recs)
		ids     = make([]string, n)
		kinds   = make([]string, n)
		callers = make([]string, n)
		ats     = make([]time.Time, n)
		bodies  = make([][]byte, n)
		salts   = make([][]byte, n)
		hashes  = make([][]byte, n)
	)
	for i := range recs {
		r := &recs[i]
		if err := r.Validate(); err != nil {
			return 0, fmt.Errorf("postgres: append evidence record %d: %w", i, err)
		}
		ids[i], kinds[i], callers[i], ats[i] = r.ID, string(r.Kind), r.Partner, storeutil.Time(r.At)
		bodies[i], salts[i], hashes[i] = nonNil(r.Body), nonNil(r.Salt), r.Hash[:]
	}
	var next int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock and read the head in one round trip; the read is a later
		// statement, so it takes its snapshot once the lock is held.
		var (
			size         int64
			root, border []byte
		)
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, appendLockClass, s.appendLockKey)
		b.Queue(headSQL)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("take append lock: %w", err)
		}
		if err := br.QueryRow().Scan(&size, &root, &border, &next); err != nil {
			br.Close()
			return fmt.Errorf("read tree head: %w", err)
		}
		if err := br.Close(); err != nil {
			return err
		}
		nodes := &treeNodes{}
		tree, err := resumeTree(ctx, tx, size, next, root, border, nodes)
		if err != nil {
			return err
		}
		for i := range recs {
			tree.Append(evidence.LeafHash(recs[i]), nodes.visit)
		}
		if tree.Size() == uint64(size) {
			return nil
		}
		// Records, nodes and head in one more round trip.
		h := tree.Head()
		b = &pgx.Batch{}
		if n > 0 {
			b.Queue(appendSQL, next, ids, kinds, callers, ats, bodies, salts, hashes)
		}
		b.Queue(insertNodesSQL, nodes.levels, nodes.idxs, nodes.hashes)
		b.Queue(updateHeadSQL, int64(h.Size), h.Root[:], nonNil(h.Border))
		br = tx.SendBatch(ctx, b)
		if n > 0 {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return mapErr(err)
			}
			if tag.RowsAffected() != int64(n) {
				br.Close()
				return fmt.Errorf("inserted %d of %d records", tag.RowsAffected(), n)
			}
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("insert tree nodes: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("update tree head: %w", err)
		}
		return br.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	return uint64(next), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Record returns the record with the given ID, or evidence.ErrNotFound.
func (s *Store) Record(ctx context.Context, id string) (evidence.Record, error) {
	var (
		r    evidence.Record
		idx  int64
		kind string
		hash []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT idx, id, kind, partner, at, body, salt, hash
		FROM evidence WHERE id = $1`, id).Scan(&idx, &r.ID, &kind, &r.Partner, &r.At, &r.Body, &r.Salt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: %w", id, evidence.ErrNotFound)
	}
	if err != nil {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: %w", id, err)
	}
	if len(hash) != len(r.Hash) {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: stored hash is %d bytes", id, len(hash))
	}
	r.Index = uint64(idx)
	r.Kind = evidence.Kind(kind)
	r.At = storeutil.Time(r.At)
	copy(r.Hash[:], hash)
	return r, nil
}
