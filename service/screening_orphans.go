package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ScreeningFilesUnavailable begins the error of a job failed because no
// replica has its files (SweepOrphans): a stable reason a client may test
// for, followed by the explanation.
const ScreeningFilesUnavailable = "files_unavailable"

// screeningOrphanFailLeases is how many leases a job must go without a
// sign of life, on every replica, before a replica that cannot see its
// files fails it (60 × 30 s: half an hour). Longer than
// screeningOrphanLeases, after which it only stops holding its partner's
// cap: failing is final, so it waits out a replica's restart or a rolling
// upgrade, of which a replica that has the files would come back and
// touch the job.
const screeningOrphanFailLeases = 60

// Orphaned jobs. A job whose files no replica has (an upgrade that mounted
// a new store.screenings_dir over the old one, a replica's volume lost)
// would stay queued or running forever: no replica claims it, and the bank
// polling it never sees it end. SweepOrphans fails it, with the reason
// ScreeningFilesUnavailable, but only when that is safe:
//
//   - A replica fails only jobs whose files it cannot see; one that sees a
//     job's files never fails it, and runs it instead.
//   - With a directory per replica (a misconfiguration, warned of), a
//     replica cannot see whether another has the files, so it decides
//     from the store alone: a job is failed only once it has shown no
//     sign of life — its submission, progress, a lease held or renewed —
//     for screeningOrphanFailLeases leases. Claims alone do not say
//     enough: a replica runs one job at a time, so one that has the files
//     but is busy for hours with another job would not claim this one,
//     and it would be failed under it. So every replica, busy or not,
//     touches (TouchScreening) each unfinished job whose files it sees,
//     once a lease, apart from the job it runs; a job with its files on
//     a live replica is therefore never quiet for more than about two
//     leases, and only one whose files no live replica has stays quiet
//     for the bound. A replica down longer than the bound has its queued
//     jobs failed: their files are on no replica that answers, and the
//     partner is told to submit them again rather than left waiting.
//   - The decision is re-checked by the store in the failing write
//     (FailOrphanedScreening's condition): a claim or a touch made since
//     the job was listed, or at the same moment, keeps it from failing,
//     and a claim after the failure is refused. The lease is cleared,
//     so a runner that stalled past it cannot write the job back.
//
// Clocks of replicas are assumed to agree to well within a lease, as the
// leases already assume. A replica of an earlier version does not touch
// the jobs whose files it has; during a rolling upgrade from one, a job
// queued on a busy old replica with a directory of its own for longer
// than the bound could be failed by an upgraded replica.

// SweepOrphans touches every unfinished job whose files this replica
// sees (TouchScreening) and fails, with ScreeningFilesUnavailable, those
// whose files it does not see that have shown no sign of life for
// screeningOrphanFailLeases leases; it returns how many it failed. Run
// calls it once a lease.
func (s *Screenings) SweepOrphans(ctx context.Context) (int, error) {
	jobs, err := s.store.UnfinishedScreenings(ctx, maxScreeningBacklog)
	if err != nil {
		return 0, fmt.Errorf("sweep orphaned screenings: %w", err)
	}
	now := s.now().UTC()
	bound := time.Duration(screeningOrphanFailLeases) * s.lease
	quiet := now.Add(-bound)
	failed := 0
	var errs []error
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		if _, err := os.Stat(filepath.Join(s.dir, j.ID)); err == nil {
			// Touched once a lease at most; a held lease says enough.
			if !j.LeaseUntil.After(now.Add(-s.lease)) {
				if err := s.store.TouchScreening(ctx, j.ID, now); err != nil {
					errs = append(errs, fmt.Errorf("screening %s: %w", j.ID, err))
				}
			}
			continue
		}
		if aliveSince(j, quiet) {
			continue
		}
		reason := fmt.Sprintf("%s: the uploaded file is not in the screenings directory (store.screenings_dir) of any replica that looked for it, "+
			"and no replica that has it took up or touched the job for %s; submit it again", ScreeningFilesUnavailable, bound)
		ok, err := s.store.FailOrphanedScreening(ctx, j.ID, quiet, now, reason)
		if err != nil {
			errs = append(errs, fmt.Errorf("screening %s: %w", j.ID, err))
			continue
		}
		if ok {
			failed++
			s.logger.Warn("a screening job whose files no replica has was failed; its partner is told to submit it again",
				"screening", j.ID, "partner", j.Partner, "store.screenings_dir", s.dir, "quiet_for", bound)
		}
	}
	return failed, errors.Join(errs...)
}

// tendOrphans runs SweepOrphans once a lease until ctx ends; an error is
// retried at the next one.
func (s *Screenings) tendOrphans(ctx context.Context) {
	t := time.NewTicker(s.lease)
	defer t.Stop()
	for {
		if _, err := s.SweepOrphans(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("orphaned screenings: a sweep failed; retried in a lease", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
