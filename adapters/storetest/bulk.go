package storetest

import (
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
