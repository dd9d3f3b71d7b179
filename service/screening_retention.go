package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultScreeningRetention is how long a finished job's files are kept
// unless configured otherwise.
const DefaultScreeningRetention = 7 * 24 * time.Hour

// Errors of a done job's results missing from this replica's disk.
var (
	// ErrScreeningExpired: the job's results were deleted at the end of
	// their retention.
	ErrScreeningExpired = errors.New("screening expired")
	// ErrScreeningUnavailable: the job's results are not on this
	// replica's disk although their retention has not passed: another
	// replica, whose screenings dir this one does not share, has them.
	ErrScreeningUnavailable = errors.New("screening results unavailable on this replica")
)

// screeningSweepEvery is how often Run looks for expired jobs' files.
const screeningSweepEvery = time.Hour

// sweptPrefix names a job's directory while Sweep removes it.
const sweptPrefix = ".swept-"

// WithScreeningsRetention keeps a finished job's files for d (default
// DefaultScreeningRetention).
func WithScreeningsRetention(d time.Duration) ScreeningsOption {
	return func(s *Screenings) {
		if d > 0 {
			s.retention = d
		}
	}
}

// Sweep deletes the files of jobs finished (done or failed) longer than
// the retention ago, and of directories no job owns (an upload cut by a
// crash) as old; it returns how many job directories it deleted. The jobs
// stay in the store and their records in the evidence log: results already
// downloaded keep verifying. Queued and running jobs are never touched.
func (s *Screenings) Sweep(ctx context.Context) (int, error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("screenings dir: %w", err)
	}
	cutoff := s.now().Add(-s.retention)
	removed := 0
	for _, de := range des {
		if de.IsDir() && strings.HasPrefix(de.Name(), sweptPrefix) {
			// Left by a sweep that stopped (a crash) while it removed it.
			_ = os.RemoveAll(filepath.Join(s.dir, de.Name()))
			continue
		}
		if !de.IsDir() || !strings.HasPrefix(de.Name(), "scr_") {
			continue
		}
		j, err := s.store.GetScreening(ctx, de.Name())
		switch {
		case errors.Is(err, ErrNotFound):
			// A directory whose job was never stored: Submit removes its
			// own on failure, so only a crash leaves one.
			info, ierr := de.Info()
			if ierr != nil || info.ModTime().After(cutoff) {
				continue
			}
		case err != nil:
			return removed, err
		case j.State != ScreeningDone && j.State != ScreeningFailed:
			continue
		case j.UpdatedAt.After(cutoff):
			continue
		}
		// Renamed away first, so that a job's files vanish at once, not
		// file by file under a download, and of replicas sweeping one
		// shared dir only one removes them.
		swept := filepath.Join(s.dir, sweptPrefix+de.Name())
		if err := os.Rename(filepath.Join(s.dir, de.Name()), swept); errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return removed, fmt.Errorf("remove an expired screening's files: %w", err)
		}
		if err := os.RemoveAll(swept); err != nil {
			return removed, fmt.Errorf("remove an expired screening's files: %w", err)
		}
		removed++
	}
	return removed, nil
}

// resultsHere is nil while done job j's results are on this replica's
// disk. Once they are not, it is ErrScreeningExpired if the retention
// has passed since the job finished (Sweep deleted them), and
// ErrScreeningUnavailable before: another replica has them, in a
// screenings dir this one does not share.
func (s *Screenings) resultsHere(j ScreeningJob) error {
	_, err := os.Stat(filepath.Join(s.dir, j.ID, "results"))
	if !errors.Is(err, os.ErrNotExist) {
		return nil // there, or unreadable: opening them says which
	}
	if !j.UpdatedAt.After(s.now().Add(-s.retention)) {
		return fmt.Errorf("%w: the results of %s were deleted %s after the job finished", ErrScreeningExpired, j.ID, s.retention)
	}
	return fmt.Errorf("%w: the results of %s are not in this replica's screenings directory (store.screenings_dir), which is not shared with the replica that ran the job; retry, or ask the operator to share one store.screenings_dir between replicas",
		ErrScreeningUnavailable, j.ID)
}
