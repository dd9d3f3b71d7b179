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

// ErrScreeningExpired: the job's results were deleted at the end of their
// retention.
var ErrScreeningExpired = errors.New("screening expired")

// screeningSweepEvery is how often Run looks for expired jobs' files.
const screeningSweepEvery = time.Hour

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
		if err := os.RemoveAll(filepath.Join(s.dir, de.Name())); err != nil {
			return removed, fmt.Errorf("remove an expired screening's files: %w", err)
		}
		removed++
	}
	return removed, nil
}

// expired reports whether a done job's files are gone (deleted at the end
// of their retention).
func (s *Screenings) expired(j ScreeningJob) bool {
	_, err := os.Stat(filepath.Join(s.dir, j.ID, "results"))
	return errors.Is(err, os.ErrNotExist)
}
