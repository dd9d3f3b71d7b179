package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// testScreenings: a job round-trips (its caller scope and counts too), its
// progress is rewritten, and only queued or running jobs are unfinished,
// oldest first.
func testScreenings(t *testing.T, s service.Store) {
	ctx := t.Context()
	job := func(i int, state service.ScreeningState) service.ScreeningJob {
		return service.ScreeningJob{
			ID: fmt.Sprintf("scr_%d", i), Partner: "bank", Action: "bank_credit", Format: service.FormatCSV,
			Caller: service.Caller{ClientID: "bank", Role: service.RolePartner, Actions: []string{"bank_credit"}, Region: "110000"},
			State:  state, Total: 100, Counts: map[string]int64{}, CreatedAt: at(time.Duration(i) * time.Second),
			UpdatedAt: at(time.Duration(i) * time.Second),
		}
	}
	for i, st := range []service.ScreeningState{service.ScreeningRunning, service.ScreeningQueued, service.ScreeningDone, service.ScreeningFailed} {
		if err := s.InsertScreening(ctx, job(i, st)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertScreening(ctx, job(0, service.ScreeningQueued)); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("duplicate job: %v", err)
	}
	got, err := s.GetScreening(ctx, "scr_0")
	if err != nil {
		t.Fatal(err)
	}
	want := job(0, service.ScreeningRunning)
	want.CreatedAt, want.UpdatedAt = stored(want.CreatedAt), stored(want.UpdatedAt)
	if got.Caller.Region != "110000" || len(got.Caller.Actions) != 1 || got.CreatedAt != want.CreatedAt || got.Total != 100 {
		t.Fatalf("round trip: %+v", got)
	}
	got.Done, got.ResultsBytes, got.Counts = 40, 12345, map[string]int64{"clear": 39, "invalid": 1}
	got.State, got.TreeSize, got.Root, got.RecordID = service.ScreeningDone, 39, "ab", "scr_0"
	got.UpdatedAt = stored(at(time.Hour))
	if err := s.UpdateScreening(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := s.GetScreening(ctx, "scr_0")
	if err != nil || again.Done != 40 || again.ResultsBytes != 12345 || again.Counts["clear"] != 39 ||
		again.TreeSize != 39 || again.Root != "ab" || again.State != service.ScreeningDone || again.UpdatedAt != got.UpdatedAt {
		t.Fatalf("after update: %+v, %v", again, err)
	}
	if _, err := s.GetScreening(ctx, "scr_none"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
	missing := job(9, service.ScreeningQueued)
	if err := s.UpdateScreening(ctx, missing); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("update of a missing job: %v", err)
	}
	un, err := s.UnfinishedScreenings(ctx, 10)
	if err != nil || len(un) != 1 || un[0].ID != "scr_1" {
		t.Fatalf("unfinished: %+v, %v", un, err)
	}
}

// testLookupEntriesBatch: a batch lookup answers every subject asked
// about exactly as LookupEntries answers it alone (entries on it and
// naming it as a responsible person, once each, ordered by ID), across
// more subjects than one query takes.
func testLookupEntriesBatch(t *testing.T, s service.Store) {
	bl, ok := s.(service.EntryBatchLookup)
	if !ok {
		t.Skip("the store has no batch lookup")
	}
	ctx := t.Context()
	// S1 has two entries and is named in a third; P1 is named in two; S2
	// names itself.
	mustInsert(t, s, orgEntry("e3", "S1"), orgEntry("e1", "S1"), orgEntry("e2", "S9", "S1", "P1"),
		orgEntry("e4", "S2", "S2"), orgEntry("e5", "S3", "P1"))
	subjects := []string{"S1", "P1", "S2", "S3", "NONE"}
	for i := range 1200 {
		subjects = append(subjects, fmt.Sprintf("X%d", i))
	}
	got, err := bl.LookupEntriesBatch(ctx, subjects)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(subjects) {
		t.Fatalf("%d subjects answered of %d", len(got), len(subjects))
	}
	for _, sub := range []string{"S1", "P1", "S2", "S3", "NONE", "X1199"} {
		one, err := s.LookupEntries(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		var a, b []string
		for _, e := range got[sub].Entries {
			a = append(a, e.ID)
		}
		for _, e := range one.Entries {
			b = append(b, e.ID)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%s: batch %v, alone %v", sub, a, b)
		}
	}
	if ids := got["S1"].Entries; len(ids) != 3 || ids[0].ID != "e1" || ids[2].Reason == "" {
		t.Fatalf("S1: %+v", ids)
	}
}
