package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

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
// exactly where the batch was predicted to follow: the tree head has $1
// records and root $2, and the log $1 records too. It runs after the
// append lock is held, so nothing moves the end of the log between it and
// the commit. The root matters when the batch follows another still in
// flight: if that one failed while another replica appended as many
// records, the size alone would match. The CASE reads the table, so the
// planner cannot fold the division away.
const guardSQL = `SELECT 1 / (CASE WHEN h.size = $1 AND h.root = $2
	AND (SELECT coalesce(max(idx) + 1, 0) FROM evidence) = $1
	THEN 1 ELSE 0 END) FROM evidence_tree_head h WHERE h.id = 1`

// lockSQL takes the append lock; lockWrittenSQL also tells the statement
// trigger evidence_checks_derived (migration 0016) that the batch's derived
// rows are written by the store (insertCheckIndexSQL and the two below), so
// it returns without reading the records.
const (
	lockSQL        = `SELECT pg_advisory_xact_lock($1, $2)`
	lockWrittenSQL = `SELECT pg_advisory_xact_lock($1, $2), set_config('credgate.check_rows', 'written', true)`
)

// The rows derived from a batch's checks (sqlcommon.ReadPGCheckRows), at
// the indexes from $1. Plain inserts: their keys are the records' ids,
// which evidence's unique id has just admitted, so none is there already
// (the trigger's ON CONFLICT DO NOTHING never skipped a row, and cost a
// speculative insertion per row).
const (
	insertCheckIndexSQL = `INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
	SELECT r.id, $1::bigint + r.off, r.partner, r.subject, r.action, r.outcome, r.region, r.at
	FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
		AS r(id, off, partner, subject, action, outcome, region, at)`
	insertCheckListsSQL = `INSERT INTO check_lists (check_id, list) SELECT * FROM unnest($1::text[], $2::text[])`
)

// insertIdempotencySQL maps the batch's keyed checks (partner, key) to
// their ids (migration 0028); sent only for a batch that has one. ON
// CONFLICT for a record integrated twice (a spool's retry).
const insertIdempotencySQL = `INSERT INTO check_idempotency (partner, idem_key, checked_at, check_id)
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) ON CONFLICT DO NOTHING`

// divisionByZero is the SQLSTATE guardSQL raises when the log has moved.
const divisionByZero = "22012"

// errLogMoved: the log does not end where the batch was predicted to
// follow (another appender, another replica, records written outside
// AppendBatch, or the batch before it did not land).
var errLogMoved = errors.New("the evidence log moved since this store's last append")

// appendChain is where this Store expects the log to end: the head its
// last acknowledged append left (the tip) and the batch sent last, which
// may still be committing. With it a batch's indexes and tree nodes are
// computed before its transaction, and the batch is committed in one
// round trip, possibly while the batch before it is still committing (it
// then waits on the append lock, and its guard checks that the log ends
// where that one leaves it). The tip is a hint: a wrong one costs a failed
// guard and the general path, never a wrong tree.
type appendChain struct {
	mu    sync.Mutex
	tip   evidence.Head
	tipOK bool
	// tipSeq is the sequence number of the append the tip is from, so
	// that an older append finishing late does not set it back.
	tipSeq uint64
	seq    uint64
	// last is the batch entered last; it is in flight until finished.
	last *pendingAppend
}

// pendingAppend is one batch between entering the chain and its outcome.
type pendingAppend struct {
	seq uint64
	// head is the tree head once the batch commits, computed before the
	// transaction when predicted; a batch on the general path is not
	// predicted and one entering after it waits for it.
	head      evidence.Head
	predicted bool
	// base is the head the batch follows, nodes the ones it completes.
	base  evidence.Head
	nodes []evidence.Node
	// prev is the batch in flight before it (nil once this one finishes).
	prev     *pendingAppend
	finished bool
	done     chan struct{}
}

// enter places a batch of leaves at the end of the chain: it follows the
// batch in flight if there is one, whose predicted head is its base,
// otherwise the tip. Two batches at most are in flight (one commits while
// the next waits on the append lock, ready to go): it waits while there
// are two, or while the one in flight is on the general path (its head is
// not known yet).
func (c *appendChain) enter(ctx context.Context, leaves [][evidence.HashSize]byte) (*pendingAppend, error) {
	for {
		c.mu.Lock()
		var wait chan struct{}
		l := c.last
		if l != nil && l.finished {
			l = nil
		}
		switch {
		case l != nil && !l.predicted:
			wait = l.done
		case l != nil && l.prev != nil && !l.prev.finished:
			wait = l.prev.done
		}
		if wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c.seq++
		p := &pendingAppend{seq: c.seq, prev: l, done: make(chan struct{})}
		base, ok := c.tip, c.tipOK
		if l != nil {
			base, ok = l.head, true
		}
		if ok && len(leaves) > 0 {
			h, nodes, err := evidence.Integrate(ctx, noLeaves{}, base, base.Size, leaves)
			if err != nil {
				c.mu.Unlock()
				return nil, err
			}
			p.base, p.head, p.nodes, p.predicted = base, h, nodes, true
		}
		c.last = p
		c.mu.Unlock()
		return p, nil
	}
}

// loadTip is the head this Store's last acknowledged append left.
func (c *appendChain) loadTip() (evidence.Head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tip, c.tipOK
}

// finish records p's outcome: the head it left (ok) or an unknown end of
// the log, unless a later append already set the tip.
func (c *appendChain) finish(p *pendingAppend, h evidence.Head, ok bool) {
	c.mu.Lock()
	if p.seq > c.tipSeq {
		c.tip, c.tipOK, c.tipSeq = h, ok, p.seq
	}
	p.finished, p.prev = true, nil
	close(p.done)
	c.mu.Unlock()
}

// AppendBatch commits recs in one transaction with consecutive indexes
// following the last record, integrates them into the Merkle tree in the
// same transaction, and returns the first index. Appenders in every
// process sharing the schema are serialised by a transaction-scoped
// advisory lock, so they grow one log and one tree. An empty batch appends
// nothing (it only integrates records the tree does not cover yet) and
// returns the index the next record will get.
//
// A batch following this Store's own appends (the common case: one
// appender per replica) is committed in one round trip: its indexes and
// tree nodes are computed from where the previous batch leaves the log,
// and the lock, a guard, the records, the nodes and the head go in one
// implicit transaction. That previous batch may still be committing: an
// appender with two commits in flight (evidence.WithCommitsInFlight) sends
// the next one behind it (evidence.BatchSent), which waits on the lock. Otherwise, or when the guard finds the log elsewhere, the
// batch takes the general path: lock and read the head, then write.
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	return s.AppendLeaves(ctx, recs, evidence.LeafHashes(recs))
}

// AppendLeaves is AppendBatch with the leaf hashes computed by the caller
// (evidence.LeafSink).
func (s *Store) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	if err := evidence.ValidateBatch(recs, leaves); err != nil {
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	rows := s.newRecordRows(recs)
	defer s.putRows(rows)
	p, err := s.chain.enter(ctx, leaves)
	if err != nil {
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	first, h, err := s.append(ctx, p, rows, leaves)
	if err != nil {
		s.chain.finish(p, evidence.Head{}, false)
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	s.chain.finish(p, h, true)
	return first, nil
}

// append commits p: in one round trip after its predicted base, else (or
// when the log is not there) after the tip once the batch before it has
// its outcome, else by the general path.
func (s *Store) append(ctx context.Context, p *pendingAppend, rows *recordRows, leaves [][evidence.HashSize]byte) (uint64, evidence.Head, error) {
	if p.predicted {
		err := s.appendAfter(ctx, p.base, p.head, p.nodes, rows, true)
		if err == nil || !errors.Is(err, errLogMoved) {
			return p.base.Size, p.head, err
		}
		// The batch before it did not land, or had not committed when this
		// one took the lock: with its outcome known, the tip says which.
		if prev := p.prev; prev != nil {
			select {
			case <-prev.done:
			case <-ctx.Done():
				return 0, evidence.Head{}, ctx.Err()
			}
			if base, ok := s.chain.loadTip(); ok {
				h, nodes, err := evidence.Integrate(ctx, noLeaves{}, base, base.Size, leaves)
				if err != nil {
					return 0, evidence.Head{}, err
				}
				err = s.appendAfter(ctx, base, h, nodes, rows, false)
				if err == nil || !errors.Is(err, errLogMoved) {
					return base.Size, h, err
				}
			}
		}
	}
	return s.appendLocked(ctx, rows, leaves)
}

// recordRows are a batch's columns, as the arrays appendSQL unnests, and
// its tree nodes', as insertNodesSQL does. They are reused from batch to
// batch (Store.rowsPool). The bytea arrays are pgtype.FlatArray so that
// pgx encodes them through its generic array path rather than its
// reflection-based one for slices it does not know.
type recordRows struct {
	n                   int
	ids, kinds, callers []string
	ats                 []time.Time
	bodies, salts       pgtype.FlatArray[[]byte]
	hashes              pgtype.FlatArray[[]byte]
	levels              []int16
	idxs                []int64
	nodeHashes          pgtype.FlatArray[[]byte]
	// checks are the rows derived from the batch's checks, written by the
	// store when written is true (else by the trigger).
	checks  sqlcommon.PGCheckRows
	written bool
	// The batch's keyed checks (sqlcommon.IdempotencyKey), whatever
	// writes the other derived rows; empty for a batch without one.
	idemPartners, idemKeys, idemIDs []string
	idemAts                         []time.Time
}

// lockSQL is the statement taking the append lock for these rows.
func (r *recordRows) lockSQL() string {
	if r.written {
		return lockWrittenSQL
	}
	return lockSQL
}

// newRecordRows fills rows from the pool with recs; putRows returns them.
func (s *Store) newRecordRows(recs []evidence.Record) *recordRows {
	r, _ := s.rowsPool.Get().(*recordRows)
	if r == nil {
		r = &recordRows{}
	}
	r.n = len(recs)
	r.ids, r.kinds, r.callers, r.ats = r.ids[:0], r.kinds[:0], r.callers[:0], r.ats[:0]
	r.bodies, r.salts, r.hashes = r.bodies[:0], r.salts[:0], r.hashes[:0]
	for i := range recs {
		rec := &recs[i]
		r.ids, r.kinds, r.callers = append(r.ids, rec.ID), append(r.kinds, string(rec.Kind)), append(r.callers, rec.Partner)
		r.ats = append(r.ats, storeutil.Time(rec.At))
		r.bodies, r.salts, r.hashes = append(r.bodies, nonNil(rec.Body)), append(r.salts, nonNil(rec.Salt)), append(r.hashes, rec.Hash[:])
	}
	r.idemPartners, r.idemKeys, r.idemIDs, r.idemAts = r.idemPartners[:0], r.idemKeys[:0], r.idemIDs[:0], r.idemAts[:0]
	for i := range recs {
		rec := &recs[i]
		if rec.Kind != evidence.KindCheck || (rec.Check != nil && rec.Check.IdempotencyKey == "") {
			continue // a keyless check: nothing to map
		}
		if key := sqlcommon.IdempotencyKey(rec); key != "" {
			r.idemPartners, r.idemKeys = append(r.idemPartners, rec.Partner), append(r.idemKeys, key)
			r.idemIDs, r.idemAts = append(r.idemIDs, rec.ID), append(r.idemAts, storeutil.Time(rec.At))
		}
	}
	r.written = r.checks.Read(recs)
	return r
}

// putRows returns r to the pool, dropping its references to the records.
func (s *Store) putRows(r *recordRows) {
	clear(r.bodies)
	clear(r.salts)
	clear(r.hashes)
	clear(r.nodeHashes)
	clear(r.idemPartners)
	clear(r.idemKeys)
	clear(r.idemIDs)
	r.checks.Reset()
	s.rowsPool.Put(r)
}

// queueWrites queues the batch's records (from index next), the tree's
// new nodes and its new head.
func (r *recordRows) queueWrites(b *pgx.Batch, next int64, nodes []evidence.Node, h evidence.Head) {
	r.levels, r.idxs, r.nodeHashes = r.levels[:0], r.idxs[:0], r.nodeHashes[:0]
	for i := range nodes {
		n := &nodes[i]
		r.levels, r.idxs = append(r.levels, int16(n.ID.Level)), append(r.idxs, int64(n.ID.Index))
		r.nodeHashes = append(r.nodeHashes, n.Hash[:])
	}
	if r.n > 0 {
		b.Queue(appendSQL, next, r.ids, r.kinds, r.callers, r.ats, r.bodies, r.salts, r.hashes)
	}
	if c := &r.checks; r.written {
		if len(c.IndexIDs) > 0 {
			b.Queue(insertCheckIndexSQL, next, c.IndexIDs, c.IndexOffsets, c.IndexPartners, c.Subjects, c.Actions,
				c.Outcomes, c.Regions, c.IndexAts)
		}
		if len(c.ListIDs) > 0 {
			b.Queue(insertCheckListsSQL, c.ListIDs, c.Lists)
		}
	}
	if len(r.idemKeys) > 0 {
		b.Queue(insertIdempotencySQL, r.idemPartners, r.idemKeys, r.idemAts, r.idemIDs)
	}
	b.Queue(insertNodesSQL, r.levels, r.idxs, r.nodeHashes)
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
	if c := &r.checks; r.written {
		for _, q := range []struct {
			rows int
			what string
		}{{len(c.IndexIDs), "check index"}, {len(c.ListIDs), "check lists"}} {
			if q.rows == 0 {
				continue
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("insert %s: %w", q.what, err)
			}
		}
	}
	if len(r.idemKeys) > 0 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("insert idempotency keys: %w", err)
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

// appendAfter commits a batch that follows base, leaving the tree at h
// with nodes, in one round trip: one implicit transaction (a pipeline
// ending in one Sync), which PostgreSQL commits, durably, before it
// answers the Sync. Once the batch is written to the connection it tells
// the appender (sent), which may send the next batch behind it. It
// returns an error wrapping errLogMoved, having written nothing, when the
// log does not end at base.
func (s *Store) appendAfter(ctx context.Context, base, h evidence.Head, nodes []evidence.Node, rows *recordRows, sent bool) error {
	b := &pgx.Batch{}
	b.Queue(rows.lockSQL(), appendLockClass, s.appendLockKey)
	b.Queue(guardSQL, int64(base.Size), base.Root[:])
	rows.queueWrites(b, int64(base.Size), nodes, h)
	br := s.pool.SendBatch(ctx, b)
	if sent {
		evidence.BatchSent(ctx)
	}
	err := func() error {
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
	// Close reads up to the Sync: the commit's outcome. On some errors
	// whether it committed is unknown: the tip is then forgotten and the
	// next batch reads the head again.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// noLeaves is the LeafReader of a tree known to cover the whole log:
// Integrate reads no leaf then.
type noLeaves struct{}

func (noLeaves) LeafRecords(context.Context, uint64, uint64) ([]evidence.Record, error) {
	return nil, errLogMoved
}

// appendLocked is the general path: lock, read the head and the end of
// the log, integrate, write; it returns the new head.
func (s *Store) appendLocked(ctx context.Context, rows *recordRows, leaves [][evidence.HashSize]byte) (uint64, evidence.Head, error) {
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
		b.Queue(rows.lockSQL(), appendLockClass, s.appendLockKey)
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
		return 0, evidence.Head{}, err
	}
	// The tree now covers the whole log: the next batch may follow it.
	return uint64(next), after, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
