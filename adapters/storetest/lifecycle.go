package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// RunLifecycle runs the conformance tests of service.LifecycleStore: atomic
// entry changes, the proceedings index, violation records and the
// bitemporal entry history. open is as for Run.
func RunLifecycle(t *testing.T, open func(t *testing.T) service.Store) {
	runEach(t, open, "Lifecycle/", []named[service.Store]{
		{"RoundTrip", testLifecycleRoundTrip},
		{"ApplyIsAtomic", testApplyAtomic},
		{"Proceedings", testProceedings},
		{"ViolationRecords", testViolationRecords},
		{"HistoryAsOf", testHistoryAsOf},
		{"HistoryOfPlainWrites", testHistoryPlainWrites},
	})
}

// lifecycleEntry is an entry with every lifecycle field set.
func lifecycleEntry(id, subject string) policy.Entry {
	e := orgEntry(id, subject, "110105194912310029")
	e.Objections = []policy.Objection{
		{ID: "obj-" + id + "-1", FiledAt: at(48 * time.Hour), DecidedAt: ptr(at(72 * time.Hour)), Decision: "rejected",
			FiledBy: "administrator", Grounds: "g", EvidenceRefs: []string{"r"}, DueAt: ptr(at(500 * time.Hour)), Note: "n"},
		{ID: "obj-" + id + "-2", FiledAt: at(96 * time.Hour), FiledBy: "originating_department", Grounds: "g2", DueAt: ptr(at(600 * time.Hour))},
	}
	e.ParticularlySerious = true
	e.ExitByApplication = true
	e.Repairs = []policy.Repair{{ID: "rep-" + id, AppliedAt: at(100 * time.Hour), Grounds: "修复", EvidenceRefs: []string{"证明"},
		DueAt: ptr(at(400 * time.Hour)), State: policy.StateReviewed, ReviewedAt: ptr(at(110 * time.Hour)), Finding: "f", Recommendation: "approve"}}
	e.Exits = []policy.ExitApplication{{ID: "exit-" + id, AppliedAt: at(120 * time.Hour), Grounds: "移出", State: policy.StateApplied}}
	e.Derivation = &policy.Derivation{Rule: "rs.levels[1]", Source: "篇", RuleSet: "rs", Points: 8, Records: []string{"v1", "v2"},
		FromEntry: "x", Trail: []string{"a", "b"}, ComputedAt: at(time.Minute)}
	e.RevocationCause = &policy.Cause{Rule: "r", Source: "s", EntryID: "e", ObjectionID: "o"}
	return e
}

func testLifecycleRoundTrip(t *testing.T, s service.Store) {
	ctx := t.Context()
	a := lifecycleEntry("la", "ORG-LA")
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Insert: []policy.Entry{a}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEntry(ctx, "la")
	if err != nil {
		t.Fatal(err)
	}
	checkLifecycleEntry(t, got, a)
	// The plain writes keep the lifecycle document too.
	b := lifecycleEntry("lb", "ORG-LB")
	mustInsert(t, s, b)
	got, _ = s.GetEntry(ctx, "lb")
	checkLifecycleEntry(t, got, b)
	b.Repairs[0].State, b.Repairs[0].DecidedAt = policy.StateApproved, ptr(at(130*time.Hour))
	b.Version++
	if err := s.UpdateEntry(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetEntry(ctx, "lb")
	checkLifecycleEntry(t, got, b)
	// An entry without lifecycle data reads back without it.
	c := personEntry("lc", "P-LC")
	mustInsert(t, s, c)
	got, _ = s.GetEntry(ctx, "lc")
	checkEntry(t, got, c)
}

func checkLifecycleEntry(t *testing.T, got, want policy.Entry) {
	t.Helper()
	var times []*time.Time
	for i := range got.Objections {
		times = append(times, got.Objections[i].DueAt)
	}
	for i := range got.Repairs {
		r := &got.Repairs[i]
		times = append(times, &r.AppliedAt, r.DueAt, r.ReviewedAt, r.DecidedAt)
	}
	for i := range got.Exits {
		times = append(times, &got.Exits[i].AppliedAt, got.Exits[i].DecidedAt)
	}
	if got.Derivation != nil {
		times = append(times, &got.Derivation.ComputedAt)
	}
	checkTimes(t, "entry "+got.ID+" lifecycle", times...)
	w := wantLifecycle(want)
	if g := wantLifecycle(got); !reflect.DeepEqual(g, w) {
		t.Errorf("entry %s lifecycle:\n got %+v\nwant %+v", want.ID, g, w)
	}
	// The entry's own fields, with the lifecycle parts as compared above.
	want.Objections, want.Repairs, want.Exits, want.Derivation = w.Objections, w.Repairs, w.Exits, w.Derivation
	checkEntry(t, got, want)
}

// lifecycleParts is what the lifecycle adds to an entry, as a store must
// return it.
type lifecycleParts struct {
	Objections          []policy.Objection
	ParticularlySerious bool
	ExitByApplication   bool
	Repairs             []policy.Repair
	Exits               []policy.ExitApplication
	Derivation          *policy.Derivation
	RevocationCause     *policy.Cause
}

func wantLifecycle(e policy.Entry) lifecycleParts {
	p := lifecycleParts{ParticularlySerious: e.ParticularlySerious, ExitByApplication: e.ExitByApplication, RevocationCause: e.RevocationCause}
	for _, o := range e.Objections {
		o.FiledAt, o.DecidedAt, o.DueAt = stored(o.FiledAt), storedPtr(o.DecidedAt), storedPtr(o.DueAt)
		if len(o.EvidenceRefs) == 0 {
			o.EvidenceRefs = nil
		}
		p.Objections = append(p.Objections, o)
	}
	for _, r := range e.Repairs {
		r.AppliedAt, r.DueAt, r.ReviewedAt, r.DecidedAt = stored(r.AppliedAt), storedPtr(r.DueAt), storedPtr(r.ReviewedAt), storedPtr(r.DecidedAt)
		if len(r.EvidenceRefs) == 0 {
			r.EvidenceRefs = nil
		}
		p.Repairs = append(p.Repairs, r)
	}
	for _, x := range e.Exits {
		x.AppliedAt, x.DecidedAt = stored(x.AppliedAt), storedPtr(x.DecidedAt)
		if len(x.EvidenceRefs) == 0 {
			x.EvidenceRefs = nil
		}
		p.Exits = append(p.Exits, x)
	}
	if e.Derivation != nil {
		d := *e.Derivation
		d.ComputedAt = stored(d.ComputedAt)
		p.Derivation = &d
	}
	return p
}

func testApplyAtomic(t *testing.T, s service.Store) {
	ctx := t.Context()
	a := orgEntry("aa", "ORG-AA")
	mustInsert(t, s, a)
	stale := a
	stale.Reason = "changed"
	stale.Version = a.Version + 2 // not the next version
	rec := violation("vr-aa", "ORG-AA", at(time.Hour), at(2*time.Hour))
	err := s.ApplyEntryChanges(ctx, service.EntryChanges{
		Insert: []policy.Entry{personEntry("ab", "P-AB")}, Update: []policy.Entry{stale}, Records: []policy.ViolationRecord{rec},
	})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if _, err := s.GetEntry(ctx, "ab"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("insert of a failed change survived: %v", err)
	}
	if rs, _ := s.ViolationRecords(ctx, "ORG-AA", time.Time{}); len(rs) != 0 {
		t.Fatalf("record of a failed change survived: %v", rs)
	}
	missing := personEntry("zz", "P-ZZ")
	missing.Version = 2
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{missing}}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("update of a missing entry: %v", err)
	}
	// A duplicate record id is a conflict and rolls back the entry update.
	ok := a
	ok.Version++
	ok.Reason = "updated"
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{ok}, Records: []policy.ViolationRecord{rec}}); err != nil {
		t.Fatal(err)
	}
	again := ok
	again.Version++
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{again}, Records: []policy.ViolationRecord{rec}}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("duplicate record: %v", err)
	}
	if got, _ := s.GetEntry(ctx, "aa"); got.Version != ok.Version {
		t.Fatalf("version %d after a failed change, want %d", got.Version, ok.Version)
	}
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{}); err != nil {
		t.Fatalf("empty change: %v", err)
	}
}

func violation(id, subject string, decided, recorded time.Time) policy.ViolationRecord {
	return policy.ViolationRecord{
		ID: id, Subject: policy.SubjectID{Kind: policy.KindOrganization, Value: subject}, RuleSet: "rs", Item: "item-1",
		Severity: "general", DecidedAt: decided, RecordedAt: recorded, Department: "城管局", Reference: "罚字" + id,
		EvidenceRefs: []string{"doc-" + id}, ParticularlySerious: id == "vr-2",
	}
}

func testProceedings(t *testing.T, s service.Store) {
	ctx := t.Context()
	e := lifecycleEntry("pa", "ORG-PA") // open objection due at(600h), reviewed repair due at(400h), open exit
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Insert: []policy.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	other := lifecycleEntry("pb", "ORG-PB")
	for i := range other.Objections {
		other.Objections[i].ID += "x"
	}
	other.Repairs[0].ID, other.Exits[0].ID = "rep-pbx", "exit-pbx"
	other.Objections[1].DueAt = ptr(at(300 * time.Hour))
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Insert: []policy.Entry{other}}); err != nil {
		t.Fatal(err)
	}
	ids := func(ps []service.Proceeding) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	open, err := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingObjection})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(open); !slices.Equal(got, []string{"obj-pa-2", "obj-pb-2x"}) {
		t.Fatalf("open objections %v", got)
	}
	if open[0].Entry.ID != "pa" || open[0].DueAt == nil || !open[0].DueAt.Equal(stored(at(600*time.Hour))) || open[0].Kind != service.ProceedingObjection {
		t.Fatalf("proceeding %+v", open[0])
	}
	checkTimes(t, "due", open[0].DueAt)
	overdue, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingObjection, DueBefore: at(300 * time.Hour)})
	if got := ids(overdue); !slices.Equal(got, []string{"obj-pb-2x"}) {
		t.Fatalf("overdue at 300h: %v", got)
	}
	page, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingObjection, After: "obj-pa-2", Limit: 1})
	if got := ids(page); !slices.Equal(got, []string{"obj-pb-2x"}) {
		t.Fatalf("page after obj-pa-2: %v", got)
	}
	if reps, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingRepair}); !slices.Equal(ids(reps), []string{"rep-pa", "rep-pbx"}) {
		t.Fatalf("repairs %v", ids(reps))
	}
	if xs, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingExit}); !slices.Equal(ids(xs), []string{"exit-pa", "exit-pbx"}) {
		t.Fatalf("exits %v", ids(xs))
	}
	for _, id := range []string{"obj-pa-1", "obj-pa-2", "rep-pa", "exit-pa"} {
		got, err := s.EntryByProceeding(ctx, id)
		if err != nil || got.ID != "pa" {
			t.Fatalf("EntryByProceeding(%s) = %s, %v", id, got.ID, err)
		}
	}
	if _, err := s.EntryByProceeding(ctx, "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("missing proceeding: %v", err)
	}
	// Deciding closes it; revoking the entry makes the rest moot.
	e.Objections[1].DecidedAt, e.Objections[1].Decision = ptr(at(200*time.Hour)), "rejected"
	e.Version++
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingObjection}); !slices.Equal(ids(open), []string{"obj-pb-2x"}) {
		t.Fatalf("after deciding: %v", ids(open))
	}
	other.RevokedAt, other.Version = ptr(at(210*time.Hour)), other.Version+1
	if err := s.UpdateEntry(ctx, other); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenProceedings(ctx, service.ProceedingFilter{Kind: service.ProceedingObjection}); len(open) != 0 {
		t.Fatalf("after revoking: %v", ids(open))
	}
}

func testViolationRecords(t *testing.T, s service.Store) {
	ctx := t.Context()
	r1 := violation("vr-1", "ORG-V", at(3*time.Hour), at(10*time.Hour))
	r2 := violation("vr-2", "ORG-V", at(time.Hour), at(20*time.Hour))
	r3 := violation("vr-3", "ORG-V", at(3*time.Hour), at(30*time.Hour))
	r3.EvidenceRefs = nil
	other := violation("vr-4", "ORG-W", at(time.Hour), at(10*time.Hour))
	for _, r := range []policy.ViolationRecord{r3, r1, r2, other} {
		if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Records: []policy.ViolationRecord{r}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ViolationRecords(ctx, "ORG-V", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.ViolationRecord{r2, r1, r3} // by decision time, then id
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.DecidedAt, w.RecordedAt = stored(w.DecidedAt), stored(w.RecordedAt)
		checkTimes(t, "record "+got[i].ID, &got[i].DecidedAt, &got[i].RecordedAt)
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
	known, _ := s.ViolationRecords(ctx, "ORG-V", at(20*time.Hour))
	if len(known) != 2 || known[0].ID != "vr-2" || known[1].ID != "vr-1" {
		t.Fatalf("known at 20h: %+v", known)
	}
	if none, _ := s.ViolationRecords(ctx, "ORG-V", at(time.Hour)); len(none) != 0 {
		t.Fatalf("known at 1h: %+v", none)
	}
}

func testHistoryAsOf(t *testing.T, s service.Store) {
	ctx := t.Context()
	const person, moved = "110105194912310029", "11010519491231004X"
	v1 := orgEntry("ha", "ORG-H", person)
	v1.Objections = nil
	v1.CreatedAt, v1.UpdatedAt = at(10*time.Hour), at(10*time.Hour)
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Insert: []policy.Entry{v1}}); err != nil {
		t.Fatal(err)
	}
	v2 := v1
	v2.Reason, v2.Version, v2.UpdatedAt = "second", 2, at(20*time.Hour)
	v2.ResponsiblePersons = []policy.ResponsiblePerson{{ID: moved, Role: policy.RoleLegalRepresentative}}
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{v2}}); err != nil {
		t.Fatal(err)
	}
	v3 := v2
	v3.RevokedAt, v3.RevocationReason, v3.Version, v3.UpdatedAt = ptr(at(30*time.Hour)), "gone", 3, at(30*time.Hour)
	if err := s.UpdateEntry(ctx, v3); err != nil {
		t.Fatal(err)
	}
	unrelated := personEntry("hb", "P-OTHER")
	unrelated.UpdatedAt = at(5 * time.Hour)
	mustInsert(t, s, unrelated)

	for _, tc := range []struct {
		subject string
		known   time.Time
		want    *policy.Entry
	}{
		{"ORG-H", at(9 * time.Hour), nil},
		{"ORG-H", at(10 * time.Hour), &v1},
		{"ORG-H", at(19 * time.Hour), &v1},
		{"ORG-H", at(20 * time.Hour), &v2},
		{"ORG-H", at(40 * time.Hour), &v3},
		// The person named only in version 1 is found as it was known then …
		{person, at(15 * time.Hour), &v1},
		// … and later the entry is still found, in the version that no longer names them.
		{person, at(25 * time.Hour), &v2},
		{moved, at(15 * time.Hour), &v1}, // candidate by a later version, but known as v1 then
	} {
		got, err := s.EntriesAffectingAsOf(ctx, tc.subject, tc.known)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("%s known at %v: %v, want none", tc.subject, tc.known, entryIDs(got))
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s known at %v: %v, want one", tc.subject, tc.known, entryIDs(got))
			continue
		}
		checkEntry(t, got[0], *tc.want)
	}
}

// Entries written by InsertEntries and UpdateEntry (imports, patches,
// revocations, upstream sources) leave history too.
func testHistoryPlainWrites(t *testing.T, s service.Store) {
	ctx := t.Context()
	e := personEntry("hp", "P-HP")
	e.UpdatedAt = at(time.Hour)
	mustInsert(t, s, e)
	e2 := e
	e2.Reason, e2.Version, e2.UpdatedAt = "patched", 2, at(2*time.Hour)
	if err := s.UpdateEntry(ctx, e2); err != nil {
		t.Fatal(err)
	}
	got, err := s.EntriesAffectingAsOf(ctx, "P-HP", at(90*time.Minute))
	if err != nil || len(got) != 1 {
		t.Fatalf("as of 90m: %v %v", entryIDs(got), err)
	}
	checkEntry(t, got[0], e)
	got, _ = s.EntriesAffectingAsOf(ctx, "P-HP", at(3*time.Hour))
	checkEntry(t, got[0], e2)
}
