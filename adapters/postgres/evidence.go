package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// guardSQL fails the transaction (division by zero) unless the log ends
// where this Store's last append left it: the tree head has $1 records and
// the log $1 records too. It runs after the append lock is held, so nothing
// moves the end of the log between it and the commit. The CASE reads the
// table, so the planner cannot fold the division away.
const guardSQL = `SELECT 1 / (CASE WHEN h.size = $1 AND (SELECT coalesce(max(idx) + 1, 0) FROM evidence) = $1
	THEN 1 ELSE 0 END) FROM evidence_tree_head h WHERE h.id = 1`

// divisionByZero is the SQLSTATE guardSQL raises when the log has moved.
const divisionByZero = "22012"

// errLogMoved: the log does not end where this Store last left it (another
// appender, another replica, or records written outside AppendBatch).
var errLogMoved = errors.New("the evidence log moved since this store's last append")

// logTip is the head of the tree as this Store's last append left it,
// whose size is also the end of the log. With it the next batch's indexes
// and tree nodes are computed before the transaction, and the batch is
// committed in one round trip (the guard checks the tip still holds). It is
// a hint: a wrong one costs a failed guard and the slow path, never a
// wrong tree.
type logTip struct {
	mu   sync.Mutex
	head evidence.Head
	ok   bool
}

func (t *logTip) load() (evidence.Head, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.head, t.ok
}

func (t *logTip) set(h evidence.Head, ok bool) {
	t.mu.Lock()
	t.head, t.ok = h, ok
	t.mu.Unlock()
}

// AppendBatch commits recs in one transaction with consecutive indexes
// following the last record, integrates them into the Merkle tree in the
// same transaction, and returns the first index. Appenders in every
// process sharing the schema are serialised by a transaction-scoped
// advisory lock, so they grow one log and one tree. An empty batch appends
// nothing (it only integrates records the tree does not cover yet) and
// returns the index the next record will get.
//
// A batch following this Store's own last append (the common case: one
// appender per replica) is committed in one round trip: its indexes and
// tree nodes are computed from the tip before the transaction, and the
// lock, a guard, the records, the nodes and the head go in one implicit
// transaction. Otherwise, or when the guard finds the log moved, the batch
// takes the general path: lock and read the head, then write.
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	leaves := make([][evidence.HashSize]byte, len(recs))
	for i := range recs {
		leaves[i] = evidence.LeafHash(recs[i])
	}
	return s.AppendLeaves(ctx, recs, leaves)
}

// AppendLeaves is AppendBatch with the leaf hashes computed by the caller
// (evidence.LeafSink).
func (s *Store) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	if len(leaves) != len(recs) {
		return 0, fmt.Errorf("postgres: append evidence: %d leaves for %d records", len(leaves), len(recs))
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return 0, fmt.Errorf("postgres: append evidence record %d: %w", i, err)
		}
	}
	rows := newRecordRows(recs)
	if base, ok := s.tip.load(); ok && len(recs) > 0 {
		first, err := s.appendAfter(ctx, base, rows, leaves)
		if err == nil || !errors.Is(err, errLogMoved) {
			return first, err
		}
	}
	return s.appendLocked(ctx, rows, leaves)
}

// recordRows are a batch's columns, as the arrays appendSQL unnests.
type recordRows struct {
	n                   int
	ids, kinds, callers []string
	ats                 []time.Time
	bodies, salts       [][]byte
	hashes              [][]byte
}

func newRecordRows(recs []evidence.Record) *recordRows {
	n := len(recs)
	r := &recordRows{n: n, ids: make([]string, n), kinds: make([]string, n), callers: make([]string, n),
		ats: make([]time.Time, n), bodies: make([][]byte, n), salts: make([][]byte, n), hashes: make([][]byte, n)}
	for i := range recs {
		rec := &recs[i]
		r.ids[i], r.kinds[i], r.callers[i], r.ats[i] = rec.ID, string(rec.Kind), rec.Partner, storeutil.Time(rec.At)
		r.bodies[i], r.salts[i], r.hashes[i] = nonNil(rec.Body), nonNil(rec.Salt), rec.Hash[:]
	}
	return r
}

// queueWrites queues the batch's records (from index next), the tree's
// new nodes and its new head.
func (r *recordRows) queueWrites(b *pgx.Batch, next int64, nodes []evidence.Node, h evidence.Head) {
	levels, idxs, nodeHashes := make([]int16, len(nodes)), make([]int64, len(nodes)), make([][]byte, len(nodes))
	for i, n := range nodes {
		levels[i], idxs[i], nodeHashes[i] = int16(n.ID.Level), int64(n.ID.Index), n.Hash[:]
	}
	if r.n > 0 {
		b.Queue(appendSQL, next, r.ids, r.kinds, r.callers, r.ats, r.bodies, r.salts, r.hashes)
	}
	b.Queue(insertNodesSQL, levels, idxs, nodeHashes)
	b.Queue(sqlcommon.UpdateHeadSQL, int64(h.Size), h.Root[:], nonNil(h.Border))
}

// readWrites reads the results of queueWrites.
func (r *recordRows) readWrites(br pgx.BatchResults) error {
	if r.n > 0 {
		tag, err := br.Exec()
		if err != nil {
			return mapErr(err)
		}
		if tag.RowsAffected() != int64(r.n) {
			return fmt.Errorf("inserted %d of %d records", tag.RowsAffected(), r.n)
		}
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("insert tree nodes: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("update tree head: %w", err)
	}
	return nil
}

// appendAfter commits a batch that follows base (the tip) in one round
// trip: one implicit transaction (a pipeline ending in one Sync), which
// PostgreSQL commits, durably, before it answers the Sync. It returns an
// error wrapping errLogMoved, having written nothing, when the log does
// not end at base.
func (s *Store) appendAfter(ctx context.Context, base evidence.Head, rows *recordRows, leaves [][evidence.HashSize]byte) (uint64, error) {
	h, nodes, err := evidence.Integrate(ctx, noLeaves{}, base, base.Size, leaves)
	if err != nil {
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, appendLockClass, s.appendLockKey)
	b.Queue(guardSQL, int64(base.Size))
	rows.queueWrites(b, int64(base.Size), nodes, h)
	br := s.pool.SendBatch(ctx, b)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("take append lock: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == divisionByZero {
				return errLogMoved
			}
			return fmt.Errorf("check the end of the log: %w", err)
		}
		return rows.readWrites(br)
	}()
	// Close reads up to the Sync: the commit's outcome.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Committed or not is unknown on some errors: the next batch reads
		// the head again.
		s.tip.set(evidence.Head{}, false)
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	s.tip.set(h, true)
	return base.Size, nil
}

// noLeaves is the LeafReader of a tree known to cover the whole log:
// Integrate reads no leaf then.
type noLeaves struct{}

func (noLeaves) LeafRecords(context.Context, uint64, uint64) ([]evidence.Record, error) {
	return nil, errLogMoved
}

// appendLocked is the general path: lock, read the head and the end of
// the log, integrate, write; it leaves the tip at the new head.
func (s *Store) appendLocked(ctx context.Context, rows *recordRows, leaves [][evidence.HashSize]byte) (uint64, error) {
	var (
		next  int64
		after evidence.Head
	)
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
		after = h
		if h.Size == head.Size {
			return nil
		}
		// Records, nodes and head in one more round trip.
		b = &pgx.Batch{}
		rows.queueWrites(b, next, nodes, h)
		br = tx.SendBatch(ctx, b)
		if err := rows.readWrites(br); err != nil {
			br.Close()
			return err
		}
		return br.Close()
	})
	if err != nil {
		s.tip.set(evidence.Head{}, false)
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	// The tree now covers the whole log: the next batch may follow it.
	s.tip.set(after, true)
	return uint64(next), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
