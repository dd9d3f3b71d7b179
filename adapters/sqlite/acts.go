package sqlite

import (
	"context"
	"fmt"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// RecordsOfKind returns up to limit evidence records of kind with index
// greater than after (-1: from the start), in index order, through the
// (kind, idx) index.
func (s *Store) RecordsOfKind(ctx context.Context, kind evidence.Kind, after int64, limit int) ([]evidence.Record, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT idx, id, kind, partner, at, body, salt, hash FROM evidence
		WHERE kind = ? AND idx > ? ORDER BY idx LIMIT ?`, string(kind), after, storeutil.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: records of kind %q: %w", kind, err)
	}
	defer rows.Close()
	var out []evidence.Record
	for rows.Next() {
		var (
			r       evidence.Record
			idx, at int64
			k       string
			hash    []byte
		)
		if err := rows.Scan(&idx, &r.ID, &k, &r.Partner, &at, &r.Body, &r.Salt, &hash); err != nil {
			return nil, fmt.Errorf("sqlite: records of kind %q: %w", kind, err)
		}
		if len(hash) != len(r.Hash) {
			return nil, fmt.Errorf("sqlite: evidence %q: stored hash is %d bytes", r.ID, len(hash))
		}
		r.Index, r.Kind, r.At = uint64(idx), evidence.Kind(k), fromMicros(at)
		copy(r.Hash[:], hash)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: records of kind %q: %w", kind, err)
	}
	return out, nil
}
