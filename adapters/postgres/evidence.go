package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// PostgreSQL keeps its own AppendBatch instead of the shared one
// (sqlcommon.Store.AppendBatch): the check path waits for it, and here it
// takes two round trips whatever the batch size (lock and head; records,
// nodes and head as arrays through unnest), where the shared one would
// send a statement per record and node. The tree integration is the shared
// evidence.Integrate.

// insertNodesSQL inserts the nodes a batch completes, as arrays.
const insertNodesSQL = `INSERT INTO evidence_nodes (level, idx, hash)
	SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`

// appendSQL inserts a batch at consecutive indexes from $1. It runs
// after the append lock is held and the end of the log has been read under
// it, so the indexes are the log's next ones.
const appendSQL = `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
	SELECT $1::bigint + r.ord - 1, r.id, r.kind, r.partner, r.at, r.body, r.salt, r.hash
	FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[], $7::bytea[], $8::bytea[])
		WITH ORDINALITY AS r(id, kind, partner, at, body, salt, hash, ord)`

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
		leaves  = make([][evidence.HashSize]byte, n)
	)
	for i := range recs {
		r := &recs[i]
		if err := r.Validate(); err != nil {
			return 0, fmt.Errorf("postgres: append evidence record %d: %w", i, err)
		}
		ids[i], kinds[i], callers[i], ats[i] = r.ID, string(r.Kind), r.Partner, storeutil.Time(r.At)
		bodies[i], salts[i], hashes[i] = nonNil(r.Body), nonNil(r.Salt), r.Hash[:]
		leaves[i] = evidence.LeafHash(*r)
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
		b.Queue(sqlcommon.HeadSQL)
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
		head := evidence.Head{Size: uint64(size), Border: border}
		copy(head.Root[:], root)
		h, nodes, err := evidence.Integrate(ctx, s.LeafReader(pgTx{tx}), head, uint64(next), leaves)
		if err != nil {
			return err
		}
		if h.Size == head.Size {
			return nil
		}
		levels, idxs, nodeHashes := make([]int16, len(nodes)), make([]int64, len(nodes)), make([][]byte, len(nodes))
		for i, n := range nodes {
			levels[i], idxs[i], nodeHashes[i] = int16(n.ID.Level), int64(n.ID.Index), n.Hash[:]
		}
		// Records, nodes and head in one more round trip.
		b = &pgx.Batch{}
		if n > 0 {
			b.Queue(appendSQL, next, ids, kinds, callers, ats, bodies, salts, hashes)
		}
		b.Queue(insertNodesSQL, levels, idxs, nodeHashes)
		b.Queue(sqlcommon.UpdateHeadSQL, int64(h.Size), h.Root[:], nonNil(h.Border))
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
