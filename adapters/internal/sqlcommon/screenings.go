package sqlcommon

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/credgate/credgate/service"
)

var _ service.ScreeningStore = (*Store)(nil)

const screeningColumns = `id, partner, caller, action, format, state, total, done, results_bytes, counts,
	tree_size, root, record_id, error, created_at, updated_at`

// InsertScreening stores a new screening job; a duplicate id is ErrConflict.
func (s *Store) InsertScreening(ctx context.Context, j service.ScreeningJob) error {
	counts, err := json.Marshal(nonNilCounts(j.Counts))
	if err != nil {
		return s.errf("insert screening: %w", err)
	}
	caller, err := json.Marshal(j.Caller)
	if err != nil {
		return s.errf("insert screening: %w", err)
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO screening_jobs (`+screeningColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		j.ID, j.Partner, string(caller), j.Action, string(j.Format), string(j.State), j.Total, j.Done, j.ResultsBytes, string(counts),
		int64(j.TreeSize), j.Root, j.RecordID, j.Error, j.CreatedAt.UTC(), j.UpdatedAt.UTC()); err != nil {
		return s.errf("insert screening: %w", s.d.MapErr(err))
	}
	return nil
}

// UpdateScreening rewrites a job's progress and state.
func (s *Store) UpdateScreening(ctx context.Context, j service.ScreeningJob) error {
	counts, err := json.Marshal(nonNilCounts(j.Counts))
	if err != nil {
		return s.errf("update screening: %w", err)
	}
	n, err := s.db.Exec(ctx, `UPDATE screening_jobs SET state = $2, total = $3, done = $4, results_bytes = $5,
		counts = $6, tree_size = $7, root = $8, record_id = $9, error = $10, updated_at = $11 WHERE id = $1`,
		j.ID, string(j.State), j.Total, j.Done, j.ResultsBytes, string(counts), int64(j.TreeSize), j.Root,
		j.RecordID, j.Error, j.UpdatedAt.UTC())
	if err != nil {
		return s.errf("update screening: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("screening %q: %w", j.ID, service.ErrNotFound)
	}
	return nil
}

// GetScreening returns a job, or ErrNotFound.
func (s *Store) GetScreening(ctx context.Context, id string) (service.ScreeningJob, error) {
	j, err := scanScreening(s.db.QueryRow(ctx, `SELECT `+screeningColumns+` FROM screening_jobs WHERE id = $1`, id))
	if isNoRows(err) {
		return service.ScreeningJob{}, fmt.Errorf("screening %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return service.ScreeningJob{}, s.errf("get screening: %w", err)
	}
	return j, nil
}

// UnfinishedScreenings returns up to limit jobs queued or running, oldest
// first: a restarted server resumes them.
func (s *Store) UnfinishedScreenings(ctx context.Context, limit int) ([]service.ScreeningJob, error) {
	rows, err := s.db.Query(ctx, `SELECT `+screeningColumns+` FROM screening_jobs
		WHERE state IN ('queued', 'running') ORDER BY created_at, id LIMIT $1`, limit)
	out, err := collect(rows, err, func(r Rows) (service.ScreeningJob, error) { return scanScreening(r) })
	if err != nil {
		return nil, s.errf("unfinished screenings: %w", err)
	}
	return out, nil
}

func scanScreening(r Row) (service.ScreeningJob, error) {
	var (
		j             service.ScreeningJob
		format, state string
		counts, call  []byte
		size          int64
	)
	if err := r.Scan(&j.ID, &j.Partner, &call, &j.Action, &format, &state, &j.Total, &j.Done, &j.ResultsBytes, &counts,
		&size, &j.Root, &j.RecordID, &j.Error, &j.CreatedAt, &j.UpdatedAt); err != nil {
		return service.ScreeningJob{}, err
	}
	j.Format, j.State, j.TreeSize = service.ImportFormat(format), service.ScreeningState(state), uint64(size)
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	if err := json.Unmarshal(counts, &j.Counts); err != nil {
		return service.ScreeningJob{}, err
	}
	if err := json.Unmarshal(call, &j.Caller); err != nil {
		return service.ScreeningJob{}, err
	}
	return j, nil
}

func nonNilCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
