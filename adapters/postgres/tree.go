package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/evidence"
)

// catchUpChunk is how many old records are read at a time when the tree
// integrates records appended before it existed.
const catchUpChunk = 10000

// treeNodes collects the nodes a batch completes, as the arrays one INSERT
// … SELECT FROM unnest takes.
type treeNodes struct {
	levels []int16
	idxs   []int64
	hashes [][]byte
}

func (n *treeNodes) visit(id evidence.NodeID, h [evidence.HashSize]byte) {
	n.levels = append(n.levels, int16(id.Level))
	n.idxs = append(n.idxs, int64(id.Index))
	n.hashes = append(n.hashes, h[:])
}

const insertNodesSQL = `INSERT INTO evidence_nodes (level, idx, hash)
	SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`

const updateHeadSQL = `UPDATE evidence_tree_head SET size = $1, root = $2, border = $3 WHERE id = 1`

// resumeTree reads the head inside the appending transaction (which holds
// the append lock) and integrates any records the tree does not cover yet,
// so that the caller can append from next.
func resumeTree(ctx context.Context, tx pgx.Tx, size, next int64, root, border []byte, nodes *treeNodes) (*evidence.Tree, error) {
	if size > next {
		return nil, fmt.Errorf("%w: the tree covers %d records but the log has only %d: records were deleted",
			evidence.ErrTreeCorrupt, size, next)
	}
	head := evidence.Head{Size: uint64(size), Border: border}
	copy(head.Root[:], root)
	tree, err := evidence.TreeFrom(head)
	if err != nil {
		return nil, err
	}
	for int64(tree.Size()) < next {
		from := int64(tree.Size())
		to := min(from+catchUpChunk, next)
		old, err := recordsBetween(ctx, tx, from, to, false)
		if err != nil {
			return nil, err
		}
		for _, r := range old {
			if r.Index != tree.Size() {
				return nil, fmt.Errorf("%w: record %d is missing from the log", evidence.ErrTreeCorrupt, tree.Size())
			}
			tree.Append(evidence.LeafHash(r), nodes.visit)
		}
		if int64(tree.Size()) != to {
			return nil, fmt.Errorf("%w: record %d is missing from the log", evidence.ErrTreeCorrupt, tree.Size())
		}
	}
	return tree, nil
}

// rowQuerier is what pgx.Tx and *pgxpool.Pool have in common.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// recordsBetween reads records [from, to) in index order, with or without
// their bodies.
func recordsBetween(ctx context.Context, q rowQuerier, from, to int64, bodies bool) ([]evidence.Record, error) {
	cols := `idx, id, kind, partner, at, ''::bytea, ''::bytea, hash`
	if bodies {
		cols = `idx, id, kind, partner, at, body, salt, hash`
	}
	rows, err := q.Query(ctx, `SELECT `+cols+` FROM evidence WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var out []evidence.Record
	for rows.Next() {
		var (
			r    evidence.Record
			idx  int64
			kind string
			hash []byte
		)
		if err := rows.Scan(&idx, &r.ID, &kind, &r.Partner, &r.At, &r.Body, &r.Salt, &hash); err != nil {
			return nil, err
		}
		if len(hash) != evidence.HashSize {
			return nil, fmt.Errorf("%w: record %d has a %d-byte hash", evidence.ErrTreeCorrupt, idx, len(hash))
		}
		r.Index, r.Kind, r.At = uint64(idx), evidence.Kind(kind), r.At.UTC()
		copy(r.Hash[:], hash)
		if !bodies {
			r.Body, r.Salt = nil, nil
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TreeHead returns the tree as last committed.
func (s *Store) TreeHead(ctx context.Context) (evidence.Head, error) {
	var (
		h            evidence.Head
		size         int64
		root, border []byte
	)
	if err := s.pool.QueryRow(ctx, `SELECT size, root, border FROM evidence_tree_head WHERE id = 1`).
		Scan(&size, &root, &border); err != nil {
		return evidence.Head{}, fmt.Errorf("postgres: tree head: %w", err)
	}
	h.Size, h.Border = uint64(size), border
	copy(h.Root[:], root)
	return h, nil
}

// TreeNodes returns the hashes of the given nodes, in order, in one query
// of primary-key probes.
func (s *Store) TreeNodes(ctx context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	levels := make([]int16, len(ids))
	idxs := make([]int64, len(ids))
	for i, id := range ids {
		levels[i], idxs[i] = int16(id.Level), int64(id.Index)
	}
	rows, err := s.pool.Query(ctx, `SELECT n.level, n.idx, n.hash
		FROM unnest($1::smallint[], $2::bigint[]) AS want(level, idx)
		JOIN evidence_nodes n ON n.level = want.level AND n.idx = want.idx`, levels, idxs)
	if err != nil {
		return nil, fmt.Errorf("postgres: tree nodes: %w", err)
	}
	defer rows.Close()
	found := make(map[evidence.NodeID][]byte, len(ids))
	for rows.Next() {
		var (
			level int16
			idx   int64
			hash  []byte
		)
		if err := rows.Scan(&level, &idx, &hash); err != nil {
			return nil, fmt.Errorf("postgres: tree nodes: %w", err)
		}
		found[evidence.NodeID{Level: uint(level), Index: uint64(idx)}] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: tree nodes: %w", err)
	}
	for i, id := range ids {
		h, ok := found[id]
		if !ok || len(h) != evidence.HashSize {
			return nil, fmt.Errorf("postgres: %w: node %d/%d missing", evidence.ErrTreeCorrupt, id.Level, id.Index)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// RecordsBetween returns the stored records with from <= index < to.
func (s *Store) RecordsBetween(ctx context.Context, from, to uint64) ([]evidence.Record, error) {
	recs, err := recordsBetween(ctx, s.pool, int64(from), int64(to), true)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return recs, nil
}

// LatestCheckpoint returns the checkpoint of the largest tree.
func (s *Store) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	var (
		c          evidence.StoredCheckpoint
		size       int64
		root, note []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT size, root, note, created_at FROM evidence_checkpoints
		ORDER BY size DESC LIMIT 1`).Scan(&size, &root, &note, &c.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.StoredCheckpoint{}, evidence.ErrNoCheckpoint
	}
	if err != nil {
		return evidence.StoredCheckpoint{}, fmt.Errorf("postgres: latest checkpoint: %w", err)
	}
	c.Size, c.Note, c.At = uint64(size), note, c.At.UTC()
	copy(c.Root[:], root)
	return c, nil
}

// AddCheckpoint stores c unless one of its size is stored already (by
// another gateway, which signed the same tree).
//
// The insert does not wait for its WAL flush (synchronous_commit off for
// this transaction only): a checkpoint is a function of the durable tree
// and the key (Ed25519 signatures are deterministic), so one lost in a
// crash is signed again, byte for byte, and receipts do not wait for a
// disk flush they do not need.
func (s *Store) AddCheckpoint(ctx context.Context, c evidence.StoredCheckpoint) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		b.Queue(`INSERT INTO evidence_checkpoints (size, root, note, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING`, int64(c.Size), c.Root[:], c.Note, c.At)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: add checkpoint: %w", err)
	}
	return nil
}

// AddVerifierKey remembers a checkpoint verifier key.
func (s *Store) AddVerifierKey(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO evidence_keys (vkey, added_at) VALUES ($1, $2)
		ON CONFLICT (vkey) DO NOTHING`, key, time.Now().UTC()); err != nil {
		return fmt.Errorf("postgres: add verifier key: %w", err)
	}
	return nil
}

// VerifierKeys lists the checkpoint verifier keys, oldest first.
func (s *Store) VerifierKeys(ctx context.Context) ([]evidence.StoredKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT vkey, added_at FROM evidence_keys ORDER BY added_at, vkey`)
	if err != nil {
		return nil, fmt.Errorf("postgres: verifier keys: %w", err)
	}
	defer rows.Close()
	var out []evidence.StoredKey
	for rows.Next() {
		var k evidence.StoredKey
		if err := rows.Scan(&k.Key, &k.AddedAt); err != nil {
			return nil, fmt.Errorf("postgres: verifier keys: %w", err)
		}
		k.AddedAt = k.AddedAt.UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}
