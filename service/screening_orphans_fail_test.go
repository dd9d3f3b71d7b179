package service_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// A job whose files no replica has ends: once no replica has claimed,
// renewed, changed or touched it for sixty leases, a replica that cannot
// see its files fails it, with the stable reason files_unavailable; the
// bank polling it sees it failed and is told to submit again. A replica
// that sees the files never fails it, and touches it even while it is
// busy with another job: that keeps every other replica from failing it.
func TestOrphanedScreeningFails(t *testing.T) {
	t.Parallel()
	w, clock, lease, replica := orphanReplicas(t)
	ctx := context.Background()
	holder, other := replica(), replica()
	job, err := holder.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcPerson, lcOrg)))
	if err != nil {
		t.Fatal(err)
	}
	state := func() service.ScreeningJob {
		t.Helper()
		j, err := other.Get(ctx, admin, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	sweep := func(sc *service.Screenings, want int) {
		t.Helper()
		if n, err := sc.SweepOrphans(ctx); err != nil || n != want {
			t.Fatalf("sweep at %s: failed %d (%v), want %d", *clock, n, err, want)
		}
	}

	// Within the bound the replica without the files leaves it.
	*clock = clock.Add(59 * lease)
	sweep(other, 0)
	// The replica that has the files, busy elsewhere (it never claims
	// the job here), touches it: the others wait a full bound again.
	sweep(holder, 0)
	*clock = clock.Add(59 * lease)
	sweep(other, 0)
	if j := state(); j.State != service.ScreeningQueued {
		t.Fatalf("a job whose files a live replica has: %s %q", j.State, j.Error)
	}
	// Past the bound, the replica that sees the files still never fails
	// it (it would run it).
	*clock = clock.Add(120 * lease)
	sweep(holder, 0)
	if j := state(); j.State != service.ScreeningQueued {
		t.Fatalf("failed by the replica that has its files: %s %q", j.State, j.Error)
	}
	// The replica with the files is gone: a full bound of silence later
	// the job is failed, once.
	*clock = clock.Add(60*lease + time.Second)
	sweep(other, 1)
	sweep(other, 0)
	j := state()
	if j.State != service.ScreeningFailed || !strings.HasPrefix(j.Error, service.ScreeningFilesUnavailable+": ") ||
		!strings.Contains(j.Error, "submit it again") || !j.UpdatedAt.Equal(*clock) {
		t.Fatalf("the orphaned job: %s at %s, error %q", j.State, j.UpdatedAt, j.Error)
	}
	// Failed, it is claimed by no one, even the replica that has its files.
	if ok, err := w.store.ClaimScreening(ctx, job.ID, "late", *clock, lease); err != nil || ok {
		t.Fatalf("a claim of the failed job: %v %v", ok, err)
	}
	// And it no longer holds its partner's cap.
	for i := range 2 {
		if _, err := other.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcPerson))); err != nil {
			t.Fatalf("new job %d after the orphan failed: %v", i, err)
		}
	}
}
