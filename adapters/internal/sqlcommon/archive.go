package sqlcommon

import (
	"context"
	"math"

	"github.com/credgate/credgate/evidence"
)

// The reads of credgate archive (evidence.ArchiveSource): the other ones,
// RecordsBetween, TreeNodes and VerifierKeys, serve the log as well.

var _ evidence.ArchiveSource = (*Store)(nil)

// CheckpointsFrom lists the stored checkpoints of sizes from … through
// (and within the tree), smallest first, at most limit: an archive pages
// through them in the order it writes them. The size is the table's key,
// so a page is one index range scan.
func (s *Store) CheckpointsFrom(ctx context.Context, from, through uint64, limit int) ([]evidence.StoredCheckpoint, error) {
	if limit <= 0 || from > through || from > math.MaxInt64 {
		return []evidence.StoredCheckpoint{}, nil
	}
	upper := int64(math.MaxInt64)
	if through < math.MaxInt64 {
		upper = int64(through)
	}
	rows, err := s.db.Query(ctx, `SELECT size, root, note, created_at FROM evidence_checkpoints
		WHERE size >= $1 AND size <= $2 AND size <= (SELECT size FROM evidence_tree_head WHERE id = 1)
		ORDER BY size LIMIT $3`, int64(from), upper, limit)
	out, err := collect(rows, err, func(r Rows) (evidence.StoredCheckpoint, error) { return scanCheckpoint(r) })
	if err != nil {
		return nil, s.errf("checkpoints from %d: %w", from, err)
	}
	if out == nil {
		out = []evidence.StoredCheckpoint{}
	}
	return out, nil
}
