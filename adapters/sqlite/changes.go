package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/credgate/credgate/service"
)

// Cursors of the change log are sequence numbers. SQLite has one writer at
// a time, so rows are numbered in commit order and a reader that saw up to
// seq n has seen every change committed before n+1.

// ChangeCursor returns a cursor from which SubjectChanges reports every
// change committed from now on.
func (s *Store) ChangeCursor(ctx context.Context) (uint64, error) {
	var last int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM subject_changes`).Scan(&last); err != nil {
		return 0, fmt.Errorf("sqlite: change cursor: %w", err)
	}
	return uint64(last) + 1, nil
}

// SubjectChanges returns up to limit changes at or after cursor, the next
// cursor, and lost when the caller cannot know every change since cursor
// (more than limit, or pruned): it must then assume every subject changed.
func (s *Store) SubjectChanges(ctx context.Context, cursor uint64, limit int) ([]service.SubjectChange, uint64, bool, error) {
	if limit <= 0 {
		limit = 1
	}
	// One read transaction: the rows, the pruned mark and the last seq
	// come from one snapshot.
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("sqlite: subject changes: %w", err)
	}
	defer tx.Rollback()
	var pruned, last int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT seq FROM subject_changes_pruned),
		(SELECT coalesce(max(seq), 0) FROM subject_changes)`).Scan(&pruned, &last); err != nil {
		return nil, cursor, false, fmt.Errorf("sqlite: subject changes: %w", err)
	}
	next := uint64(last) + 1
	if next < cursor {
		next = cursor
	}
	if cursor <= uint64(pruned) {
		return nil, next, true, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, subject FROM subject_changes WHERE seq >= ? AND seq <= ?
		ORDER BY seq LIMIT ?`, int64(cursor), last, limit+1)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("sqlite: subject changes: %w", err)
	}
	defer rows.Close()
	var out []service.SubjectChange
	for rows.Next() {
		var c service.SubjectChange
		if err := rows.Scan(&c.ID, &c.Subject); err != nil {
			return nil, cursor, false, fmt.Errorf("sqlite: subject changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, false, fmt.Errorf("sqlite: subject changes: %w", err)
	}
	if len(out) > limit {
		return nil, next, true, nil
	}
	return out, next, false, nil
}

// PruneSubjectChanges deletes the changes below cursor before and raises
// the pruned mark, so that a reader still below it knows it missed changes.
func (s *Store) PruneSubjectChanges(ctx context.Context, before uint64) error {
	if before == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: prune subject changes: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM subject_changes WHERE seq < ?`, int64(before)); err != nil {
		return fmt.Errorf("sqlite: prune subject changes: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subject_changes_pruned SET seq = max(seq, ?)`, int64(before)-1); err != nil {
		return fmt.Errorf("sqlite: prune subject changes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: prune subject changes: %w", err)
	}
	s.ckpt.committed()
	return nil
}

// changePoll is how often WatchSubjectChanges looks at the end of the
// change log. SQLite has no notices across processes; the look is two
// lookups at the ends of B-trees, in-process, so ten a second cost nothing
// measurable and bring an import from another process (`credgate import`
// beside `serve`) to the caches within a tenth of a second.
const changePoll = 100 * time.Millisecond

// WatchSubjectChanges calls changed once it watches and then whenever the
// change log's last row or pruned mark moved since its last look, until ctx
// ends or a look fails (cache.ChangeNotifier).
func (s *Store) WatchSubjectChanges(ctx context.Context, changed func()) error {
	look := func() ([2]int64, error) {
		var end [2]int64
		err := s.r.QueryRowContext(ctx, `SELECT (SELECT seq FROM subject_changes_pruned),
			(SELECT coalesce(max(seq), 0) FROM subject_changes)`).Scan(&end[0], &end[1])
		if err != nil {
			return end, fmt.Errorf("sqlite: watch changes: %w", err)
		}
		return end, nil
	}
	last, err := look()
	if err != nil {
		return err
	}
	changed()
	tick := time.NewTicker(changePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		end, err := look()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if end != last {
			last = end
			changed()
		}
	}
}
