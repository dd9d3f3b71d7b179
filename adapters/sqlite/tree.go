package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/credgate/credgate/evidence"
)

// catchUpChunk is how many old records are read at a time when the tree
// integrates records appended before it existed.
const catchUpChunk = 10000

// integrateTree brings the Merkle tree up to date inside the appending
// transaction tx: first any records the tree does not cover yet (appended
// before the tree existed), then recs, which take indexes next, next+1, …
// Every node completed is inserted, and the head is rewritten, so the tree
// commits or rolls back with the records.
func integrateTree(ctx context.Context, tx *sql.Tx, next int64, recs []evidence.Record) error {
	var (
		head         evidence.Head
		size         int64
		root, border []byte
	)
	if err := tx.QueryRowContext(ctx, `SELECT size, root, border FROM evidence_tree_head WHERE id = 1`).
		Scan(&size, &root, &border); err != nil {
		return fmt.Errorf("read tree head: %w", err)
	}
	if size > next {
		return fmt.Errorf("%w: the tree covers %d records but the log has only %d: records were deleted",
			evidence.ErrTreeCorrupt, size, next)
	}
	head.Size, head.Border = uint64(size), border
	copy(head.Root[:], root)
	tree, err := evidence.TreeFrom(head)
	if err != nil {
		return err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO evidence_nodes (level, idx, hash) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	var visitErr error
	visit := func(id evidence.NodeID, h [evidence.HashSize]byte) {
		if visitErr == nil {
			_, visitErr = ins.ExecContext(ctx, int64(id.Level), int64(id.Index), h[:])
		}
	}
	for int64(tree.Size()) < next {
		from := int64(tree.Size())
		to := min(from+catchUpChunk, next)
		old, err := recordsBetween(ctx, tx, from, to, false)
		if err != nil {
			return err
		}
		for _, r := range old {
			if r.Index != tree.Size() {
				return fmt.Errorf("%w: record %d is missing from the log", evidence.ErrTreeCorrupt, tree.Size())
			}
			tree.Append(evidence.LeafHash(r), visit)
		}
		if int64(tree.Size()) != to {
			return fmt.Errorf("%w: record %d is missing from the log", evidence.ErrTreeCorrupt, tree.Size())
		}
	}
	for _, r := range recs {
		tree.Append(evidence.LeafHash(r), visit)
	}
	if visitErr != nil {
		return fmt.Errorf("insert tree node: %w", visitErr)
	}
	if tree.Size() == uint64(size) {
		return nil
	}
	h := tree.Head()
	if _, err := tx.ExecContext(ctx, `UPDATE evidence_tree_head SET size = ?, root = ?, border = ? WHERE id = 1`,
		int64(h.Size), h.Root[:], nonNilBytes(h.Border)); err != nil {
		return fmt.Errorf("update tree head: %w", err)
	}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// recordsBetween reads records [from, to) in index order, with or without
// their bodies.
func recordsBetween(ctx context.Context, q querier, from, to int64, bodies bool) ([]evidence.Record, error) {
	cols := `idx, id, kind, partner, at, x'', x'', hash`
	if bodies {
		cols = `idx, id, kind, partner, at, body, salt, hash`
	}
	rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM evidence WHERE idx >= ? AND idx < ? ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var out []evidence.Record
	for rows.Next() {
		var (
			r       evidence.Record
			idx, at int64
			kind    string
			hash    []byte
		)
		if err := rows.Scan(&idx, &r.ID, &kind, &r.Partner, &at, &r.Body, &r.Salt, &hash); err != nil {
			return nil, err
		}
		if len(hash) != evidence.HashSize {
			return nil, fmt.Errorf("%w: record %d has a %d-byte hash", evidence.ErrTreeCorrupt, idx, len(hash))
		}
		r.Index, r.Kind, r.At = uint64(idx), evidence.Kind(kind), fromMicros(at)
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
	if err := s.r.QueryRowContext(ctx, `SELECT size, root, border FROM evidence_tree_head WHERE id = 1`).
		Scan(&size, &root, &border); err != nil {
		return evidence.Head{}, fmt.Errorf("sqlite: tree head: %w", err)
	}
	h.Size, h.Border = uint64(size), border
	copy(h.Root[:], root)
	return h, nil
}

// TreeNodes returns the hashes of the given nodes, in order.
func (s *Store) TreeNodes(ctx context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// Row values: (level, idx) IN (VALUES (?, ?), …), one primary-key probe
	// each.
	var q strings.Builder
	q.WriteString(`SELECT level, idx, hash FROM evidence_nodes WHERE (level, idx) IN (VALUES `)
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString("(?,?)")
		args = append(args, int64(id.Level), int64(id.Index))
	}
	q.WriteString(")")
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tree nodes: %w", err)
	}
	defer rows.Close()
	found := make(map[evidence.NodeID][]byte, len(ids))
	for rows.Next() {
		var (
			level, idx int64
			hash       []byte
		)
		if err := rows.Scan(&level, &idx, &hash); err != nil {
			return nil, fmt.Errorf("sqlite: tree nodes: %w", err)
		}
		found[evidence.NodeID{Level: uint(level), Index: uint64(idx)}] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: tree nodes: %w", err)
	}
	for i, id := range ids {
		h, ok := found[id]
		if !ok || len(h) != evidence.HashSize {
			return nil, fmt.Errorf("sqlite: %w: node %d/%d missing", evidence.ErrTreeCorrupt, id.Level, id.Index)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// RecordsBetween returns the stored records with from <= index < to.
func (s *Store) RecordsBetween(ctx context.Context, from, to uint64) ([]evidence.Record, error) {
	recs, err := recordsBetween(ctx, s.r, int64(from), int64(to), true)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return recs, nil
}

// LatestCheckpoint returns the checkpoint of the largest tree.
func (s *Store) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	var (
		c          evidence.StoredCheckpoint
		size, at   int64
		root, note []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT size, root, note, created_at FROM evidence_checkpoints
		ORDER BY size DESC LIMIT 1`).Scan(&size, &root, &note, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return evidence.StoredCheckpoint{}, evidence.ErrNoCheckpoint
	}
	if err != nil {
		return evidence.StoredCheckpoint{}, fmt.Errorf("sqlite: latest checkpoint: %w", err)
	}
	c.Size, c.Note, c.At = uint64(size), note, fromMicros(at)
	copy(c.Root[:], root)
	return c, nil
}

// AddCheckpoint stores c unless one of its size is stored already.
func (s *Store) AddCheckpoint(ctx context.Context, c evidence.StoredCheckpoint) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence_checkpoints (size, root, note, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING`, int64(c.Size), c.Root[:], c.Note, micros(c.At)); err != nil {
		return fmt.Errorf("sqlite: add checkpoint: %w", err)
	}
	return nil
}

// AddVerifierKey remembers a checkpoint verifier key.
func (s *Store) AddVerifierKey(ctx context.Context, key string) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence_keys (vkey, added_at) VALUES (?, ?)
		ON CONFLICT (vkey) DO NOTHING`, key, micros(time.Now())); err != nil {
		return fmt.Errorf("sqlite: add verifier key: %w", err)
	}
	return nil
}

// VerifierKeys lists the checkpoint verifier keys, oldest first.
func (s *Store) VerifierKeys(ctx context.Context) ([]evidence.StoredKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT vkey, added_at FROM evidence_keys ORDER BY added_at, vkey`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: verifier keys: %w", err)
	}
	defer rows.Close()
	var out []evidence.StoredKey
	for rows.Next() {
		var (
			k  evidence.StoredKey
			at int64
		)
		if err := rows.Scan(&k.Key, &at); err != nil {
			return nil, fmt.Errorf("sqlite: verifier keys: %w", err)
		}
		k.AddedAt = fromMicros(at)
		out = append(out, k)
	}
	return out, rows.Err()
}
