package service_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// A job whose files no replica has (an upgrade mounted a new, shared
// store.screenings_dir over each replica's old one) stays queued or
// running: once it has gone unclaimed and unchanged for ten leases on a
// replica that cannot see its files, it no longer holds its partner's cap
// of unfinished jobs. A replica that sees the files, or a job claimed or
// submitted within the bound, still counts.
// orphanReplicas is a world, a clock the test moves (from 2026-03-01
// 02:00 UTC) and a maker of replicas over them, each with 30 s leases and
// a screenings dir of its own, so that one cannot see another's files.
func orphanReplicas(t *testing.T) (w *lcWorld, clock *time.Time, lease time.Duration, replica func() *service.Screenings) {
	t.Helper()
	w = newLCWorld(t, cstAt(2026, 3, 1, 10))
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	lease = 30 * time.Second
	now := func() time.Time { return at }
	return w, &at, lease, func() *service.Screenings {
		return service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsClock(now), service.WithScreeningsLease(lease))
	}
}

func TestOrphanedScreeningsDoNotHoldTheCap(t *testing.T) {
	t.Parallel()
	_, clock, lease, replica := orphanReplicas(t)
	ctx := context.Background()
	old := replica()
	submit := func(sc *service.Screenings) error {
		_, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcPerson, lcOrg)))
		return err
	}
	for i := range 2 {
		if err := submit(old); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if err := submit(old); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("a third job = %v, want ErrTooManyScreenings", err)
	}
	// The upgraded replica, over a new dir: the two jobs' files are hidden.
	upgraded := replica()
	*clock = clock.Add(9 * lease)
	if err := submit(upgraded); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("within ten leases = %v, want ErrTooManyScreenings (another replica may yet claim them)", err)
	}
	*clock = clock.Add(2 * lease)
	if err := submit(old); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("on the replica that has the files = %v, want ErrTooManyScreenings", err)
	}
	if err := submit(upgraded); err != nil {
		t.Fatalf("past ten leases, the orphaned jobs still hold the cap: %v", err)
	}
	// The new job is seen and counts: one more fits, not two.
	if err := submit(upgraded); err != nil {
		t.Fatalf("second new job: %v", err)
	}
	if err := submit(upgraded); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("a third new job = %v, want ErrTooManyScreenings", err)
	}
}
