package storetest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// RunPushTimed runs the conformance tests of what push does apart from
// the entries' writes: the sweep's publications (an entry recorded before
// its published_at comes into force when it passes, which writes nothing)
// and the fan-out's exclusive claim. An adapter's tests call it like
// RunPush.
func RunPushTimed(t *testing.T, open func(t *testing.T) PushStore) {
	runEach(t, open, "", []named[PushStore]{
		{"SweepPublished", testSweepPublished},
		{"SweepPositionsNeverGoBack", testSweepNeverBack},
		{"FanoutClaim", testFanoutClaim},
		{"FanoutClaimedByOne", testFanoutClaimedByOne},
	})
}

// publishedRows lists the outbox rows of kind EventPublished.
func publishedRows(t *testing.T, s PushStore) []service.OutboxChange {
	t.Helper()
	var out []service.OutboxChange
	for _, c := range pending(t, s) {
		if c.Kind == service.EventPublished {
			out = append(out, c)
		}
	}
	return out
}

func testSweepPublished(t *testing.T, s PushStore) {
	ctx := t.Context()
	// orgEntry is recorded at 1s and published at 24h.
	soon, later, revoked := orgEntry("soon", "S1"), orgEntry("later", "S2"), orgEntry("gone", "S3")
	soon.PublishedAt, later.PublishedAt, revoked.PublishedAt = at(time.Hour), at(10*time.Hour), at(time.Hour)
	revoked.RevokedAt = ptr(at(time.Minute))
	// Recorded at or after their publication: told in force when recorded.
	past, same := orgEntry("past", "S4"), orgEntry("same", "S5")
	past.PublishedAt = at(-time.Hour)
	same.PublishedAt, same.CreatedAt, same.UpdatedAt = at(30*time.Minute), at(30*time.Minute), at(30*time.Minute)
	// Recorded pending, then corrected: moved, at 50m, to a publication
	// at 40m (the correction told it in force); late, at 90m, after its
	// publication at 1h, which nothing told.
	moved, late := orgEntry("moved", "S6"), orgEntry("late", "S7")
	moved.PublishedAt, late.PublishedAt = at(5*time.Hour), at(time.Hour)
	mustInsert(t, s, soon, later, revoked, past, moved, late)
	if n, err := s.SweepExpired(ctx, stored(at(0))); err != nil || n != 0 {
		t.Fatalf("first sweep: %d, %v; want 0 (it only starts the sweep)", n, err)
	}
	mustInsert(t, s, same)
	correct := func(e policy.Entry, when time.Duration, published time.Time) {
		t.Helper()
		e.Version, e.UpdatedAt, e.PublishedAt, e.Reason = 2, at(when), published, "更正"
		if err := s.UpdateEntry(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A correction while pending: the row names the version current at
	// the sweep.
	correct(soon, 20*time.Minute, soon.PublishedAt)
	correct(moved, 50*time.Minute, at(40*time.Minute))
	correct(late, 90*time.Minute, late.PublishedAt)
	if n, err := s.SweepExpired(ctx, stored(at(2*time.Hour))); err != nil || n != 2 {
		t.Fatalf("sweep past the publications: %d, %v; want 2 (soon, late)", n, err)
	}
	if n, err := s.SweepExpired(ctx, stored(at(3*time.Hour))); err != nil || n != 0 {
		t.Fatalf("sweep again: %d, %v; want 0", n, err)
	}
	got := publishedRows(t, s)
	if len(got) != 2 || got[0].EntryID != "late" || got[1].EntryID != "soon" {
		t.Fatalf("published outbox rows = %+v, want late and soon (by published_at, then id)", got)
	}
	for _, c := range got {
		if c.Version != 2 || !c.RecordedAt.Equal(stored(at(time.Hour))) {
			t.Errorf("published outbox row %+v, want version 2 at its published_at", c)
		}
	}
	if n, err := s.SweepExpired(ctx, stored(at(10*time.Hour))); err != nil || n != 1 {
		t.Fatalf("sweep up to a publication: %d, %v; want 1 (published_at at the sweep's time is swept)", n, err)
	}
	got = publishedRows(t, s)
	if len(got) != 3 || got[2].EntryID != "later" || got[2].Seq <= got[1].Seq || !got[2].RecordedAt.Equal(stored(at(10*time.Hour))) {
		t.Fatalf("published outbox rows = %+v, want late, soon, later", got)
	}
}

// testSweepNeverBack: a sweep with an earlier now (a replica whose clock
// is behind) adds nothing and leaves both positions where they were.
func testSweepNeverBack(t *testing.T, s PushStore) {
	ctx := t.Context()
	pub, exp := orgEntry("pub", "S1"), orgEntry("exp", "S2")
	pub.PublishedAt = at(2 * time.Hour)
	exp.PublishedAt, exp.ValidUntil = at(-time.Hour), ptr(at(2*time.Hour))
	mustInsert(t, s, pub, exp)
	for _, step := range []struct {
		now  time.Duration
		want int64
	}{{0, 0}, {3 * time.Hour, 2}, {time.Hour, 0}, {3 * time.Hour, 0}, {4 * time.Hour, 0}} {
		if n, err := s.SweepExpired(ctx, stored(at(step.now))); err != nil || n != step.want {
			t.Fatalf("sweep at %v: %d, %v; want %d", step.now, n, err, step.want)
		}
	}
	var kinds []service.EventKind
	for _, c := range pending(t, s) {
		if c.Kind != "" {
			kinds = append(kinds, c.Kind)
		}
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []service.EventKind{service.EventExpired, service.EventPublished}) {
		t.Fatalf("timed outbox rows %v, want one expiry and one publication", kinds)
	}
}

func testFanoutClaim(t *testing.T, s PushStore) {
	ctx := t.Context()
	now := stored(at(0))
	claim := func(holder string, d time.Duration, want bool) {
		t.Helper()
		if got, err := s.ClaimFanout(ctx, holder, now.Add(d), time.Minute); err != nil || got != want {
			t.Fatalf("%s claims at %v: %v, %v; want %v", holder, d, got, err, want)
		}
	}
	release := func(holder string) {
		t.Helper()
		if err := s.ReleaseFanout(ctx, holder); err != nil {
			t.Fatal(err)
		}
	}
	claim("a", 0, true)
	claim("b", 30*time.Second, false)
	claim("a", 30*time.Second, true) // renewed: until 90s
	claim("b", 80*time.Second, false)
	claim("b", 90*time.Second, true) // a's lease ended
	release("a")                     // no longer a's: b keeps it
	claim("a", 91*time.Second, false)
	release("b")
	claim("a", 91*time.Second, true)
}

// testFanoutClaimedByOne: of claims at once, by holders of their own,
// exactly one is granted.
func testFanoutClaimedByOne(t *testing.T, s PushStore) {
	const n = 8
	var (
		wg      sync.WaitGroup
		granted atomic.Int32
	)
	now := stored(at(0))
	for i := range n {
		wg.Go(func() {
			ok, err := s.ClaimFanout(t.Context(), fmt.Sprintf("h%d", i), now, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if g := granted.Load(); g != 1 {
		t.Fatalf("%d of %d simultaneous claims granted, want 1", g, n)
	}
}
