package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// RunScreeningLeases runs the conformance tests of screening jobs'
// leases, by which replicas sharing a database run each job once. open
// returns n stores on one fresh database, as n replicas would have them
// (PostgreSQL: n pools on one schema; SQLite: n connections to one file).
func RunScreeningLeases(t *testing.T, open func(t *testing.T, n int) []service.Store) {
	replicas := func(t *testing.T) replicaStores {
		return func(n int) []service.Store { return open(t, n) }
	}
	runEach(t, replicas, "", []named[replicaStores]{
		{"Screenings/ClaimedByOne", testScreeningClaimedByOne},
		{"Screenings/LeaseTakenOverOnceEnded", testScreeningLeaseTakenOver},
		{"Screenings/ClaimableOnly", testScreeningsClaimable},
		{"Screenings/OrphanFailedOnlyWhenQuiet", testScreeningOrphanFailedOnlyWhenQuiet},
		{"Screenings/OrphanFailedOrClaimed", testScreeningOrphanFailedOrClaimed},
	})
}

// replicaStores opens n stores on one fresh database.
type replicaStores func(n int) []service.Store

// queuedScreening stores a queued job id created at d.
func queuedScreening(t *testing.T, s service.Store, id string, d time.Duration) service.ScreeningJob {
	t.Helper()
	j := service.ScreeningJob{ID: id, Partner: "bank", Action: "bank_credit", Format: service.FormatNDJSON,
		Caller: service.Caller{ClientID: "bank", Role: service.RolePartner, Actions: []string{"bank_credit"}},
		State:  service.ScreeningQueued, Total: 10, Counts: map[string]int64{}, CreatedAt: stored(at(d)), UpdatedAt: stored(at(d))}
	if err := s.InsertScreening(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

// testScreeningClaimedByOne: of claims of one job at once, through two
// stores on one database by runners of their own, exactly one is granted.
func testScreeningClaimedByOne(t *testing.T, open replicaStores) {
	stores := open(2)
	for round := range 5 {
		id := fmt.Sprintf("scr_race%d", round)
		queuedScreening(t, stores[0], id, time.Duration(round)*time.Second)
		const n = 8
		var (
			wg      sync.WaitGroup
			granted atomic.Int32
			winner  atomic.Value
			start   = make(chan struct{})
		)
		now := stored(at(time.Hour))
		for i := range n {
			wg.Go(func() {
				<-start
				runner := fmt.Sprintf("replica-%d", i)
				ok, err := stores[i%2].ClaimScreening(t.Context(), id, runner, now, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
					winner.Store(runner)
				}
			})
		}
		close(start)
		wg.Wait()
		if g := granted.Load(); g != 1 {
			t.Fatalf("round %d: %d of %d simultaneous claims granted, want 1", round, g, n)
		}
		j, err := stores[1].GetScreening(t.Context(), id)
		if err != nil || j.Runner != winner.Load() || !j.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("round %d: the job after the claims: runner %q until %v (%v), want %v until %v",
				round, j.Runner, j.LeaseUntil, err, winner.Load(), now.Add(time.Minute))
		}
	}
}

// testScreeningLeaseTakenOver: a held lease is refused to another runner
// and renewed by its holder; once it has ended unrenewed, another runner
// takes it, and from then on the store takes the job's progress from the
// new holder only; a released lease is free at once.
func testScreeningLeaseTakenOver(t *testing.T, open replicaStores) {
	ctx := t.Context()
	stores := open(2)
	a, b := stores[0], stores[1]
	queuedScreening(t, a, "scr_lease", 0)
	t0 := stored(at(time.Hour))
	claim := func(s service.Store, runner string, d time.Duration, want bool) {
		t.Helper()
		ok, err := s.ClaimScreening(ctx, "scr_lease", runner, t0.Add(d), time.Minute)
		if err != nil || ok != want {
			t.Fatalf("claim by %s at +%s: %v %v, want %v", runner, d, ok, err, want)
		}
	}
	claim(a, "A", 0, true)
	claim(b, "B", 30*time.Second, false)
	claim(a, "A", 30*time.Second, true) // renewed: until +90s
	claim(b, "B", 80*time.Second, false)
	claim(b, "B", 91*time.Second, true) // ended unrenewed: taken over
	claim(a, "A", 92*time.Second, false)

	// A's progress, written as its lease's holder, is refused.
	j, err := a.GetScreening(ctx, "scr_lease")
	if err != nil || j.Runner != "B" {
		t.Fatalf("the job after the takeover: %+v %v", j, err)
	}
	late := j
	late.Runner, late.State, late.Done, late.UpdatedAt = "A", service.ScreeningRunning, 7, stored(at(2*time.Hour))
	if err := a.UpdateScreening(ctx, late); !errors.Is(err, service.ErrScreeningLeaseLost) {
		t.Fatalf("progress of the runner that lost the lease: %v, want ErrScreeningLeaseLost", err)
	}
	mine := j
	mine.State, mine.Done, mine.UpdatedAt = service.ScreeningRunning, 4, stored(at(2*time.Hour))
	if err := b.UpdateScreening(ctx, mine); err != nil {
		t.Fatalf("progress of the lease's holder: %v", err)
	}
	if got, err := a.GetScreening(ctx, "scr_lease"); err != nil || got.Done != 4 || got.Runner != "B" {
		t.Fatalf("the job after both writes: done %d runner %q (%v), want 4 by B", got.Done, got.Runner, err)
	}
	missing := mine
	missing.ID = "scr_none"
	if err := b.UpdateScreening(ctx, missing); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("progress of a missing job: %v, want ErrNotFound", err)
	}

	// A release by a runner that does not hold the lease changes nothing;
	// the holder's frees it for anyone, at once.
	if err := a.ReleaseScreening(ctx, "scr_lease", "A"); err != nil {
		t.Fatal(err)
	}
	claim(a, "A", 100*time.Second, false)
	if err := b.ReleaseScreening(ctx, "scr_lease", "B"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetScreening(ctx, "scr_lease"); err != nil || got.Runner != "" || !got.LeaseUntil.IsZero() {
		t.Fatalf("the job after its release: runner %q until %v (%v)", got.Runner, got.LeaseUntil, err)
	}
	claim(a, "A", 101*time.Second, true)

	// A finished job is claimed by no one.
	done, err := a.GetScreening(ctx, "scr_lease")
	if err != nil {
		t.Fatal(err)
	}
	done.State = service.ScreeningDone
	if err := a.UpdateScreening(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseScreening(ctx, "scr_lease", "A"); err != nil {
		t.Fatal(err)
	}
	claim(b, "B", time.Hour, false)
}

// testScreeningsClaimable: the claimable jobs are the unfinished ones
// whose lease is free or ended, oldest first.
func testScreeningsClaimable(t *testing.T, open replicaStores) {
	ctx := t.Context()
	s := open(1)[0]
	for i, id := range []string{"scr_free", "scr_held", "scr_ended", "scr_done"} {
		queuedScreening(t, s, id, time.Duration(i)*time.Second)
	}
	t0 := stored(at(time.Hour))
	for _, c := range []struct {
		id    string
		lease time.Duration
	}{{"scr_held", time.Hour}, {"scr_ended", time.Minute}} {
		if ok, err := s.ClaimScreening(ctx, c.id, "R", t0, c.lease); err != nil || !ok {
			t.Fatalf("claim %s: %v %v", c.id, ok, err)
		}
	}
	d, err := s.GetScreening(ctx, "scr_done")
	if err != nil {
		t.Fatal(err)
	}
	d.State = service.ScreeningDone
	if err := s.UpdateScreening(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimableScreenings(ctx, t0.Add(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	if fmt.Sprint(ids) != "[scr_free scr_ended]" {
		t.Fatalf("claimable: %v, want [scr_free scr_ended]", ids)
	}
	if got[1].Runner != "R" || !got[1].LeaseUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("an ended lease as listed: %q until %v", got[1].Runner, got[1].LeaseUntil)
	}
	if un, err := s.UnfinishedScreenings(ctx, 10); err != nil || len(un) != 3 {
		t.Fatalf("unfinished, leased or not: %d %v, want 3", len(un), err)
	}
	if one, err := s.ClaimableScreenings(ctx, t0.Add(2*time.Minute), 1); err != nil || len(one) != 1 || one[0].ID != "scr_free" {
		t.Fatalf("claimable, limit 1: %+v %v", one, err)
	}
}

// testScreeningOrphanFailedOnlyWhenQuiet: FailOrphanedScreening fails an
// unfinished job only when it was created, changed, leased and touched at
// or before quiet; TouchScreening frees an ended lease and sets its end,
// leaves a held one, and keeps the job from failing; the failed job keeps
// its reason, is claimed by no one, and takes no more progress from the
// runner that last held it.
func testScreeningOrphanFailedOnlyWhenQuiet(t *testing.T, open replicaStores) {
	ctx := t.Context()
	stores := open(2)
	a, b := stores[0], stores[1]
	queuedScreening(t, a, "scr_orphan", 0)
	queuedScreening(t, a, "scr_young", time.Hour)
	t0 := stored(at(2 * time.Hour))
	fail := func(id string, quiet time.Time, want bool) {
		t.Helper()
		ok, err := b.FailOrphanedScreening(ctx, id, quiet, t0, "files_unavailable: gone")
		if err != nil || ok != want {
			t.Fatalf("fail %s quiet since %s: %v %v, want %v", id, quiet, ok, err, want)
		}
	}
	// Created after quiet: alive.
	fail("scr_young", stored(at(30*time.Minute)), false)

	// Held by A until +1h1m: alive while the lease ends after quiet.
	if ok, err := a.ClaimScreening(ctx, "scr_orphan", "A", stored(at(time.Hour)), time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	fail("scr_orphan", stored(at(time.Hour)), false)
	// A touch while the lease is held leaves it.
	if err := b.TouchScreening(ctx, "scr_orphan", stored(at(time.Hour+30*time.Second))); err != nil {
		t.Fatal(err)
	}
	if j, err := b.GetScreening(ctx, "scr_orphan"); err != nil || j.Runner != "A" || !j.LeaseUntil.Equal(stored(at(time.Hour+time.Minute))) {
		t.Fatalf("a held lease after a touch: %q until %v (%v)", j.Runner, j.LeaseUntil, err)
	}
	// Once it ended, a touch frees it and sets its end: claimable at once,
	// and alive until then.
	touched := stored(at(90 * time.Minute))
	if err := b.TouchScreening(ctx, "scr_orphan", touched); err != nil {
		t.Fatal(err)
	}
	if j, err := a.GetScreening(ctx, "scr_orphan"); err != nil || j.Runner != "" || !j.LeaseUntil.Equal(touched) {
		t.Fatalf("an ended lease after a touch: %q until %v (%v)", j.Runner, j.LeaseUntil, err)
	}
	if got, err := a.ClaimableScreenings(ctx, touched, 10); err != nil || len(got) != 2 {
		t.Fatalf("claimable after a touch: %d %v, want both jobs", len(got), err)
	}
	fail("scr_orphan", touched.Add(-time.Second), false)

	// Quiet since the touch: failed, once, with its reason.
	fail("scr_orphan", touched, true)
	fail("scr_orphan", touched, false)
	j, err := a.GetScreening(ctx, "scr_orphan")
	if err != nil || j.State != service.ScreeningFailed || j.Error != "files_unavailable: gone" || !j.UpdatedAt.Equal(t0) ||
		j.Runner != "" || !j.LeaseUntil.IsZero() {
		t.Fatalf("the failed job: %+v %v", j, err)
	}
	if ok, err := a.ClaimScreening(ctx, "scr_orphan", "A", t0, time.Minute); err != nil || ok {
		t.Fatalf("a claim of the failed job: %v %v", ok, err)
	}
	if err := a.TouchScreening(ctx, "scr_orphan", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	late := j
	late.Runner, late.State, late.Done = "A", service.ScreeningRunning, 5
	if err := a.UpdateScreening(ctx, late); !errors.Is(err, service.ErrScreeningLeaseLost) {
		t.Fatalf("progress of the runner that held it: %v, want ErrScreeningLeaseLost", err)
	}
	if j, err := b.GetScreening(ctx, "scr_orphan"); err != nil || j.State != service.ScreeningFailed || !j.LeaseUntil.IsZero() {
		t.Fatalf("the failed job after a touch and late progress: %s until %v (%v)", j.State, j.LeaseUntil, err)
	}
	if ok, err := b.FailOrphanedScreening(ctx, "scr_none", t0, t0, "x"); err != nil || ok {
		t.Fatalf("fail a missing job: %v %v", ok, err)
	}
}

// testScreeningOrphanFailedOrClaimed: a claim and a failure of one quiet
// job at once, through two stores on one database: exactly one of them
// takes effect, and the job is as that one left it.
func testScreeningOrphanFailedOrClaimed(t *testing.T, open replicaStores) {
	stores := open(2)
	now := stored(at(time.Hour))
	for round := range 10 {
		id := fmt.Sprintf("scr_orphan%d", round)
		queuedScreening(t, stores[0], id, time.Duration(round)*time.Millisecond)
		var (
			wg              sync.WaitGroup
			claimed, failed bool
			start           = make(chan struct{})
		)
		wg.Go(func() {
			<-start
			ok, err := stores[round%2].ClaimScreening(t.Context(), id, "R", now, time.Minute)
			if err != nil {
				t.Error(err)
			}
			claimed = ok
		})
		wg.Go(func() {
			<-start
			ok, err := stores[(round+1)%2].FailOrphanedScreening(t.Context(), id, now.Add(-time.Minute), now, "files_unavailable: gone")
			if err != nil {
				t.Error(err)
			}
			failed = ok
		})
		close(start)
		wg.Wait()
		if claimed == failed {
			t.Fatalf("round %d: claimed %v, failed %v: want exactly one", round, claimed, failed)
		}
		j, err := stores[0].GetScreening(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if claimed && (j.State != service.ScreeningQueued || j.Runner != "R") || failed && (j.State != service.ScreeningFailed || j.Runner != "") {
			t.Fatalf("round %d: claimed %v, failed %v, the job: %s runner %q", round, claimed, failed, j.State, j.Runner)
		}
	}
}
