package sqlcommon

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

const recordColumns = `idx, id, kind, partner, at, body, salt, hash`

// Rows per multi-row INSERT of AppendBatch: within SQLite's 32 766 bound
// on parameters, and few distinct statement texts (the full chunk and one
// remainder per batch).
const (
	recordsPerInsert = 256
	nodesPerInsert   = 1024
)

// Prefixes of AppendBatch's multi-row INSERTs.
const (
	insertRecordsPrefix = `INSERT INTO evidence (` + recordColumns + `) VALUES `
	insertNodesPrefix   = `INSERT INTO evidence_nodes (level, idx, hash) VALUES `
	insertNodesAtPrefix = `INSERT INTO evidence_nodes (pos, level, idx, hash) VALUES `
)

// NodePos is the position of node (level, idx) in the order in which nodes
// complete: its last leaf × 64 + level. Every node of a batch is completed by
// one of the batch's leaves, so each batch's positions follow all earlier
// ones (Dialect.NodesByPosition). Defined for level ≤ 57 and
// (idx + 1) << level ≤ 2⁵⁷, far beyond any log.
func NodePos(level, idx int64) int64 { return (((idx+1)<<level)-1)*64 + level }

// nodeInsert is the prefix and column count of the nodes' multi-row INSERT.
func (s *Store) nodeInsert() (string, int) {
	if s.d.NodesByPosition {
		return insertNodesAtPrefix, 4
	}
	return insertNodesPrefix, 3
}

// chunkRows is the rows of the next multi-row INSERT for n rows left: the
// largest power of two up to n and limit. Batches then use a few fixed
// statement texts (log₂ limit + 1 of them), which a store may keep
// prepared (EvidenceInsertTexts) instead of compiling one per batch size.
func chunkRows(n, limit int) int {
	c := 1
	for c*2 <= min(n, limit) {
		c *= 2
	}
	return c
}

// EvidenceInsertTexts are every INSERT text AppendBatch executes, so that
// a store may prepare them once (SQLite compiles the evidence triggers
// into each).
func (s *Store) EvidenceInsertTexts() []string {
	var out []string
	for c := 1; c <= recordsPerInsert; c *= 2 {
		out = append(out, s.multiRowInsert(insertRecordsPrefix, "", 8, c))
	}
	nodesPrefix, nodeCols := s.nodeInsert()
	for c := 1; c <= nodesPerInsert; c *= 2 {
		out = append(out, s.multiRowInsert(nodesPrefix, "", nodeCols, c))
	}
	if s.d.DeriveChecks {
		for c := 1; c <= indexPerInsert; c *= 2 {
			out = append(out, s.multiRowInsert(insertIndexPrefix, "", 8, c))
		}
		for c := 1; c <= listsPerInsert; c *= 2 {
			out = append(out, s.multiRowInsert(insertListsPrefix, "", 2, c))
		}
		out = append(out, checkIndexSQL, checkListsSQL)
	}
	out = append(out, insertIdempotencySQL)
	return out
}

// insertKey names a multi-row INSERT text in Store.inserts.
type insertKey struct {
	prefix, suffix string
	cols, rows     int
}

// multiRowInsert is prefix followed by rows groups of cols numbered
// placeholders: ($1, $2, $3), ($4, $5, $6), … (or (?, ?, ?), …:
// Dialect.AnonymousParams), then suffix; the texts are kept, as there are
// few (a full chunk and the remainders).
func (s *Store) multiRowInsert(prefix, suffix string, cols, rows int) string {
	k := insertKey{prefix, suffix, cols, rows}
	if q, ok := s.inserts.Load(k); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(prefix)
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			if s.d.AnonymousParams {
				b.WriteByte('?')
				continue
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(r*cols + c + 1))
		}
		b.WriteByte(')')
	}
	b.WriteString(suffix)
	q := b.String()
	s.inserts.Store(k, q)
	return q
}

// HeadSQL reads the tree head and the end of the log. Run after the
// appenders' exclusion is held (under READ COMMITTED each statement sees
// what committed before it started), it is the end of the log.
const HeadSQL = `SELECT h.size, h.root, h.border, (SELECT coalesce(max(idx) + 1, 0) FROM evidence)
	FROM evidence_tree_head h WHERE h.id = 1`

// UpdateHeadSQL stores a tree head: size, root, border.
const UpdateHeadSQL = `UPDATE evidence_tree_head SET size = $1, root = $2, border = $3 WHERE id = 1`

// AppendBatch commits recs in one durable transaction with consecutive
// indexes following the last record, integrating them into the Merkle tree
// (evidence.Integrate) in the same transaction, and returns the first
// index. An empty batch appends nothing (it only integrates records the
// tree does not cover yet) and returns the index the next record will get.
//
// The transaction must exclude other appenders from reading the end of the
// log until it commits: SQLite's single writer does. PostgreSQL has its
// own AppendBatch (advisory lock, array inserts, one round trip).
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	return s.AppendLeaves(ctx, recs, evidence.LeafHashes(recs))
}

// AppendLeaves is AppendBatch with the records' leaf hashes computed by the
// caller (evidence.LeafSink): the appender hashes each record before it
// queues, while the previous batch commits.
func (s *Store) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	if err := evidence.ValidateBatch(recs, leaves); err != nil {
		return 0, s.errf("append evidence: %w", err)
	}
	var next uint64
	err := s.db.InTx(ctx, func(tx Tx) error {
		head, n, err := ReadHead(ctx, tx)
		if err != nil {
			return err
		}
		next = n
		h, nodes, err := evidence.Integrate(ctx, s.LeafReader(tx), head, next, leaves)
		if err != nil {
			return err
		}
		if h.Size == head.Size {
			return nil
		}
		// One multi-row INSERT per chunk of records and of nodes, instead
		// of one statement per row: the per-statement cost (argument
		// conversion, a step of the engine) was most of SQLite's commit
		// beside the sync.
		stmts := make([]Stmt, 0, 16)
		var recStarts []int // first record of each records statement
		for from := 0; from < len(recs); {
			chunk := recs[from : from+chunkRows(len(recs)-from, recordsPerInsert)]
			args := make([]any, 0, 8*len(chunk))
			for i, r := range chunk {
				args = append(args, int64(next)+int64(from+i), r.ID, string(r.Kind),
					r.Partner, storeutil.Time(r.At), nonNil(r.Body), nonNil(r.Salt), r.Hash[:])
			}
			stmts = append(stmts, Stmt{s.multiRowInsert(insertRecordsPrefix, "", 8, len(chunk)), args})
			recStarts = append(recStarts, from)
			from += len(chunk)
		}
		recStmts := len(stmts)
		if s.d.DeriveChecks {
			stmts = s.derivedInserts(stmts, recs, next)
		}
		stmts = idempotencyInserts(stmts, recs)
		derivedStmts := len(stmts)
		nodesPrefix, nodeCols := s.nodeInsert()
		for from := 0; from < len(nodes); {
			chunk := nodes[from : from+chunkRows(len(nodes)-from, nodesPerInsert)]
			args := make([]any, 0, nodeCols*len(chunk))
			for _, n := range chunk {
				level, idx := int64(n.ID.Level), int64(n.ID.Index)
				if s.d.NodesByPosition {
					args = append(args, NodePos(level, idx))
				}
				args = append(args, level, idx, n.Hash[:])
			}
			stmts = append(stmts, Stmt{s.multiRowInsert(nodesPrefix, "", nodeCols, len(chunk)), args})
			from += len(chunk)
		}
		stmts = append(stmts, Stmt{UpdateHeadSQL, []any{int64(h.Size), h.Root[:], nonNil(h.Border)}})
		if i, err := tx.ExecBatch(ctx, stmts); err != nil {
			if i < recStmts {
				first := recs[recStarts[i]]
				if recStarts[i]+1 == len(recs) || (i+1 < recStmts && recStarts[i+1] == recStarts[i]+1) {
					return fmt.Errorf("record %q: %w", first.ID, s.d.MapErr(err))
				}
				return fmt.Errorf("records from %q: %w", first.ID, s.d.MapErr(err))
			}
			if i < derivedStmts {
				return fmt.Errorf("derive the rows of checks: %w", err)
			}
			return fmt.Errorf("store tree: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, s.errf("append evidence: %w", err)
	}
	return next, nil
}

// ReadHead reads the stored tree head and the end of the log (HeadSQL).
func ReadHead(ctx context.Context, q Querier) (evidence.Head, uint64, error) {
	var (
		size, next   int64
		root, border []byte
	)
	if err := q.QueryRow(ctx, HeadSQL).Scan(&size, &root, &border, &next); err != nil {
		return evidence.Head{}, 0, fmt.Errorf("read tree head: %w", err)
	}
	return head(size, root, border), uint64(next), nil
}

func head(size int64, root, border []byte) evidence.Head {
	h := evidence.Head{Size: uint64(size), Border: border}
	copy(h.Root[:], root)
	return h
}

// LeafReader is the evidence.LeafReader of the transaction q.
func (s *Store) LeafReader(q Querier) evidence.LeafReader { return leafReader{q} }

type leafReader struct{ q Querier }

func (l leafReader) LeafRecords(ctx context.Context, from, to uint64) ([]evidence.Record, error) {
	return recordsBetween(ctx, l.q, from, to, `idx, id, kind, partner, at, NULL, NULL, hash`)
}

// recordsBetween reads records [from, to) in index order with the given
// columns.
func recordsBetween(ctx context.Context, q Querier, from, to uint64, cols string) ([]evidence.Record, error) {
	rows, err := q.Query(ctx, `SELECT `+cols+` FROM evidence WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
		int64(from), int64(to))
	return collect(rows, err, scanRecord)
}

func scanRecord(row Rows) (evidence.Record, error) {
	var (
		r    evidence.Record
		idx  int64
		kind string
		at   time.Time
		hash []byte
	)
	if err := row.Scan(&idx, &r.ID, &kind, &r.Partner, &at, &r.Body, &r.Salt, &hash); err != nil {
		return r, err
	}
	if len(hash) != evidence.HashSize {
		return r, fmt.Errorf("%w: record %d has a %d-byte hash", evidence.ErrTreeCorrupt, idx, len(hash))
	}
	r.Index, r.Kind, r.At = uint64(idx), evidence.Kind(kind), storeutil.Time(at)
	copy(r.Hash[:], hash)
	return r, nil
}

// Record returns the record with the given ID, or evidence.ErrNotFound.
func (s *Store) Record(ctx context.Context, id string) (evidence.Record, error) {
	rows, err := s.db.Query(ctx, `SELECT `+recordColumns+` FROM evidence WHERE id = $1`, id)
	recs, err := collect(rows, err, scanRecord)
	if err != nil {
		return evidence.Record{}, s.errf("evidence %q: %w", id, err)
	}
	if len(recs) == 0 {
		return evidence.Record{}, fmt.Errorf("evidence %q: %w", id, evidence.ErrNotFound)
	}
	return recs[0], nil
}

// RecordsBetween returns the stored records with from <= index < to.
func (s *Store) RecordsBetween(ctx context.Context, from, to uint64) ([]evidence.Record, error) {
	recs, err := recordsBetween(ctx, s.db, from, to, recordColumns)
	if err != nil {
		return nil, s.errf("read records: %w", err)
	}
	return recs, nil
}

// RecordsOfKind returns up to limit evidence records of kind with index
// greater than after (-1: from the start), in index order, through the
// (kind, idx) index. The kind is in the text, not a parameter: PostgreSQL's
// index leaves checks out (its migration 0017, SQLite's 0016), and a
// planner uses it only for a kind it can see is not a check. SQLite does not
// infer that from the kind: it needs the index's own condition in the text,
// which PostgreSQL takes as a redundant filter.
func (s *Store) RecordsOfKind(ctx context.Context, kind evidence.Kind, after int64, limit int) ([]evidence.Record, error) {
	if !plainKind(kind) {
		return nil, s.errf("records of kind %q: not a kind", kind)
	}
	notCheck := ` AND kind <> 'check'`
	if kind == evidence.KindCheck {
		notCheck = ""
	}
	rows, err := s.db.Query(ctx, `SELECT `+recordColumns+` FROM evidence
		WHERE kind = '`+string(kind)+`'`+notCheck+` AND idx > $1 ORDER BY idx LIMIT $2`, after, storeutil.Limit(limit))
	out, err := collect(rows, err, scanRecord)
	if err != nil {
		return nil, s.errf("records of kind %q: %w", kind, err)
	}
	return out, nil
}

// TreeHead returns the tree as last committed.
func (s *Store) TreeHead(ctx context.Context) (evidence.Head, error) {
	var (
		size         int64
		root, border []byte
	)
	if err := s.db.QueryRow(ctx, `SELECT size, root, border FROM evidence_tree_head WHERE id = 1`).
		Scan(&size, &root, &border); err != nil {
		return evidence.Head{}, s.errf("tree head: %w", err)
	}
	return head(size, root, border), nil
}

// TreeNodes returns the hashes of the given nodes, in order, in one query
// of primary-key probes (Dialect.NodesQuery).
func (s *Store) TreeNodes(ctx context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]NodeKey, len(ids))
	for i, id := range ids {
		keys[i] = NodeKey{Level: int64(id.Level), Index: int64(id.Index)}
	}
	q, args := s.d.NodesQuery(keys)
	found := make(map[NodeKey][]byte, len(ids))
	rows, err := s.db.Query(ctx, q, args...)
	if _, err := collect(rows, err, func(r Rows) (struct{}, error) {
		var (
			k    NodeKey
			hash []byte
		)
		err := r.Scan(&k.Level, &k.Index, &hash)
		found[k] = hash
		return struct{}{}, err
	}); err != nil {
		return nil, s.errf("tree nodes: %w", err)
	}
	for i, k := range keys {
		h, ok := found[k]
		if !ok || len(h) != evidence.HashSize {
			return nil, s.errf("%w: node %d/%d missing", evidence.ErrTreeCorrupt, k.Level, k.Index)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// LatestCheckpoint returns the checkpoint of the largest tree.
func (s *Store) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	// Only a size the tree has: a row beyond it (which no insert through
	// AddCheckpoint makes) would break every receipt proven into it.
	c, err := scanCheckpoint(s.db.QueryRow(ctx, `SELECT size, root, note, created_at FROM evidence_checkpoints
		WHERE size <= (SELECT size FROM evidence_tree_head WHERE id = 1)
		ORDER BY size DESC LIMIT 1`))
	if isNoRows(err) {
		return evidence.StoredCheckpoint{}, evidence.ErrNoCheckpoint
	}
	if err != nil {
		return evidence.StoredCheckpoint{}, s.errf("latest checkpoint: %w", err)
	}
	return c, nil
}

// scanCheckpoint reads a row of size, root, note, created_at from
// evidence_checkpoints, as every checkpoint query selects them.
func scanCheckpoint(r interface{ Scan(...any) error }) (evidence.StoredCheckpoint, error) {
	var (
		c          evidence.StoredCheckpoint
		size       int64
		root, note []byte
	)
	err := r.Scan(&size, &root, &note, &c.At)
	c.Size, c.Note, c.At = uint64(size), note, c.At.UTC()
	copy(c.Root[:], root)
	return c, err
}

// Checkpoints lists stored checkpoints below the size below (0: any),
// within the tree, largest first, at most limit. The size is the table's
// key, so a page is one index range scan.
func (s *Store) Checkpoints(ctx context.Context, below uint64, limit int) ([]evidence.StoredCheckpoint, error) {
	if limit <= 0 {
		return []evidence.StoredCheckpoint{}, nil
	}
	bound := int64(math.MaxInt64)
	if below > 0 && below <= math.MaxInt64 {
		bound = int64(below)
	}
	rows, err := s.db.Query(ctx, `SELECT size, root, note, created_at FROM evidence_checkpoints
		WHERE size < $1 AND size <= (SELECT size FROM evidence_tree_head WHERE id = 1)
		ORDER BY size DESC LIMIT $2`, bound, limit)
	out, err := collect(rows, err, func(r Rows) (evidence.StoredCheckpoint, error) { return scanCheckpoint(r) })
	if err != nil {
		return nil, s.errf("checkpoints: %w", err)
	}
	if out == nil {
		out = []evidence.StoredCheckpoint{}
	}
	return out, nil
}

// AddCheckpoint stores c unless one of its size is stored already (by
// another gateway, which signed the same tree). It refuses a checkpoint of
// a size the committed tree does not have (evidence.ErrTreeSize) or whose
// root is not the tree's at that size (evidence.ErrTreeCorrupt).
//
// A checkpoint is a function of the durable tree and the key (Ed25519
// signatures are deterministic), so one lost in a crash is signed again,
// byte for byte: where the dialect can (Dialect.CheckpointPrelude), the
// insert does not wait for its WAL flush.
func (s *Store) AddCheckpoint(ctx context.Context, c evidence.StoredCheckpoint) error {
	stmts := []Stmt{{`INSERT INTO evidence_checkpoints (size, root, note, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING`, []any{int64(c.Size), c.Root[:], c.Note, storeutil.Time(c.At)}}}
	if s.d.CheckpointPrelude != "" {
		stmts = append([]Stmt{{SQL: s.d.CheckpointPrelude}}, stmts...)
	}
	head, err := s.TreeHead(ctx)
	if err != nil {
		return err
	}
	// The tree only grows and its nodes never change, so what is read
	// here still holds when the row is inserted.
	switch {
	case c.Size > head.Size:
		return s.errf("add checkpoint: %w: a checkpoint of %d records, the tree has %d", evidence.ErrTreeSize, c.Size, head.Size)
	case c.Size == head.Size:
		if c.Root != head.Root {
			return s.errf("add checkpoint: %w: the root of %d records is not the tree's", evidence.ErrTreeCorrupt, c.Size)
		}
	default:
		root, err := evidence.RootAt(ctx, s, c.Size)
		if err != nil {
			return s.errf("add checkpoint: %w", err)
		}
		if root != c.Root {
			return s.errf("add checkpoint: %w: the root of %d records is not the tree's", evidence.ErrTreeCorrupt, c.Size)
		}
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.ExecBatch(ctx, stmts)
		return err
	})
	if err != nil {
		return s.errf("add checkpoint: %w", err)
	}
	return nil
}

// AddVerifierKey remembers a checkpoint verifier key.
func (s *Store) AddVerifierKey(ctx context.Context, key string) error {
	err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO evidence_keys (vkey, added_at) VALUES ($1, $2)
			ON CONFLICT (vkey) DO NOTHING`, key, storeutil.Time(time.Now()))
		return err
	})
	if err != nil {
		return s.errf("add verifier key: %w", err)
	}
	return nil
}

// VerifierKeys lists the checkpoint verifier keys, oldest first.
func (s *Store) VerifierKeys(ctx context.Context) ([]evidence.StoredKey, error) {
	rows, err := s.db.Query(ctx, `SELECT vkey, added_at FROM evidence_keys ORDER BY added_at, vkey`)
	out, err := collect(rows, err, func(r Rows) (evidence.StoredKey, error) {
		var k evidence.StoredKey
		err := r.Scan(&k.Key, &k.AddedAt)
		k.AddedAt = k.AddedAt.UTC()
		return k, err
	})
	if err != nil {
		return nil, s.errf("verifier keys: %w", err)
	}
	return out, nil
}

// plainKind reports a kind of lower-case letters and underscores, as every
// evidence.Kind is, which may be written into a statement's text.
func plainKind(k evidence.Kind) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
