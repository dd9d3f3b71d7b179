package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// testEntryLoad: staged entries are invisible until the load commits, then
// all of them (with their person links and the changes committed with
// them) are there; a load commits once.
func testEntryLoad(t *testing.T, s service.Store) {
	ctx := t.Context()
	if err := s.BeginEntryLoad(ctx, "load_a", at(0)); err != nil {
		t.Fatal(err)
	}
	var batch []policy.Entry
	for i := range 25 {
		batch = append(batch, orgEntry(fmt.Sprintf("bulk-%02d", i), fmt.Sprintf("9111000000000%05d", i), "11010519491231002X"))
	}
	if err := s.StageEntries(ctx, "load_a", batch[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.StageEntries(ctx, "load_a", batch[10:]); err != nil {
		t.Fatal(err)
	}
	if es, err := s.ListEntries(ctx, service.EntryFilter{Limit: 100}); err != nil || len(es) != 0 {
		t.Fatalf("staged entries visible before the commit: %d, %v", len(es), err)
	}
	old := personEntry("bulk-old", "110105194912310021")
	mustInsert(t, s, old)
	closed := old
	closed.Version, closed.Reason = 2, "closed by the load"
	extra := personEntry("bulk-extra", "110105194912310030")
	n, err := s.CommitEntryLoad(ctx, "load_a", service.EntryChanges{Insert: []policy.Entry{extra}, Update: []policy.Entry{closed}})
	if err != nil || n != 25 {
		t.Fatalf("commit: %d, %v", n, err)
	}
	es, err := s.ListEntries(ctx, service.EntryFilter{Limit: 100})
	if err != nil || len(es) != 27 {
		t.Fatalf("after the commit: %d entries, %v", len(es), err)
	}
	got, err := s.GetEntry(ctx, "bulk-07")
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, got, wantEntry(batch[7]))
	if es, err := s.EntriesAffecting(ctx, "11010519491231002X"); err != nil || len(es) != 25 {
		t.Fatalf("person links: %d entries reach the person, %v", len(es), err)
	}
	if got, err := s.GetEntry(ctx, "bulk-old"); err != nil || got.Reason != "closed by the load" {
		t.Fatalf("the update committed with the load: %+v, %v", got, err)
	}
	if _, err := s.CommitEntryLoad(ctx, "load_a", service.EntryChanges{}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("second commit: %v, want ErrNotFound", err)
	}
	if err := s.DiscardEntryLoad(ctx, "load_a"); err != nil {
		t.Fatal(err)
	}
	if es, err := s.ListEntries(ctx, service.EntryFilter{Limit: 100}); err != nil || len(es) != 27 {
		t.Fatalf("discarding a committed load's staging changed entries: %d, %v", len(es), err)
	}
}

// testEntryLoadDiscard: a discarded load leaves nothing, cannot commit,
// and a failed commit (a duplicate id) keeps nothing of the load.
func testEntryLoadDiscard(t *testing.T, s service.Store) {
	ctx := t.Context()
	if err := s.BeginEntryLoad(ctx, "load_d", at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.StageEntries(ctx, "load_d", []policy.Entry{personEntry("d-1", "110105194912310021")}); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardEntryLoad(ctx, "load_d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitEntryLoad(ctx, "load_d", service.EntryChanges{}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("commit of a discarded load: %v", err)
	}

	mustInsert(t, s, personEntry("dup", "110105194912310021"))
	if err := s.BeginEntryLoad(ctx, "load_e", at(0)); err != nil {
		t.Fatal(err)
	}
	// A store that copies straight into entries finds the duplicate while
	// staging, one that stages finds it at the commit: either way the load
	// fails as a conflict and keeps nothing.
	err := s.StageEntries(ctx, "load_e", []policy.Entry{personEntry("e-1", "110105194912310030"), personEntry("dup", "110105194912310048")})
	if err == nil {
		_, err = s.CommitEntryLoad(ctx, "load_e", service.EntryChanges{})
	} else if _, cerr := s.CommitEntryLoad(ctx, "load_e", service.EntryChanges{}); cerr == nil {
		t.Fatal("a load whose staging failed committed")
	}
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("a load with a duplicate id: %v, want ErrConflict", err)
	}
	if err := s.DiscardEntryLoad(ctx, "load_e"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEntry(ctx, "e-1"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a failed commit kept part of the load: %v", err)
	}

	// An abandoned load (begun more than a day before the next) is cleared
	// and can no longer commit.
	if err := s.BeginEntryLoad(ctx, "load_old", at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.StageEntries(ctx, "load_old", []policy.Entry{personEntry("old-1", "110105194912310021")}); err != nil {
		t.Fatal(err)
	}
	if err := s.BeginEntryLoad(ctx, "load_new", at(25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitEntryLoad(ctx, "load_old", service.EntryChanges{}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("commit of an abandoned load: %v", err)
	}
	if n, err := s.CommitEntryLoad(ctx, "load_new", service.EntryChanges{}); err != nil || n != 0 {
		t.Fatalf("an empty load commits nothing: %d, %v", n, err)
	}
}

// testEntryLoadStoredDuplicates: a load's entries, staged or held for its
// commit, that share their key (subject, list, originating department,
// decided_at as an instant) with a stored entry, revoked or not, are
// named with the stored entry's id, by id, up to the limit; another
// department's decision is not one. A second load's check waits until
// the first load has committed, and then sees its entries.
func testEntryLoadStoredDuplicates(t *testing.T, s service.Store) {
	ctx := t.Context()
	const (
		subjA, subjR, subjF = "110105194912310021", "110105194912310030", "110105194912310048"
		subjH               = "11010519491231002X"
	)
	stored := personEntry("sd-stored", subjA)
	revoked := personEntry("sd-revoked", subjR)
	revoked.RevokedAt, revoked.RevocationReason = ptr(at(time.Hour)), "异议成立"
	mustInsert(t, s, stored, revoked)
	// A failure leaves no load open to hold the store's closing up.
	t.Cleanup(func() {
		for _, id := range []string{"load_sd", "load_sd2", "load_sd3"} {
			_ = s.DiscardEntryLoad(context.Background(), id)
		}
	})

	if err := s.BeginEntryLoad(ctx, "load_sd", at(0)); err != nil {
		t.Fatal(err)
	}
	again := personEntry("sd-x1", subjA)
	again.DecidedAt = again.DecidedAt.UTC() // the same instant
	again.Reason = "另一事由"                   // not part of the key
	other := personEntry("sd-x2", subjA)
	other.OriginatingDepartment = "另一法院"
	fresh := personEntry("sd-x3", subjF)
	if err := s.StageEntries(ctx, "load_sd", []policy.Entry{again, other, fresh}); err != nil {
		t.Fatal(err)
	}
	heldAgain := personEntry("sd-h1", subjR)
	heldFresh := personEntry("sd-h2", subjH)
	held := []policy.Entry{heldAgain, heldFresh}

	got, err := s.StoredDuplicates(ctx, "load_sd", held, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []service.StoredDuplicate{
		{Key: service.KeyOf(heldAgain), ID: "sd-h1", StoredID: "sd-revoked"},
		{Key: service.KeyOf(again), ID: "sd-x1", StoredID: "sd-stored"},
	}
	checkDuplicates(t, got, want)
	if got, err := s.StoredDuplicates(ctx, "load_sd", held, 1); err != nil || len(got) != 1 || got[0].ID != "sd-h1" {
		t.Fatalf("limit 1: %+v, %v", got, err)
	}
	if got, err := s.StoredDuplicates(ctx, "", held, 10); err != nil {
		t.Fatal(err)
	} else {
		checkDuplicates(t, got, want[:1])
	}
	if _, err := s.StoredDuplicates(ctx, "load_none", nil, 10); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a load never begun: %v, want ErrNotFound", err)
	}

	// A second load staging fresh's key again waits for the first.
	if err := s.BeginEntryLoad(ctx, "load_sd2", at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.StageEntries(ctx, "load_sd2", []policy.Entry{personEntry("sd-y1", subjF)}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		found []service.StoredDuplicate
		err   error
	}
	second := make(chan result, 1)
	go func() {
		found, err := s.StoredDuplicates(ctx, "load_sd2", nil, 10)
		second <- result{found, err}
	}()
	select {
	case r := <-second:
		t.Fatalf("the second load's check did not wait for the first load: %+v, %v", r.found, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if n, err := s.CommitEntryLoad(ctx, "load_sd", service.EntryChanges{Insert: held}); err != nil || n != 3 {
		t.Fatalf("commit: %d, %v", n, err)
	}
	if err := s.DiscardEntryLoad(ctx, "load_sd"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-second:
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkDuplicates(t, r.found, []service.StoredDuplicate{{Key: service.KeyOf(fresh), ID: "sd-y1", StoredID: "sd-x3"}})
	case <-time.After(30 * time.Second):
		t.Fatal("the second load's check still waits after the first load committed")
	}
	if err := s.DiscardEntryLoad(ctx, "load_sd2"); err != nil {
		t.Fatal(err)
	}
	// Discarded, it lets the next load check at once.
	if err := s.BeginEntryLoad(ctx, "load_sd3", at(0)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if got, err := s.StoredDuplicates(wctx, "load_sd3", nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("after the discard: %+v, %v", got, err)
	}
	if err := s.DiscardEntryLoad(ctx, "load_sd3"); err != nil {
		t.Fatal(err)
	}
}

func checkDuplicates(t *testing.T, got, want []service.StoredDuplicate) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d stored duplicates, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.StoredID != w.StoredID || g.Key.Subject != w.Key.Subject || g.Key.List != w.Key.List ||
			g.Key.OriginatingDepartment != w.Key.OriginatingDepartment || !g.Key.DecidedAt.Equal(w.Key.DecidedAt.Truncate(time.Microsecond)) {
			t.Fatalf("duplicate %d: %+v, want %+v", i, g, w)
		}
	}
}
