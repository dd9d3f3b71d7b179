package sqlcommon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/credgate/credgate/service"
)

var _ service.ScreeningStore = (*Store)(nil)

// screeningColumns are what InsertScreening writes; a row is read with
// its lease (runner, lease_until) after them.
const screeningColumns = `id, partner, caller, action, format, state, total, done, results_bytes, counts,
	tree_size, root, record_id, error, created_at, updated_at, disclosed`

const screeningSelect = `SELECT ` + screeningColumns + `, runner, lease_until FROM screening_jobs`

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
	disclosed, err := disclosedJSON(j.Disclosed)
	if err != nil {
		return s.errf("insert screening: %w", err)
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO screening_jobs (`+screeningColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		j.ID, j.Partner, string(caller), j.Action, string(j.Format), string(j.State), j.Total, j.Done, j.ResultsBytes, string(counts),
		int64(j.TreeSize), j.Root, j.RecordID, j.Error, j.CreatedAt.UTC(), j.UpdatedAt.UTC(), disclosed); err != nil {
		return s.errf("insert screening: %w", s.d.MapErr(err))
	}
	return nil
}

// UpdateScreening rewrites a job's progress and state, if j.Runner holds
// its lease ("": no one does); else ErrScreeningLeaseLost. The lease's
// condition is in the statement: a runner whose lease lapsed cannot write
// over its successor's progress between a check and its write.
func (s *Store) UpdateScreening(ctx context.Context, j service.ScreeningJob) error {
	counts, err := json.Marshal(nonNilCounts(j.Counts))
	if err != nil {
		return s.errf("update screening: %w", err)
	}
	disclosed, err := disclosedJSON(j.Disclosed)
	if err != nil {
		return s.errf("update screening: %w", err)
	}
	// A job read without a disclosure (stored before it was kept) leaves
	// the column as it is.
	n, err := s.db.Exec(ctx, `UPDATE screening_jobs SET state = $2, total = $3, done = $4, results_bytes = $5,
		counts = $6, tree_size = $7, root = $8, record_id = $9, error = $10, updated_at = $11,
		disclosed = COALESCE($13, disclosed) WHERE id = $1 AND runner = $12`,
		j.ID, string(j.State), j.Total, j.Done, j.ResultsBytes, string(counts), int64(j.TreeSize), j.Root,
		j.RecordID, j.Error, j.UpdatedAt.UTC(), j.Runner, disclosed)
	if err != nil {
		return s.errf("update screening: %w", err)
	}
	if n == 0 {
		var runner string
		err := s.db.QueryRow(ctx, `SELECT runner FROM screening_jobs WHERE id = $1`, j.ID).Scan(&runner)
		switch {
		case isNoRows(err):
			return fmt.Errorf("screening %q: %w", j.ID, service.ErrNotFound)
		case err != nil:
			return s.errf("update screening: %w", err)
		}
		return fmt.Errorf("screening %q: held by another runner: %w", j.ID, service.ErrScreeningLeaseLost)
	}
	return nil
}

// ClaimableScreenings returns up to limit jobs queued or running whose
// lease is free or ended by now, oldest first.
func (s *Store) ClaimableScreenings(ctx context.Context, now time.Time, limit int) ([]service.ScreeningJob, error) {
	rows, err := s.db.Query(ctx, screeningSelect+` WHERE state IN ('queued', 'running')
		AND (runner = '' OR lease_until IS NULL OR lease_until <= $1) ORDER BY created_at, id LIMIT $2`, now.UTC(), limit)
	out, err := collect(rows, err, func(r Rows) (service.ScreeningJob, error) { return scanScreening(r) })
	if err != nil {
		return nil, s.errf("claimable screenings: %w", err)
	}
	return out, nil
}

// ClaimScreening takes job id's lease for runner until now+lease, or
// renews runner's own, in one conditional update: of two claims at once,
// one changes no row (PostgreSQL re-checks the condition on the row the
// other committed; SQLite runs one write at a time).
func (s *Store) ClaimScreening(ctx context.Context, id, runner string, now time.Time, lease time.Duration) (bool, error) {
	n, err := s.db.Exec(ctx, `UPDATE screening_jobs SET runner = $2, lease_until = $3
		WHERE id = $1 AND state IN ('queued', 'running')
		AND (runner = $2 OR runner = '' OR lease_until IS NULL OR lease_until <= $4)`,
		id, runner, now.Add(lease).UTC(), now.UTC())
	if err != nil {
		return false, s.errf("claim screening: %w", err)
	}
	return n == 1, nil
}

// ReleaseScreening frees job id's lease if runner holds it.
func (s *Store) ReleaseScreening(ctx context.Context, id, runner string) error {
	if _, err := s.db.Exec(ctx, `UPDATE screening_jobs SET runner = '', lease_until = NULL WHERE id = $1 AND runner = $2`,
		id, runner); err != nil {
		return s.errf("release screening: %w", err)
	}
	return nil
}

// TouchScreening marks unfinished job id as having its files on a live
// replica: an ended or free lease is freed (no runner) and its end set to
// now, granting no one anything (a free lease is claimable at once) but
// telling FailOrphanedScreening, on every replica, that the job is not
// orphaned. A lease still held (ending after now) is left as it is: its
// holder's renewals say as much.
func (s *Store) TouchScreening(ctx context.Context, id string, now time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE screening_jobs SET runner = '', lease_until = $2
		WHERE id = $1 AND state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < $2)`,
		id, now.UTC()); err != nil {
		return s.errf("touch screening: %w", err)
	}
	return nil
}

// FailOrphanedScreening ends unfinished job id as failed with reason, at
// now, only if it shows no sign of life since quiet: created, changed,
// leased or touched (TouchScreening) at or before it, all in the
// statement's condition, so that a claim or a touch committed at the same
// moment either wins (the job is not failed) or finds the job failed (the
// claim is refused). The lease is cleared: a runner that still thinks it
// holds one has its next progress refused (ErrScreeningLeaseLost).
func (s *Store) FailOrphanedScreening(ctx context.Context, id string, quiet, now time.Time, reason string) (bool, error) {
	n, err := s.db.Exec(ctx, `UPDATE screening_jobs SET state = 'failed', error = $4, updated_at = $3, runner = '', lease_until = NULL
		WHERE id = $1 AND state IN ('queued', 'running') AND created_at <= $2 AND updated_at <= $2
		AND (lease_until IS NULL OR lease_until <= $2)`,
		id, quiet.UTC(), now.UTC(), reason)
	if err != nil {
		return false, s.errf("fail orphaned screening: %w", err)
	}
	return n == 1, nil
}

// GetScreening returns a job, or ErrNotFound.
func (s *Store) GetScreening(ctx context.Context, id string) (service.ScreeningJob, error) {
	j, err := scanScreening(s.db.QueryRow(ctx, screeningSelect+` WHERE id = $1`, id))
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
	rows, err := s.db.Query(ctx, screeningSelect+`
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
		disclosed     *string
		size          int64
		lease         *time.Time
	)
	if err := r.Scan(&j.ID, &j.Partner, &call, &j.Action, &format, &state, &j.Total, &j.Done, &j.ResultsBytes, &counts,
		&size, &j.Root, &j.RecordID, &j.Error, &j.CreatedAt, &j.UpdatedAt, &disclosed, &j.Runner, &lease); err != nil {
		return service.ScreeningJob{}, err
	}
	if lease != nil {
		j.LeaseUntil = lease.UTC()
	}
	j.Format, j.State, j.TreeSize = service.ImportFormat(format), service.ScreeningState(state), uint64(size)
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	if err := json.Unmarshal(counts, &j.Counts); err != nil {
		return service.ScreeningJob{}, err
	}
	if err := json.Unmarshal(call, &j.Caller); err != nil {
		return service.ScreeningJob{}, err
	}
	if disclosed != nil {
		j.Disclosed = new(service.ScreeningDisclosure)
		if err := json.Unmarshal([]byte(*disclosed), j.Disclosed); err != nil {
			return service.ScreeningJob{}, err
		}
	}
	return j, nil
}

// disclosedJSON is a job's disclosure as stored: NULL when it has none
// (a job stored before disclosures were kept).
func disclosedJSON(d *service.ScreeningDisclosure) (*string, error) {
	if d == nil {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func nonNilCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
