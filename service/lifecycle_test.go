package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Scenario suite of the lifecycle use cases over a real SQLite store, with
// a settable clock at exact dates (China Standard Time).

var cst = time.FixedZone("CST", 8*3600)

func cstAt(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, cst) }

// lcWorld is a store, the services over it and what the change hook saw.
type lcWorld struct {
	t         *testing.T
	clock     *testenv.Clock
	store     *sqlite.Store
	entries   *service.Entries
	lifecycle *service.Lifecycle
	checker   *service.Checker
	audit     *spy

	mu      sync.Mutex
	changed []string
}

func newLCWorld(t *testing.T, start time.Time) *lcWorld {
	t.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return newLCWorldWith(t, start, cat)
}

// newLCWorldWith is newLCWorld over another catalogue; options are added
// to the checker's.
func newLCWorldWith(t *testing.T, start time.Time, cat *policy.Catalog, opts ...service.CheckerOption) *lcWorld {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(func() {
		app.Close()
		st.Close()
	})
	w := &lcWorld{t: t, clock: testenv.NewClock(start), store: st}
	w.audit = &spy{next: app}
	w.entries = service.NewEntries(st, cat, service.WithEntriesClock(w.clock.Now), service.WithEntriesAudit(service.NewAudit(w.audit)),
		service.WithChangeHook(func(subjects ...string) {
			w.mu.Lock()
			w.changed = append(w.changed, subjects...)
			w.mu.Unlock()
		}))
	w.lifecycle = service.NewLifecycle(w.entries, st)
	w.checker = service.NewChecker(cat, st, app, st, append([]service.CheckerOption{service.WithClock(w.clock.Now), service.WithHistory(st)}, opts...)...)
	return w
}

// takeChanged returns and forgets what the change hook saw.
func (w *lcWorld) takeChanged() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.changed
	w.changed = nil
	slices.Sort(out)
	return slices.Compact(out)
}

// acts lists the audit acts recorded so far.
func (w *lcWorld) acts() []string {
	w.audit.mu.Lock()
	defer w.audit.mu.Unlock()
	var out []string
	for _, r := range w.audit.recs {
		var b service.AuditBody
		if err := json.Unmarshal(r.Body, &b); err == nil {
			out = append(out, string(b.Act))
		}
	}
	return out
}

var admin = service.Caller{ClientID: "admin", Role: service.RoleAdmin}

func (w *lcWorld) create(in service.EntryInput) policy.Entry {
	w.t.Helper()
	e, err := w.entries.Create(context.Background(), in)
	if err != nil {
		w.t.Fatalf("create: %v", err)
	}
	return e
}

func (w *lcWorld) check(subject, action string, asOf *time.Time) service.CheckAnswer {
	w.t.Helper()
	ans, err := w.checker.Check(context.Background(), admin, service.CheckRequest{Subject: subject, Action: action, AsOf: asOf})
	if err != nil {
		w.t.Fatalf("check: %v", err)
	}
	return ans
}

func measureStates(a service.CheckAnswer) []string {
	var out []string
	for _, m := range a.Measures {
		out = append(out, m.ID+":"+string(m.Status))
	}
	return out
}

const (
	lcOrg    = "91350100M000100Y43"
	lcOrg2   = "914403001922038216"
	lcPerson = "11010519491231002X"
)

func safetyEntry(published time.Time, persons ...policy.ResponsiblePerson) service.EntryInput {
	return service.EntryInput{
		Subject: lcOrg, List: "safety_production_blacklist", OriginatingDepartment: "应急管理局",
		Reason: "发生较大生产安全责任事故", LegalBasis: "《安全生产法》", DecidedAt: published.AddDate(0, 0, -1), PublishedAt: published,
		ResponsiblePersons: persons,
	}
}

// redEntry is a red-list entry (诚信示范企业) for subject, decided and
// published at published.
func redEntry(subject string, published time.Time) service.EntryInput {
	return service.EntryInput{Subject: subject, List: "honest_exemplar_redlist", OriginatingDepartment: "文明办",
		Reason: "诚信示范企业", LegalBasis: "篇九", DecidedAt: published, PublishedAt: published}
}

// An objection filed through the service suspends measures until it is
// rejected ten days later; validity moves by ten days; the change hook
// and the audit log see every step; the past stays answerable.
func TestServiceObjectionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorld(t, cstAt(2026, 1, 4, 9))
	e := w.create(safetyEntry(cstAt(2026, 1, 5, 0), policy.ResponsiblePerson{ID: lcPerson, Role: policy.RoleLegalRepresentative}))
	w.takeChanged()

	w.clock.Set(cstAt(2026, 3, 1, 9))
	before := w.check(lcOrg, "government_procurement", nil)
	if before.Outcome != policy.OutcomeRestrict {
		t.Fatalf("before: %s", before.Outcome)
	}

	w.clock.Set(cstAt(2026, 3, 2, 10))
	e2, o, err := w.lifecycle.FileObjection(ctx, e.ID, service.ObjectionInput{FiledBy: "originating_department", Grounds: "事故责任认定被撤销", EvidenceRefs: []string{"复议决定书"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.DueAt == nil || !o.DueAt.Equal(cstAt(2026, 3, 24, 0)) || e2.Version != 2 {
		t.Fatalf("objection %+v version %d", o, e2.Version)
	}
	if got := w.takeChanged(); !slices.Equal(got, []string{lcPerson, lcOrg}) {
		t.Fatalf("change hook saw %v, want the company and its legal representative", got)
	}
	w.clock.Set(cstAt(2026, 3, 5, 10))
	during := w.check(lcOrg, "government_procurement", nil)
	if during.Outcome != policy.OutcomeClear || !slices.Contains(measureStates(during), "sp-18-procurement:suspended") {
		t.Fatalf("during: %s %v", during.Outcome, measureStates(during))
	}
	// Not yet overdue; overdue after the deadline.
	if ps, _, err := w.lifecycle.ListProceedings(ctx, service.ProceedingObjection, "overdue", "", 10); err != nil || len(ps) != 0 {
		t.Fatalf("overdue before the deadline: %v %v", ps, err)
	}
	w.clock.Set(cstAt(2026, 3, 25, 9))
	ps, now, err := w.lifecycle.ListProceedings(ctx, service.ProceedingObjection, "overdue", "", 10)
	if err != nil || len(ps) != 1 || ps[0].ID != o.ID {
		t.Fatalf("overdue after the deadline: %v %v", ps, err)
	}
	if n := w.lifecycle.WorkingDaysOverdue(ps[0].DueAt, now); n != 2 {
		t.Fatalf("working days overdue on Wednesday 2026-03-25: %d, want 2 (Tuesday and Wednesday)", n)
	}

	w.clock.Set(cstAt(2026, 3, 12, 10)) // rejected ten days after filing
	e3, o3, err := w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "rejected", Note: "核实无误"})
	if err != nil {
		t.Fatal(err)
	}
	// The safety black list counts its year from publication (篇十二 第六条):
	// a rejected objection does not move its end (objection_extends_validity).
	if o3.Decision != "rejected" || !e3.ValidUntil.Equal(cstAt(2027, 1, 5, 0)) {
		t.Fatalf("after rejection: %+v valid until %s", o3, e3.ValidUntil)
	}
	after := w.check(lcOrg, "government_procurement", nil)
	if after.Outcome != policy.OutcomeRestrict {
		t.Fatalf("after: %s", after.Outcome)
	}
	if _, _, err := w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "upheld"}); !errors.Is(err, policy.ErrAlreadyDecided) {
		t.Fatalf("decided twice: %v", err)
	}
	if _, _, err := w.lifecycle.DecideObjection(ctx, "obj_nope", service.ObjectionDecisionInput{Decision: "rejected"}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("unknown objection: %v", err)
	}
	acts := w.acts()
	for _, want := range []string{"entry_created", "objection_filed", "objection_decided"} {
		if !slices.Contains(acts, want) {
			t.Errorf("audit log lacks %s: %v", want, acts)
		}
	}
	// As of the middle of the objection, credgate knew it was open.
	mid := cstAt(2026, 3, 5, 10)
	if a := w.check(lcOrg, "government_procurement", &mid); a.Outcome != policy.OutcomeClear || a.Entries[0].Status != policy.StatusUnderObjection {
		t.Fatalf("as of the objection: %s %+v", a.Outcome, a.Entries)
	}
}

// Re-running a past check as of its own checked_at reproduces its answer,
// although the entry changed since.
func TestServiceAsOfReproducesPastCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorld(t, cstAt(2026, 2, 1, 9))
	e := w.create(safetyEntry(cstAt(2026, 2, 2, 0), policy.ResponsiblePerson{ID: lcPerson, Role: policy.RoleLegalRepresentative}))

	w.clock.Set(cstAt(2026, 4, 1, 10))
	first := w.check(lcPerson, "executive_appointment", nil)
	if first.Outcome != policy.OutcomeProhibit || len(first.Measures) == 0 {
		t.Fatalf("first check: %s %v", first.Outcome, measureStates(first))
	}

	// The entry changes: the person is no longer named, then it is revoked.
	w.clock.Set(cstAt(2026, 4, 2, 10))
	none := []policy.ResponsiblePerson{}
	if _, err := w.entries.Patch(ctx, e.ID, service.EntryPatch{ResponsiblePersons: &none}, 0); err != nil {
		t.Fatal(err)
	}
	w.clock.Set(cstAt(2026, 4, 3, 10))
	if _, err := w.entries.Revoke(ctx, e.ID, "撤销"); err != nil {
		t.Fatal(err)
	}
	w.clock.Set(cstAt(2026, 4, 10, 10))
	now := w.check(lcPerson, "executive_appointment", nil)
	if now.Outcome != policy.OutcomeClear {
		t.Fatalf("now: %s", now.Outcome)
	}
	again := w.check(lcPerson, "executive_appointment", &first.CheckedAt)
	if again.Outcome != first.Outcome || !slices.Equal(measureStates(again), measureStates(first)) {
		t.Fatalf("as of %s: %s %v, want %s %v", first.CheckedAt, again.Outcome, measureStates(again), first.Outcome, measureStates(first))
	}
	if again.AsOf == nil || !again.AsOf.Equal(first.CheckedAt) || !again.DataAsOf.Equal(first.CheckedAt) || again.CheckID == first.CheckID {
		t.Fatalf("as-of answer: as_of %v data_as_of %v", again.AsOf, again.DataAsOf)
	}
	for i, m := range again.Measures {
		f := first.Measures[i]
		if m.EntryID != f.EntryID || m.Via == nil || *m.Via != *f.Via {
			t.Fatalf("measure %d: %+v, want %+v", i, m, f)
		}
	}
	// The as-of answer is itself evidence.
	if got, err := w.checker.GetCheck(ctx, admin, again.CheckID); err != nil || got.AsOf == nil {
		t.Fatalf("as-of check not recorded: %v", err)
	}
	// Between the patch and the revocation, the person was no longer reached.
	between := cstAt(2026, 4, 2, 12)
	if a := w.check(lcPerson, "executive_appointment", &between); a.Outcome != policy.OutcomeClear {
		t.Fatalf("between: %s", a.Outcome)
	}
	// Partners may not ask about the past; the future is not the past.
	partner := service.Caller{ClientID: "p", Role: service.RolePartner, Actions: []string{"executive_appointment"}}
	if _, err := w.checker.Check(ctx, partner, service.CheckRequest{Subject: lcPerson, Action: "executive_appointment", AsOf: &first.CheckedAt}); !errors.Is(err, service.ErrAsOfNotAllowed) {
		t.Fatalf("partner as_of: %v", err)
	}
	future := cstAt(2026, 5, 1, 0)
	if _, err := w.checker.Check(ctx, admin, service.CheckRequest{Subject: lcPerson, Action: "executive_appointment", AsOf: &future}); !errors.Is(err, service.ErrInvalidAsOf) {
		t.Fatalf("future as_of: %v", err)
	}
	// An auditor, who checks no action of its own, may re-run any.
	auditor := service.Caller{ClientID: "aud", Role: service.RoleAuditor}
	if a, err := w.checker.Check(ctx, auditor, service.CheckRequest{Subject: lcPerson, Action: "executive_appointment", AsOf: &first.CheckedAt}); err != nil || a.Outcome != first.Outcome {
		t.Fatalf("auditor as_of: %v", err)
	}
	if _, err := w.checker.Check(ctx, auditor, service.CheckRequest{Subject: lcPerson, Action: "executive_appointment"}); !errors.Is(err, service.ErrActionNotAllowed) {
		t.Fatalf("auditor check of now: %v", err)
	}
}

// Creating a black-list entry removes the subject from red lists in the
// same transaction, recorded; a red entry for a black-listed subject is
// refused, by API and by import line.
func TestServiceBlackListRemovesRed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorldWith(t, cstAt(2026, 1, 1, 9), cityCatalog(t))
	red := w.create(redEntry(lcOrg, cstAt(2025, 6, 1, 0)))
	other := w.create(redEntry(lcOrg2, cstAt(2025, 6, 1, 0)))
	w.takeChanged()
	if a := w.check(lcOrg, "public_tendering", nil); a.Outcome != policy.OutcomeIncentive {
		t.Fatalf("before: %s", a.Outcome)
	}
	w.clock.Set(cstAt(2026, 4, 1, 9))
	black := w.create(citySafetyEntry(cstAt(2026, 4, 1, 9)))
	if got := w.takeChanged(); !slices.Equal(got, []string{lcOrg}) {
		t.Fatalf("change hook: %v", got)
	}
	r, err := w.entries.Get(ctx, red.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.RevokedAt == nil || !r.RevokedAt.Equal(black.PublishedAt) || r.RevocationCause == nil ||
		r.RevocationCause.Rule != "city_safety_blacklist.on_enter_remove_from_kinds" || r.RevocationCause.EntryID != black.ID || r.Version != 2 {
		t.Fatalf("red entry after the black one: %+v cause %+v", r, r.RevocationCause)
	}
	if o, _ := w.entries.Get(ctx, other.ID); o.RevokedAt != nil {
		t.Fatal("another subject's red entry was removed")
	}
	a := w.check(lcOrg, "public_tendering", nil)
	if a.Outcome != policy.OutcomeRestrict || slices.ContainsFunc(a.Entries, func(v service.EntryView) bool { return v.ID == red.ID }) {
		t.Fatalf("after: %s %+v", a.Outcome, a.Entries)
	}
	_, err = w.entries.Create(ctx, service.EntryInput{Subject: lcOrg, List: "honest_exemplar_redlist", OriginatingDepartment: "文明办",
		Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 4, 1, 0), PublishedAt: cstAt(2026, 4, 2, 0)})
	var re *policy.RuleError
	if !errors.Is(err, policy.ErrCrossListConflict) || !errors.As(err, &re) || re.Rule != "city_safety_blacklist.on_enter_remove_from_kinds" {
		t.Fatalf("red for a black-listed subject: %v", err)
	}
	_, err = w.entries.Import(ctx, []service.EntryInput{
		{Subject: lcOrg2, List: "court_dishonest_debtor", OriginatingDepartment: "法院", Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 4, 1, 0), PublishedAt: cstAt(2026, 4, 2, 0)},
		{Subject: lcOrg, List: "honest_exemplar_redlist", OriginatingDepartment: "文明办", Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 4, 1, 0), PublishedAt: cstAt(2026, 4, 2, 0)},
	}, []int{2, 3})
	var ie *service.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 3 {
		t.Fatalf("import: %v", err)
	}
	if es, _ := w.entries.List(ctx, service.EntryFilter{Subject: lcOrg2}); len(es) != 1 {
		t.Fatalf("a rejected import stored %d entries for the other subject", len(es))
	}
	// As of before the black listing, credgate answered incentive.
	past := cstAt(2026, 3, 1, 0)
	if a := w.check(lcOrg, "public_tendering", &past); a.Outcome != policy.OutcomeIncentive {
		t.Fatalf("as of before: %s", a.Outcome)
	}
}

// An objection upheld against the black entry gives the red entry back in
// the same act (篇三(十六) 恢复其信誉): the check answers incentive again,
// the act names the reopened entry, and as_of the time between still
// shows what credgate knew then.
func TestServiceUpheldObjectionReopensRed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorldWith(t, cstAt(2026, 1, 1, 9), cityCatalog(t))
	red := w.create(redEntry(lcOrg, cstAt(2025, 6, 1, 0)))
	w.clock.Set(cstAt(2026, 4, 1, 9))
	black := w.create(citySafetyEntry(cstAt(2026, 4, 1, 9)))
	w.clock.Set(cstAt(2026, 4, 2, 9))
	_, o, err := w.lifecycle.FileObjection(ctx, black.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "事故责任认定有误"})
	if err != nil {
		t.Fatal(err)
	}
	between := cstAt(2026, 4, 3, 9)
	w.clock.Set(cstAt(2026, 4, 10, 9))
	w.takeChanged()
	nb, _, err := w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "upheld", Note: "认定错误"})
	if err != nil || !nb.Voided() {
		t.Fatalf("decide: %v voided %v", err, nb.Voided())
	}
	r, err := w.entries.Get(ctx, red.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.RevokedAt != nil || r.RevocationCause != nil || r.Version != 3 {
		t.Fatalf("red entry after the upheld objection: %+v", r)
	}
	if got := w.takeChanged(); !slices.Contains(got, lcOrg) {
		t.Fatalf("change hook: %v", got)
	}
	if a := w.check(lcOrg, "public_tendering", nil); a.Outcome != policy.OutcomeIncentive {
		t.Fatalf("after the upheld objection: %s", a.Outcome)
	}
	if a := w.check(lcOrg, "public_tendering", &between); a.Outcome == policy.OutcomeIncentive {
		t.Fatalf("as of the objection's verification credgate knew the red entry removed: %s", a.Outcome)
	}
	var details map[string]any
	for _, b := range w.audit.bodies(t) {
		if b.Act == service.ActObjectionDecided {
			details = b.Details
		}
	}
	if ids, _ := details["reopened_entries"].([]any); len(ids) != 1 || ids[0] != red.ID {
		t.Fatalf("the act does not name the reopened entry: %v", details)
	}
}

// Violation records through the service: the third same-item penalty
// derives the black entry and supersedes the general one in one
// transaction, with the trail; the hook and audit see it; the subject's
// status as of a time shows points and lists.
func TestServiceViolationsDeriveEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorld(t, cstAt(2026, 3, 3, 12))
	record := func(decided time.Time) service.ViolationResult {
		t.Helper()
		w.clock.Set(decided.Add(2 * time.Hour))
		res, err := w.lifecycle.RecordViolation(ctx, service.ViolationInput{Subject: lcOrg2, Item: "um-g-10", DecidedAt: decided,
			Department: "市城管局", Reference: "城管罚决字", EvidenceRefs: []string{"处罚决定书"}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r1 := record(cstAt(2026, 3, 3, 10))
	if r1.Derived != nil || r1.Standing.Points != 2 || len(w.takeChanged()) != 0 {
		t.Fatalf("first: %+v", r1)
	}
	r2 := record(cstAt(2026, 4, 7, 10))
	if r2.Derived == nil || r2.Derived.List != "urban_management_general" {
		t.Fatalf("second: %+v", r2)
	}
	if got := w.takeChanged(); !slices.Equal(got, []string{lcOrg2}) {
		t.Fatalf("hook: %v", got)
	}
	r3 := record(cstAt(2026, 5, 12, 10))
	if r3.Derived == nil || r3.Derived.List != "urban_management_black" || r3.Derived.Derivation == nil ||
		!slices.Equal(r3.Derived.Derivation.Records, []string{r1.Record.ID, r2.Record.ID, r3.Record.ID}) {
		t.Fatalf("third: %+v", r3.Derived)
	}
	if len(r3.Closed) != 1 || r3.Closed[0].ID != r2.Derived.ID {
		t.Fatalf("closed: %+v", r3.Closed)
	}
	stored, err := w.entries.Get(ctx, r3.Derived.ID)
	if err != nil || stored.Derivation == nil || stored.Derivation.Rule != "urban_management.levels[2]" {
		t.Fatalf("stored derived entry: %+v %v", stored.Derivation, err)
	}
	if general, _ := w.entries.Get(ctx, r2.Derived.ID); general.RevocationCause == nil || general.RevocationCause.EntryID != r3.Derived.ID {
		t.Fatalf("general entry not superseded: %+v", general)
	}
	_, records, standings, err := w.lifecycle.SubjectViolations(ctx, lcOrg2)
	if err != nil || len(records) != 3 || len(standings) != 1 || standings[0].Points != 12 {
		t.Fatalf("violations: %d records %+v %v", len(records), standings, err)
	}
	if n := slices.Index(w.acts(), "violation_recorded"); n < 0 {
		t.Fatalf("no violation_recorded act: %v", w.acts())
	}
	// Status as of between the second and third records: general list, 4 points.
	at := cstAt(2026, 5, 1, 0)
	st, err := w.checker.SubjectStatus(ctx, admin, lcOrg2, &at)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Points) != 1 || st.Points[0].Points != 4 || st.Points[0].Level != "urban_management_general" {
		t.Fatalf("points as of May 1: %+v", st.Points)
	}
	if len(st.Entries) != 1 || st.Entries[0].List != "urban_management_general" || st.Entries[0].Status != policy.StatusActive {
		t.Fatalf("entries as of May 1: %+v", st.Entries)
	}
	if len(st.Actions) != 1 || st.Actions[0].Action != "supervision" || st.Actions[0].Outcome != policy.OutcomeReference || st.Receipt == nil {
		t.Fatalf("actions as of May 1: %+v", st.Actions)
	}
	// Bad input changes nothing.
	for _, in := range []service.ViolationInput{
		{Subject: lcOrg2, Item: "no-such-item", DecidedAt: at, Department: "d", Reference: "r"},
		{Subject: lcOrg2, Item: "um-g-01", DecidedAt: cstAt(2027, 1, 1, 0), Department: "d", Reference: "r"},
		{Subject: lcOrg2, Item: "um-g-01", DecidedAt: at, Department: "", Reference: "r"},
	} {
		if _, err := w.lifecycle.RecordViolation(ctx, in); !errors.Is(err, policy.ErrInvalidViolation) {
			t.Errorf("%+v: %v", in, err)
		}
	}
	if _, records, _, _ := w.lifecycle.SubjectViolations(ctx, lcOrg2); len(records) != 3 {
		t.Fatalf("bad input stored records: %d", len(records))
	}
}

// Repair through the service: refused within the lock with the rule named,
// review then approval after it; measures end, the record stays.
func TestServiceRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorld(t, cstAt(2026, 1, 9, 9))
	e := w.create(service.EntryInput{Subject: lcOrg, List: "urban_management_black", OriginatingDepartment: "市城管局",
		Reason: "未经许可排放生活污水,造成严重环境污染", LegalBasis: "篇十三", DecidedAt: cstAt(2026, 1, 9, 0), PublishedAt: cstAt(2026, 1, 10, 0)})
	w.clock.Set(cstAt(2026, 6, 1, 9))
	_, _, err := w.lifecycle.ApplyRepair(ctx, e.ID, service.ApplicationRequest{Grounds: "已整改"})
	var re *policy.RuleError
	if !errors.As(err, &re) || re.Rule != "urban_management_black.repair.locks[0]" {
		t.Fatalf("within the lock: %v", err)
	}
	if got, _ := w.entries.Get(ctx, e.ID); got.Version != 1 {
		t.Fatal("a refused repair changed the entry")
	}
	w.clock.Set(cstAt(2027, 1, 12, 9))
	_, rep, err := w.lifecycle.ApplyRepair(ctx, e.ID, service.ApplicationRequest{Grounds: "已整改并作出信用承诺", EvidenceRefs: []string{"承诺书"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.lifecycle.DecideRepair(ctx, rep.ID, service.DecisionInput{Decision: "approved"}); !errors.Is(err, policy.ErrWrongState) {
		t.Fatalf("approved before review: %v", err)
	}
	if _, _, err := w.lifecycle.ReviewRepair(ctx, rep.ID, service.RepairReviewInput{Finding: "整改到位", Recommendation: "approve"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Set(cstAt(2027, 1, 20, 9))
	// The urban black list's measure: its publication and push (篇十三 第七条(五)).
	before := w.check(lcOrg, "public_display", nil)
	ent, rep2, err := w.lifecycle.DecideRepair(ctx, rep.ID, service.DecisionInput{Decision: "approved", Note: "同意"})
	if err != nil || rep2.State != policy.StateApproved || ent.StatusAt(w.clock.Now()) != policy.StatusRepaired {
		t.Fatalf("approve: %v %+v", err, rep2)
	}
	after := w.check(lcOrg, "public_display", nil)
	if before.Outcome != policy.OutcomeReference || after.Outcome != policy.OutcomeClear || len(after.Entries) != 0 {
		t.Fatalf("before %s after %s %+v", before.Outcome, after.Outcome, after.Entries)
	}
	if got, err := w.entries.Get(ctx, e.ID); err != nil || len(got.Repairs) != 1 {
		t.Fatalf("the record must stay: %v", err)
	}
	if _, _, err := w.lifecycle.DecideRepair(ctx, "rep_nope", service.DecisionInput{Decision: "approved"}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("unknown repair: %v", err)
	}
	if _, _, err := w.lifecycle.DecideRepair(ctx, rep.ID, service.DecisionInput{Decision: "maybe"}); !errors.Is(err, policy.ErrInvalidDecision) {
		t.Fatalf("bad decision: %v", err)
	}
}
