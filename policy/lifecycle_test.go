package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// Scenario suite of the lifecycle rules on the bundled catalogue, with
// exact dates (China Standard Time). Each scenario asserts the answer
// before, during and after the event it is about.

var (
	orgA    = SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	orgB    = SubjectID{Kind: KindOrganization, Value: identRefUSCC("91440300MA5DXXXX0")}
	personL = SubjectID{Kind: KindPerson, Value: identRefResident("11010519800101001")}
	personM = SubjectID{Kind: KindPerson, Value: identRefResident("11010519800101002")}
)

func bundledCat(t testing.TB) *Catalog {
	t.Helper()
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listed prepares an entry on list for subject, published at pub.
func listed(t testing.TB, c *Catalog, id, list string, s SubjectID, pub time.Time, persons ...ResponsiblePerson) Entry {
	t.Helper()
	e, err := c.PrepareEntry(Entry{
		ID: id, Subject: s, List: list, OriginatingDepartment: "发起部门", Reason: "失信事由", LegalBasis: "依据",
		DecidedAt: pub, PublishedAt: pub, ResponsiblePersons: persons, CreatedAt: pub, UpdatedAt: pub, Version: 1,
	})
	if err != nil {
		t.Fatalf("prepare %s: %v", id, err)
	}
	return e
}

// answer is the decision in short: outcome and "measure:status" strings.
type answer struct {
	outcome  Outcome
	measures []string
	statuses map[string]EntryStatus
}

func decideAt(t testing.TB, c *Catalog, s SubjectID, action string, entries []Entry, when time.Time) answer {
	t.Helper()
	return decideIn(t, c, CheckContext{}, s, action, entries, when)
}

// decideIn is decideAt for a caller in a region (and industry): local
// measures apply only there.
func decideIn(t testing.TB, c *Catalog, cc CheckContext, s SubjectID, action string, entries []Entry, when time.Time) answer {
	t.Helper()
	d, err := Decide(c, Query{Subject: s, Action: action, At: when, Context: cc}, entries)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{outcome: d.Outcome, statuses: map[string]EntryStatus{}}
	for _, m := range d.Measures {
		a.measures = append(a.measures, m.Measure.ID+":"+string(m.Status))
	}
	for _, f := range d.Findings {
		a.statuses[f.Entry.ID] = f.Status
	}
	return a
}

func (a answer) has(m string) bool { return slices.Contains(a.measures, m) }

func wantRule(t *testing.T, err error, sentinel error, rule string) {
	t.Helper()
	var re *RuleError
	if !errors.As(err, &re) || !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want a RuleError wrapping %v", err, sentinel)
	}
	if re.Rule != rule {
		t.Fatalf("rule %q, want %q (%v)", re.Rule, rule, err)
	}
}

// An objection filed on 2026-03-02 and rejected ten days later: measures
// are absent while it is open, present after, and the validity end moves
// later by the ten days of suspension.
func TestScenarioObjectionRejected(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 1, 5, 0)
	e := listed(t, c, "e1", "safety_production_blacklist", orgA, pub)
	if want := at8(2027, 1, 5, 0); !e.ValidUntil.Equal(want) {
		t.Fatalf("valid until %s, want %s", e.ValidUntil, want)
	}
	filed, rejected := at8(2026, 3, 2, 10), at8(2026, 3, 12, 10)

	before := decideAt(t, c, orgA, "government_procurement", []Entry{e}, filed.Add(-time.Hour))
	if before.outcome != OutcomeRestrict || !before.has("sp-18-procurement:applied") {
		t.Fatalf("before: %+v", before)
	}

	e, err := c.FileObjection(e, "obj1", FiledByOriginatingDepartment, ApplicationInput{Grounds: "事故责任认定有误", EvidenceRefs: []string{"复核申请书"}}, filed)
	if err != nil {
		t.Fatal(err)
	}
	// 15 working days from Monday 2026-03-02: due by the end of Monday 2026-03-23.
	if o := e.OpenObjection(); o == nil || !o.DueAt.Equal(at8(2026, 3, 24, 0)) {
		t.Fatalf("objection due %v, want 2026-03-24 00:00 CST", e.Objections)
	}
	during := decideAt(t, c, orgA, "government_procurement", []Entry{e}, at8(2026, 3, 5, 12))
	if during.outcome != OutcomeClear || !during.has("sp-18-procurement:suspended") || during.has("sp-18-procurement:applied") {
		t.Fatalf("during: %+v", during)
	}
	if during.statuses["e1"] != StatusUnderObjection {
		t.Fatalf("during: status %v", during.statuses)
	}
	if _, err := c.FileObjection(e, "obj2", FiledByAdministrator, ApplicationInput{Grounds: "再次异议"}, at8(2026, 3, 6, 0)); !errors.Is(err, ErrObjectionOpen) {
		t.Fatalf("second open objection: %v", err)
	}

	e, err = c.DecideObjection(e, "obj1", ObjectionDecision{Decision: DecisionRejected, Note: "核实无误"}, rejected)
	if err != nil {
		t.Fatal(err)
	}
	e, err = c.PrepareEntry(e) // the service re-applies the list rule after every change
	if err != nil {
		t.Fatal(err)
	}
	after := decideAt(t, c, orgA, "government_procurement", []Entry{e}, rejected)
	if after.outcome != OutcomeRestrict || !after.has("sp-18-procurement:applied") {
		t.Fatalf("after: %+v", after)
	}
	// "联合惩戒和'黑名单'管理的期限为1年,自公布之日起计算" (篇十二 第六条): the
	// suspension does not move the end (篇二 (三)2's counting on from the
	// rejection is an unplaced text's; TestObjectionExtendsValidityWhereTheListSaysSo).
	if want := at8(2027, 1, 5, 0); !e.ValidUntil.Equal(want) {
		t.Fatalf("valid until %s after a 10-day suspension, want %s", e.ValidUntil.In(cst), want)
	}
	if st := e.StatusAt(at8(2027, 1, 10, 0)); st == StatusActive {
		t.Fatalf("2027-01-10: %s, want the year from publication over", st)
	}
	if _, err := c.DecideObjection(e, "obj1", ObjectionDecision{Decision: DecisionUpheld}, rejected); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("decided twice: %v", err)
	}
}

// An upheld objection revokes the entry from the decision, with the cause
// recorded; before it is decided, measures are suspended.
func TestScenarioObjectionUpheld(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "e1", "court_dishonest_debtor", personL, at8(2026, 1, 5, 0))
	e, err := c.FileObjection(e, "obj1", FiledByAdministrator, ApplicationInput{Grounds: "已履行完毕"}, at8(2026, 4, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	if a := decideAt(t, c, personL, "air_travel", []Entry{e}, at8(2026, 4, 2, 0)); a.outcome != OutcomeClear || len(a.measures) == 0 {
		t.Fatalf("during: %+v", a)
	}
	upheld := at8(2026, 4, 20, 9)
	e, err = c.DecideObjection(e, "obj1", ObjectionDecision{Decision: DecisionUpheld, Note: "信息有误"}, upheld)
	if err != nil {
		t.Fatal(err)
	}
	if e.StatusAt(upheld) != StatusRevoked || e.RevocationCause == nil || e.RevocationCause.ObjectionID != "obj1" {
		t.Fatalf("upheld: status %s cause %+v", e.StatusAt(upheld), e.RevocationCause)
	}
	if a := decideAt(t, c, personL, "air_travel", []Entry{e}, upheld); a.outcome != OutcomeClear || len(a.measures) != 0 {
		t.Fatalf("after: %+v", a)
	}
	// Before the objection, the measures applied.
	if a := decideAt(t, c, personL, "air_travel", []Entry{e}, at8(2026, 3, 1, 0)); a.outcome == OutcomeClear {
		t.Fatalf("before: %+v", a)
	}
	// Bad decisions are refused.
	for _, d := range []ObjectionDecision{{Decision: "maybe"}, {Decision: DecisionRejected, Remedy: RemedyRevoked}, {Decision: DecisionUpheld, Remedy: "forget"}} {
		if _, err := c.DecideObjection(e, "obj1", d, upheld); !errors.Is(err, ErrInvalidDecision) {
			t.Errorf("%+v: %v", d, err)
		}
	}
}

// An objection upheld with a correction keeps the entry: measures resume,
// and Nanning's "有效期为1年。失信认定结果有效期届满,失信惩戒措施同时停止执行"
// (篇四 第十四条) keeps the year from publication.
func TestScenarioObjectionCorrected(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "e1", "nanning_black", orgB, at8(2026, 5, 6, 0))
	e, _ = c.FileObjection(e, "o", FiledByAdministrator, ApplicationInput{Grounds: "认定事实部分有误"}, at8(2026, 6, 1, 0))
	e, err := c.DecideObjection(e, "o", ObjectionDecision{Decision: DecisionUpheld, Remedy: RemedyCorrected, Note: "更正失信事由"}, at8(2026, 6, 8, 0))
	if err != nil {
		t.Fatal(err)
	}
	e, _ = c.PrepareEntry(e)
	if e.StatusAt(at8(2026, 6, 8, 0)) != StatusActive || !e.ValidUntil.Equal(at8(2027, 5, 6, 0)) {
		t.Fatalf("corrected: %s until %s", e.StatusAt(at8(2026, 6, 8, 0)), e.ValidUntil.In(cst))
	}
}

// history is one subject's violation records and the entries derived from
// them, kept as the service keeps them, for the scenarios below.
type history struct {
	t       *testing.T
	c       *Catalog
	records []ViolationRecord
	entries []Entry
}

// record prepares v, derives from it as of its recording time (entry id
// "ent-" + v.ID), and applies the derivation: the entries it closes are
// replaced, the one it lists is added.
func (h *history) record(v ViolationRecord) Derived {
	h.t.Helper()
	r, err := h.c.PrepareViolation(v)
	if err != nil {
		h.t.Fatal(err)
	}
	h.records = append(h.records, r)
	d, err := h.c.Derive(r, h.records, h.entries, "ent-"+v.ID, r.RecordedAt)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, ch := range d.Closed {
		h.entries[slices.IndexFunc(h.entries, func(e Entry) bool { return e.ID == ch.Entry.ID })] = ch.Entry
	}
	if d.New != nil {
		h.entries = append(h.entries, *d.New)
	}
	return d
}

// The third same-item penalty of a cycle tips the subject onto the urban
// management black list; the second one had put it on the general list.
func TestScenarioThirdSameItemPenaltyBlackLists(t *testing.T) {
	c := bundledCat(t)
	h := &history{t: t, c: c}
	record := func(id, item string, decided time.Time) Derived {
		t.Helper()
		return h.record(ViolationRecord{ID: id, Subject: orgB, Item: item, DecidedAt: decided, RecordedAt: decided.Add(time.Hour), Department: "市城管局", Reference: "城管罚字" + id})
	}
	d1 := record("r1", "um-g-10", at8(2026, 3, 3, 10))
	if d1.New != nil || d1.Standing.Points != 2 {
		t.Fatalf("first act: %+v", d1)
	}
	before := decideAt(t, c, orgB, "supervision", h.entries, at8(2026, 3, 4, 0))
	if before.outcome != OutcomeClear {
		t.Fatalf("2 points is no list: %+v", before)
	}
	d2 := record("r2", "um-g-10", at8(2026, 4, 7, 10))
	if d2.New == nil || d2.New.List != "urban_management_general" || d2.Standing.Points != 4 {
		t.Fatalf("second act: %+v", d2)
	}
	during := decideAt(t, c, orgB, "supervision", h.entries, at8(2026, 4, 8, 0))
	if during.outcome != OutcomeReference || !during.has("ug-01-interview:applied") {
		t.Fatalf("general list: %+v", during)
	}
	d3 := record("r3", "um-g-10", at8(2026, 5, 12, 10))
	if d3.New == nil || d3.New.List != "urban_management_black" || d3.Standing.Points != 12 {
		t.Fatalf("third same-item act: %+v", d3.Standing)
	}
	der := d3.New.Derivation
	if der.Rule != "urban_management.levels[2]" || !slices.Equal(der.Records, []string{"r1", "r2", "r3"}) || der.Points != 12 {
		t.Fatalf("trail %+v", der)
	}
	if !slices.ContainsFunc(der.Trail, func(s string) bool {
		return s == "cycle 2026: item um-g-10 punished 3 times → 12 points (篇十三 第六条(二))"
	}) {
		t.Fatalf("trail does not name the same-item rule: %q", der.Trail)
	}
	// The general entry is superseded, with the rule recorded.
	if len(d3.Closed) != 1 || d3.Closed[0].Entry.ID != "ent-r2" || d3.Closed[0].Entry.RevocationCause.EntryID != "ent-r3" {
		t.Fatalf("closed %+v", d3.Closed)
	}
	// The black list carries its publication and push (篇十三 第七条(五); its own
	// memorandum is not in the sources); the general list's interview no longer applies.
	after := decideAt(t, c, orgB, "public_display", h.entries, at8(2026, 5, 13, 0))
	if after.outcome != OutcomeReference || !after.has("ub-02-publication:applied") {
		t.Fatalf("black list: %+v", after)
	}
	if sup := decideAt(t, c, orgB, "supervision", h.entries, at8(2026, 5, 13, 0)); sup.has("ug-01-interview:applied") {
		t.Fatalf("black list, supervision: %+v", sup)
	}
	// Black validity: 5 years from publication (第十六条).
	if want := time.Date(2031, 5, 12, 3, 0, 0, 0, time.UTC); !d3.New.ValidUntil.Equal(want) {
		t.Fatalf("valid until %s, want %s", d3.New.ValidUntil, want)
	}
	// A fourth act changes nothing: already on the top level.
	if d4 := record("r4", "um-g-01", at8(2026, 6, 1, 10)); d4.New != nil {
		t.Fatalf("fourth act derived %+v", d4.New)
	}
}

// A yellow-list subject with a new general act within its period becomes
// black although its points (10) are below the black threshold (12).
func TestScenarioYellowPlusNewActBecomesBlack(t *testing.T) {
	c := bundledCat(t)
	h := &history{t: t, c: c}
	for i, item := range []string{"um-g-01", "um-g-02", "um-g-03", "um-g-04", "um-g-05"} {
		id := fmt.Sprintf("r%d", i+1)
		decided := at8(2026, time.Month(2+i), 10, 10)
		d := h.record(ViolationRecord{ID: id, Subject: personM, Item: item, DecidedAt: decided, RecordedAt: decided, Department: "区城管局", Reference: id})
		switch i {
		case 3: // 8 points: yellow
			if d.New == nil || d.New.List != "urban_management_yellow" {
				t.Fatalf("fourth act: %+v", d)
			}
			if a := decideAt(t, c, personM, "supervision", h.entries, decided); a.outcome != OutcomeStrictReview || !a.has("uy-02-more-inspections:applied") {
				t.Fatalf("yellow: %+v", a)
			}
		case 4: // 10 points, but the yellow rule escalates
			if d.Standing.Points != 10 || d.New == nil || d.New.List != "urban_management_black" {
				t.Fatalf("fifth act: points %d new %+v", d.Standing.Points, d.New)
			}
			der := d.New.Derivation
			if der.Rule != "urban_management_yellow.escalate" || der.FromEntry != "ent-r4" || !slices.Equal(der.Records, []string{"r5"}) {
				t.Fatalf("trail %+v", der)
			}
			if a := decideAt(t, c, personM, "public_display", h.entries, decided); !a.has("ub-02-publication:applied") {
				t.Fatalf("after escalation: %+v", a)
			}
			if a := decideAt(t, c, personM, "supervision", h.entries, decided); a.has("uy-02-more-inspections:applied") {
				t.Fatalf("after escalation, supervision: %+v", a)
			}
			if a := decideAt(t, c, personM, "public_display", h.entries, decided.Add(-time.Second)); a.has("ub-02-publication:applied") {
				t.Fatalf("before escalation: %+v", a)
			}
		}
	}
}

// Points below the general threshold are cleared at the end of the
// calendar-year cycle; points at or above it carry over.
func TestScenarioUrbanCycleReset(t *testing.T) {
	c := bundledCat(t)
	rec := func(id, item string, decided time.Time) ViolationRecord {
		r, err := c.PrepareViolation(ViolationRecord{ID: id, Subject: orgA, Item: item, DecidedAt: decided, RecordedAt: decided, Department: "d", Reference: id})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	one := []ViolationRecord{rec("a1", "um-g-01", at8(2026, 12, 30, 9)), rec("a2", "um-g-02", at8(2027, 1, 4, 9))}
	st, _ := c.Standing("urban_management", one, at8(2027, 1, 5, 0))
	if st.Points != 2 || st.Level != "" || !slices.Equal(st.Records, []string{"a2"}) {
		t.Fatalf("2 points at the end of 2026 are cleared: %+v", st)
	}
	// The cycle is the calendar year in China: 2026-12-31 20:00 UTC is already 2027.
	st, _ = c.Standing("urban_management", []ViolationRecord{rec("b0", "um-g-01", time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC))}, at8(2027, 1, 2, 0))
	if st.Points != 2 {
		t.Fatalf("zone of the cycle: %+v", st)
	}
	two := []ViolationRecord{rec("b1", "um-g-01", at8(2026, 6, 1, 9)), rec("b2", "um-g-02", at8(2026, 7, 1, 9)), rec("b3", "um-g-03", at8(2027, 2, 1, 9))}
	st, _ = c.Standing("urban_management", two, at8(2027, 2, 2, 0))
	if st.Points != 6 || st.Level != "urban_management_general" || len(st.Records) != 3 {
		t.Fatalf("4 points carry over: %+v", st)
	}
	// Any serious item is 12 points at once.
	st, _ = c.Standing("urban_management", []ViolationRecord{rec("s1", "um-s-05", at8(2026, 6, 1, 9))}, at8(2026, 6, 2, 0))
	if st.Points != 12 || st.Level != "urban_management_black" {
		t.Fatalf("serious item: %+v", st)
	}
}

// Nanning: 1/3/6 points over a rolling year; ≥10 yellow, ≥20 its "red"
// middle list, ≥30 black; records older than a year no longer count.
func TestScenarioNanningThresholds(t *testing.T) {
	c := bundledCat(t)
	h := &history{t: t, c: c}
	var lists []string
	add := func(id, item string, decided time.Time) Derived {
		t.Helper()
		d := h.record(ViolationRecord{ID: id, Subject: personL, Item: item, DecidedAt: decided, RecordedAt: decided, Department: "南宁市城管局", Reference: id})
		if d.New != nil {
			lists = append(lists, d.New.List)
		}
		return d
	}
	day := at8(2026, 1, 5, 9)
	for i := range 5 { // 5 × 6 = 30 points in five weeks
		d := add(fmt.Sprintf("g%d", i), "nn-grave", day.AddDate(0, 0, 7*i))
		want := map[int]int{0: 6, 1: 12, 2: 18, 3: 24, 4: 30}[i]
		if d.Standing.Points != want {
			t.Fatalf("after %d grave acts: %d points, want %d", i+1, d.Standing.Points, want)
		}
	}
	if !slices.Equal(lists, []string{"nanning_yellow", "nanning_red", "nanning_black"}) {
		t.Fatalf("derived lists %v", lists)
	}
	black := h.entries[len(h.entries)-1]
	if !black.ValidUntil.Equal(black.PublishedAt.AddDate(1, 0, 0)) {
		t.Fatalf("Nanning lists are valid 1 year: %s → %s", black.PublishedAt, black.ValidUntil)
	}
	// Nanning's measures bind Nanning's authorities only (篇四 第二十四条).
	nanning := CheckContext{Region: "450100"}
	a := decideIn(t, c, nanning, personL, "supervision", h.entries, day.AddDate(0, 1, 0))
	if !a.has("nn-b-01-key-inspection:applied") || a.has("nn-y-01-key-inspection:applied") {
		t.Fatalf("black: %+v", a)
	}
	// A year after the first act, it has left the window.
	st, _ := c.Standing("nanning_urban_management", h.records, day.AddDate(1, 0, 1))
	if st.Points != 24 || st.Level != "nanning_red" {
		t.Fatalf("rolling window: %+v", st)
	}
	// A year after publication the black entry has expired.
	if a := decideAt(t, c, personL, "supervision", h.entries, black.PublishedAt.AddDate(1, 0, 0)); a.outcome != OutcomeClear {
		t.Fatalf("expired: %+v", a)
	}
}

// Repair of an urban-management black listing: refused within the lock
// period with the rule named, refused before review, approved after; the
// approved repair ends measures but the record stays.
func TestScenarioRepairLocks(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 1, 10, 0)
	e := listed(t, c, "e1", "urban_management_black", orgA, pub)
	h := RepairHistory{Entries: []Entry{e}}
	in := ApplicationInput{Grounds: "已纠正并消除影响,作出信用承诺", EvidenceRefs: []string{"整改报告"}}

	_, err := c.ApplyRepair(e, "rep1", in, h, at8(2026, 6, 1, 9))
	wantRule(t, err, ErrRepairNotAllowed, "urban_management_black.repair.locks[0]")

	applied := at8(2027, 1, 11, 9)
	e, err = c.ApplyRepair(e, "rep1", in, h, applied)
	if err != nil {
		t.Fatal(err)
	}
	// 15 working days from Monday 2027-01-11 (weekends only: 2027 is not covered).
	if r := e.Repairs[0]; r.State != StateApplied || !r.DueAt.Equal(at8(2027, 2, 2, 0)) {
		t.Fatalf("repair %+v", r)
	}
	_, err = c.DecideRepair(e, "rep1", true, "", h, applied.Add(time.Hour))
	wantRule(t, err, ErrWrongState, "urban_management_black.repair.requires_review")
	e, err = c.ReviewRepair(e, "rep1", "整改到位", "approve", applied.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	approved := at8(2027, 1, 20, 9)
	before := decideAt(t, c, orgA, "public_display", []Entry{e}, approved.Add(-time.Second))
	if before.outcome != OutcomeReference {
		t.Fatalf("before approval: %+v", before)
	}
	e, err = c.DecideRepair(e, "rep1", true, "同意修复", h, approved)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.StatusAt(approved); st != StatusRepaired {
		t.Fatalf("status %s", st)
	}
	for _, action := range []string{"supervision", "public_display"} {
		if a := decideAt(t, c, orgA, action, []Entry{e}, approved); a.outcome != OutcomeClear || len(a.measures) != 0 {
			t.Fatalf("after repair, %s: %+v", action, a)
		}
	}
	if _, err := c.FileObjection(e, "o", FiledByAdministrator, ApplicationInput{Grounds: "x"}, approved.Add(time.Hour)); !errors.Is(err, ErrEntryNotInForce) {
		t.Fatalf("objection on a repaired entry: %v", err)
	}
}

// A repair applied for and then overtaken by the entry's revocation can
// no longer be reviewed or approved (entry_revoked, not a review rule);
// it can still be refused, which closes it.
// A revocation closes a repair still open (closed_by_revocation, at the
// revocation, the note naming it): nothing is left to repair, and nothing
// is left pending in the administrator's queue to refuse by hand. An
// entry revoked before revocations closed applications, its repair still
// open, can still have that repair refused, never approved.
func TestRepairOnRevokedEntry(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "e1", "urban_management_black", orgA, at8(2026, 1, 10, 0))
	h := RepairHistory{Entries: []Entry{e}}
	applied := at8(2027, 1, 11, 9)
	e, err := c.ApplyRepair(e, "rep1", ApplicationInput{Grounds: "已整改"}, h, applied)
	if err != nil {
		t.Fatal(err)
	}
	open := e
	revoked := applied.Add(24 * time.Hour)
	e = Revoke(e, "发起部门撤销", revoked)
	if r := e.Repairs[0]; r.State != StateClosedByRevocation || r.DecidedAt == nil || !r.DecidedAt.Equal(revoked) ||
		!strings.Contains(r.Note, "revoked at") || !strings.Contains(r.Note, "发起部门撤销") {
		t.Fatalf("repair after the revocation: %+v", r)
	}
	later := revoked.Add(time.Hour)
	if _, err := c.ReviewRepair(e, "rep1", "整改到位", "approve", later); !errors.Is(err, ErrWrongState) {
		t.Fatalf("review of a closed repair: %v", err)
	}
	if _, err := c.DecideRepair(e, "rep1", true, "", h, later); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("approval of a closed repair: %v", err)
	}
	if _, err := c.DecideRepair(e, "rep1", false, "名单已撤销,无需修复", h, later); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("refusal of a closed repair: %v", err)
	}
	if _, err := c.ApplyRepair(e, "rep2", ApplicationInput{Grounds: "已整改"}, h, later); !errors.Is(err, ErrEntryRevoked) {
		t.Fatalf("a new repair on the revoked entry: %v", err)
	}

	// Revoked as stored before: the repair is open on a revoked entry.
	legacy := open
	legacy.RevokedAt, legacy.RevocationReason = &revoked, "发起部门撤销"
	if _, err := c.ReviewRepair(legacy, "rep1", "整改到位", "approve", later); !errors.Is(err, ErrEntryRevoked) {
		t.Fatalf("review on a revoked entry: %v", err)
	}
	if _, err := c.DecideRepair(legacy, "rep1", true, "", h, later); !errors.Is(err, ErrEntryRevoked) {
		t.Fatalf("approval on a revoked entry: %v", err)
	}
	if legacy, err = c.DecideRepair(legacy, "rep1", false, "名单已撤销,无需修复", h, later); err != nil || legacy.Repairs[0].State != StateRefused {
		t.Fatalf("refusal on a revoked entry: %v %+v", err, legacy.Repairs)
	}
}

func TestScenarioRepairSecondListingAndParticularlySerious(t *testing.T) {
	c := bundledCat(t)
	first := listed(t, c, "e1", "urban_management_black", orgA, at8(2024, 3, 1, 0))
	first.RevokedAt, first.RevocationReason = ptrTime(at8(2025, 3, 1, 0)), "已修复"
	second := listed(t, c, "e2", "urban_management_black", orgA, at8(2026, 2, 2, 0))
	h := RepairHistory{Entries: []Entry{first, second}}
	in := ApplicationInput{Grounds: "已整改"}
	_, err := c.ApplyRepair(second, "r", in, h, at8(2027, 6, 1, 0))
	wantRule(t, err, ErrRepairNotAllowed, "urban_management_black.repair.locks[1]")
	if _, err := c.ApplyRepair(second, "r", in, h, at8(2029, 2, 2, 0)); err != nil {
		t.Fatalf("after 3 years: %v", err)
	}
	// A first listing revoked because an objection was upheld was an error: it does not count.
	first.RevocationCause = &Cause{Rule: "objection.upheld", ObjectionID: "o"}
	if _, err := c.ApplyRepair(second, "r", in, RepairHistory{Entries: []Entry{first, second}}, at8(2027, 6, 1, 0)); err != nil {
		t.Fatalf("erroneous first listing counted: %v", err)
	}
	grave := listed(t, c, "e3", "urban_management_black", orgB, at8(2020, 1, 1, 0))
	grave.ParticularlySerious = true
	_, err = c.ApplyRepair(grave, "r", in, RepairHistory{Entries: []Entry{grave}}, at8(2024, 6, 1, 0))
	wantRule(t, err, ErrRepairNotAllowed, "urban_management_black.repair.never_if_particularly_serious")
	// A list without repair rules names that.
	debtor := listed(t, c, "e4", "court_dishonest_debtor", orgB, at8(2026, 1, 1, 0))
	_, err = c.ApplyRepair(debtor, "r", in, RepairHistory{}, at8(2026, 6, 1, 0))
	wantRule(t, err, ErrRepairNotAllowed, "court_dishonest_debtor.repair")
}

// Nanning: a repair applied for while the subject had no new record is
// refused at decision time once a new record has come in.
func TestScenarioRepairRefusedOnNewRecord(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "e1", "nanning_yellow", personL, at8(2026, 3, 2, 0))
	applied := at8(2026, 5, 4, 9)
	e, err := c.ApplyRepair(e, "rep", ApplicationInput{Grounds: "志愿服务证明"}, RepairHistory{}, applied)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Repairs[0].DueAt.Equal(at8(2026, 5, 24, 9)) {
		t.Fatalf("20 calendar days: %s", e.Repairs[0].DueAt.In(cst))
	}
	rec, _ := c.PrepareViolation(ViolationRecord{ID: "vr9", Subject: personL, Item: "nn-minor", DecidedAt: at8(2026, 5, 6, 9), RecordedAt: at8(2026, 5, 6, 10), Department: "d", Reference: "r"})
	_, err = c.DecideRepair(e, "rep", true, "", RepairHistory{Records: []ViolationRecord{rec}}, at8(2026, 5, 10, 9))
	wantRule(t, err, ErrRepairNotAllowed, "nanning_yellow.repair.requires_no_new_records")
	if _, err := c.DecideRepair(e, "rep", false, "", RepairHistory{}, at8(2026, 5, 10, 9)); !errors.Is(err, ErrInvalidDecision) {
		t.Fatalf("refusal without reasons: %v", err)
	}
	e, err = c.DecideRepair(e, "rep", false, "期间新增不良信用记录", RepairHistory{}, at8(2026, 5, 10, 9))
	if err != nil || e.Repairs[0].State != StateRefused || e.StatusAt(at8(2026, 5, 11, 0)) != StatusActive {
		t.Fatalf("refused: %v %+v", err, e.Repairs)
	}
}

// Entering a black list whose rules say so removes the subject from red
// lists (a placed city's rule like 篇七 第六条: cityCat), recorded; a red
// entry is refused while the black one is in force.
func TestScenarioBlackListRemovesRed(t *testing.T) {
	c := cityCat(t)
	red := listed(t, c, "red1", "honest_exemplar_redlist", orgA, at8(2025, 6, 1, 0))
	blackPub := at8(2026, 4, 1, 0)
	black := listed(t, c, "blk1", "city_safety_blacklist", orgA, blackPub)

	before := decideAt(t, c, orgA, "public_tendering", []Entry{red}, blackPub.Add(-time.Hour))
	if before.outcome != OutcomeIncentive {
		t.Fatalf("before: %+v", before)
	}
	changes, err := c.OnEnter(black, []Entry{red})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Entry.ID != "red1" {
		t.Fatalf("changes %+v", changes)
	}
	red = changes[0].Entry
	if red.RevocationCause == nil || red.RevocationCause.Rule != "city_safety_blacklist.on_enter_remove_from_kinds" || red.RevocationCause.EntryID != "blk1" || !red.RevokedAt.Equal(blackPub) {
		t.Fatalf("removal not recorded: %+v at %v", red.RevocationCause, red.RevokedAt)
	}
	if a := decideAt(t, c, orgA, "public_tendering", []Entry{red, black}, blackPub.Add(-time.Hour)); a.outcome != OutcomeIncentive {
		t.Fatalf("just before the black publication the red entry still counts: %+v", a)
	}
	after := decideAt(t, c, orgA, "public_tendering", []Entry{red, black}, blackPub)
	if after.outcome != OutcomeRestrict || slices.ContainsFunc(after.measures, func(m string) bool { return m[:4] == "red-" }) {
		t.Fatalf("after: %+v", after)
	}
	red2 := listed(t, c, "red2", "honest_exemplar_redlist", orgA, at8(2026, 5, 1, 0))
	_, err = c.OnEnter(red2, []Entry{black})
	wantRule(t, err, ErrCrossListConflict, "city_safety_blacklist.on_enter_remove_from_kinds")
	// Another organisation's red entry is untouched.
	other := listed(t, c, "red3", "honest_exemplar_redlist", orgB, at8(2025, 6, 1, 0))
	if ch, _ := c.OnEnter(black, []Entry{other}); len(ch) != 0 {
		t.Fatalf("other subject touched: %+v", ch)
	}
}

// An objection upheld against the black entry voids it, and the red entry
// its entering removed comes back (篇三(十六) 恢复其信誉; 篇十三 第十一条),
// unless another black entry of the subject removes it in its turn.
func TestScenarioVoidedBlackEntryGivesBackRed(t *testing.T) {
	c := cityCat(t)
	red := listed(t, c, "red1", "honest_exemplar_redlist", orgA, at8(2025, 6, 1, 0))
	blackPub := at8(2026, 4, 1, 0)
	black := listed(t, c, "blk1", "city_safety_blacklist", orgA, blackPub)
	changes, err := c.OnEnter(black, []Entry{red})
	if err != nil || len(changes) != 1 {
		t.Fatalf("on enter: %+v %v", changes, err)
	}
	red = changes[0].Entry

	// Not voided (rejected, or revoked by a department): nothing reopens.
	if ch := c.OnVoid(black, []Entry{red, black}); len(ch) != 0 {
		t.Fatalf("a black entry in force reopened %+v", ch)
	}
	ended := black
	endAt := at8(2026, 5, 1, 0)
	ended.RevokedAt, ended.RevocationReason = &endAt, "法院决定删除"
	if ch := c.OnVoid(ended, []Entry{red, ended}); len(ch) != 0 {
		t.Fatalf("a revoked, not voided, black entry reopened %+v", ch)
	}

	upheld := at8(2026, 4, 20, 0)
	black.Objections = []Objection{{ID: "o1", FiledAt: at8(2026, 4, 10, 0)}}
	voided, err := c.DecideObjection(black, "o1", ObjectionDecision{Decision: DecisionUpheld}, upheld)
	if err != nil || !voided.Voided() {
		t.Fatalf("decide: %v voided %v", err, voided.Voided())
	}
	other := listed(t, c, "red9", "honest_exemplar_redlist", orgB, at8(2025, 6, 1, 0))
	ch := c.OnVoid(voided, []Entry{red, voided, other})
	if len(ch) != 1 || ch[0].Entry.ID != "red1" || ch[0].Entry.RevokedAt != nil || ch[0].Entry.RevocationCause != nil {
		t.Fatalf("reopened %+v", ch)
	}
	if a := decideAt(t, c, orgA, "public_tendering", []Entry{ch[0].Entry, voided}, upheld.Add(time.Hour)); a.outcome != OutcomeIncentive {
		t.Fatalf("after the objection was upheld: %+v", a)
	}

	// A second black entry, entered after the first had removed the red
	// one, removes it once it is reopened, from its own publication.
	secondPub := at8(2026, 4, 15, 0)
	second := listed(t, c, "blk2", "city_safety_blacklist", orgA, secondPub)
	ch = c.OnVoid(voided, []Entry{red, voided, second})
	if len(ch) != 1 || ch[0].Entry.RevokedAt == nil || !ch[0].Entry.RevokedAt.Equal(secondPub) || ch[0].Entry.RevocationCause.EntryID != "blk2" {
		t.Fatalf("with a second black entry: %+v", ch)
	}
}

// A key-attention subject with a new serious act is escalated to the black
// list (篇七 第七条); its key-attention entry is closed with the rule.
func TestScenarioKeyAttentionEscalates(t *testing.T) {
	c := bundledCat(t)
	ka := listed(t, c, "ka1", "safety_production_key_attention", orgA, at8(2026, 2, 2, 0),
		ResponsiblePerson{ID: personL.Value, Role: RoleSafetyHead})
	red := listed(t, c, "red1", "honest_exemplar_redlist", orgB, at8(2025, 6, 1, 0))
	entries := []Entry{ka, red}
	if a := decideAt(t, c, orgA, "supervision", entries, at8(2026, 3, 1, 0)); a.outcome != OutcomeStrictReview || !a.has("spk-01-supervision:applied") {
		t.Fatalf("key attention: %+v", a)
	}
	// A general act does not escalate.
	gen, _ := c.PrepareViolation(ViolationRecord{ID: "v1", Subject: orgA, Item: "sp-v-02-06", DecidedAt: at8(2026, 3, 2, 0), RecordedAt: at8(2026, 3, 3, 0), Department: "应急管理局", Reference: "1"})
	if d, err := c.Derive(gen, []ViolationRecord{gen}, entries, "n1", at8(2026, 3, 3, 0)); err != nil || d.New != nil {
		t.Fatalf("general act escalated: %+v %v", d.New, err)
	}
	when := at8(2026, 4, 9, 15)
	ser, _ := c.PrepareViolation(ViolationRecord{ID: "v2", Subject: orgA, Item: "sp-v-major-accident", DecidedAt: at8(2026, 4, 8, 0), RecordedAt: when, Department: "应急管理局", Reference: "2"})
	d, err := c.Derive(ser, []ViolationRecord{gen, ser}, entries, "blk", when)
	if err != nil || d.New == nil {
		t.Fatalf("serious act: %+v %v", d, err)
	}
	if d.New.List != "safety_production_blacklist" || d.New.Derivation.Rule != "safety_production_key_attention.escalate" || d.New.Derivation.FromEntry != "ka1" {
		t.Fatalf("new %+v", d.New.Derivation)
	}
	if len(d.New.ResponsiblePersons) != 1 || d.New.ResponsiblePersons[0].ID != personL.Value {
		t.Fatalf("responsible persons not carried: %+v", d.New.ResponsiblePersons)
	}
	if len(d.Closed) != 1 || d.Closed[0].Entry.ID != "ka1" || d.Closed[0].Entry.StatusAt(when) != StatusRevoked {
		t.Fatalf("closed %+v", d.Closed)
	}
	after := []Entry{d.Closed[0].Entry, red, *d.New}
	if a := decideAt(t, c, orgA, "government_procurement", after, when); a.outcome != OutcomeRestrict {
		t.Fatalf("after escalation: %+v", a)
	}
	// The safety head is reached through the organisation.
	// Through Jinan's coal-mine measures (篇十), for a Jinan coal caller.
	jinanCoal := CheckContext{Region: "370100", Industry: "coal_mining"}
	if a := decideIn(t, c, jinanCoal, personL, "supervision", after, when); !a.has("sp-p10-person-interview:applied") {
		t.Fatalf("safety head: %+v", a)
	}
}

// A court debtor's senior manager loses honours (篇三 三(七), 篇五(九) name
// 高级管理人员 there) but not credit: the bank-credit measure reaches the
// persons of 篇三(十一), 法定代表人、主要负责人和其他负有直接责任人员.
func TestScenarioSeniorManagerOfCourtDebtor(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 1, 15, 0)
	when := at8(2026, 6, 1, 0)
	for _, list := range []string{"court_dishonest_debtor", "serious_illegal_enterprise"} {
		e := listed(t, c, "e-"+list, list, orgA, pub,
			ResponsiblePerson{ID: personL.Value, Role: RoleLegalRepresentative},
			ResponsiblePerson{ID: personM.Value, Role: RoleSeniorManager})
		entries := []Entry{e}
		for _, action := range []string{"bank_credit", "insurance_premium"} {
			if a := decideAt(t, c, personM, action, entries, when); a.outcome != OutcomeClear {
				t.Errorf("%s: senior manager, %s: %+v", list, action, a)
			}
			if a := decideAt(t, c, personL, action, entries, when); a.outcome != OutcomeRestrict {
				t.Errorf("%s: legal representative, %s: %+v", list, action, a)
			}
		}
		if a := decideAt(t, c, personM, "honors", entries, when); a.outcome != OutcomeProhibit {
			t.Errorf("%s: senior manager, honours: %+v", list, a)
		}
	}
}

// 落实到人: a listed company's legal representative is prohibited from
// executive appointments for 3 years from the listing, through the company;
// the entry itself lasts longer.
func TestScenarioLegalRepresentativeExecutiveBan(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 1, 15, 0)
	e := listed(t, c, "sie1", "serious_illegal_enterprise", orgA, pub,
		ResponsiblePerson{ID: personL.Value, Role: RoleLegalRepresentative},
		ResponsiblePerson{ID: personM.Value, Role: RoleSeniorManager})
	entries := []Entry{e}

	if a := decideAt(t, c, personL, "executive_appointment", entries, pub.Add(-time.Second)); a.outcome != OutcomeClear {
		t.Fatalf("before listing: %+v", a)
	}
	d, err := Decide(c, Query{Subject: personL, Action: "executive_appointment", At: at8(2026, 6, 1, 0)}, entries)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeProhibit || len(d.Measures) != 1 {
		t.Fatalf("during: %+v", d)
	}
	m := d.Measures[0]
	if m.Measure.ID != "sie-12-executive-ban" || m.Via == nil || m.Via.Organization != orgA.Value || m.Via.Role != RoleLegalRepresentative {
		t.Fatalf("measure %s via %+v", m.Measure.ID, m.Via)
	}
	if m.Until == nil || !m.Until.Equal(at8(2029, 1, 15, 0)) {
		t.Fatalf("until %v, want 2029-01-15", m.Until)
	}
	// A senior manager is not banned from appointments, but loses honours.
	if a := decideAt(t, c, personM, "executive_appointment", entries, at8(2026, 6, 1, 0)); a.outcome != OutcomeClear {
		t.Fatalf("senior manager, appointment: %+v", a)
	}
	if a := decideAt(t, c, personM, "honors", entries, at8(2026, 6, 1, 0)); a.outcome != OutcomeProhibit || !a.has("sie-13-honors:applied") {
		t.Fatalf("senior manager, honours: %+v", a)
	}
	// After 3 years the ban ends; the entry (no validity) still restricts the company.
	after := at8(2029, 1, 15, 0)
	if a := decideAt(t, c, personL, "executive_appointment", entries, after); a.outcome != OutcomeClear {
		t.Fatalf("after 3 years: %+v", a)
	}
	if a := decideAt(t, c, orgA, "government_procurement", entries, after); a.outcome != OutcomeRestrict {
		t.Fatalf("company after 3 years: %+v", a)
	}
}

// A measure's own term outlives the entry's validity (篇四 第十四条 从其期限).
func TestScenarioMeasureTermOutlivesEntry(t *testing.T) {
	c := testCatalogWith(t, `
  - {id: m-term, list: black, actions: [executive_appointment], effect: prohibit, mandatory: true, applies_to: [person], roles: [legal_representative], term: {years: 3}, text: 三年内不得担任, legal_basis: 法, authority: 部, source: test}
`)
	e := entry("e1", "black", org, day0, c) // validity 1 year
	e.ResponsiblePersons = []ResponsiblePerson{{ID: person.Value, Role: RoleLegalRepresentative}}
	d, _ := Decide(c, Query{Subject: person, Action: "executive_appointment", At: day0.AddDate(2, 0, 0)}, []Entry{e})
	if d.Outcome != OutcomeProhibit || len(d.Findings) != 1 || d.Findings[0].Status != StatusExpired {
		t.Fatalf("2 years on: %+v", d)
	}
	if d, _ := Decide(c, Query{Subject: person, Action: "government_procurement", At: day0.AddDate(2, 0, 0)}, []Entry{e}); d.Outcome != OutcomeClear || len(d.Findings) != 0 {
		t.Fatalf("other actions of an expired entry: %+v", d)
	}
	if d, _ := Decide(c, Query{Subject: person, Action: "executive_appointment", At: day0.AddDate(3, 0, 0)}, []Entry{e}); d.Outcome != OutcomeClear {
		t.Fatalf("3 years on: %+v", d)
	}
}

// Exit by application (篇十二 第七条): the safety production black list
// does not lapse by itself; an application before the window is refused
// with the rule; an approved exit ends the entry at expiry.
func TestScenarioExitByApplication(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 1, 5, 0)
	e := listed(t, c, "e1", "safety_production_blacklist", orgA, pub)
	if !e.ExitByApplication {
		t.Fatal("the list's exit rule is not on the entry")
	}
	expiry := at8(2027, 1, 5, 0)
	if a := decideAt(t, c, orgA, "government_procurement", []Entry{e}, expiry.Add(48*time.Hour)); a.outcome != OutcomeRestrict || a.statuses["e1"] != StatusAwaitingExit {
		t.Fatalf("past expiry without exit: %+v", a)
	}
	in := ApplicationInput{Grounds: "管理期限内未发生新的失信行为"}
	_, err := c.ApplyExit(e, "x1", in, at8(2026, 10, 9, 0))
	wantRule(t, err, ErrExitNotAllowed, "safety_production_blacklist.exit.apply_within_working_days")
	// 2027 is not covered by the calendar: 30 weekdays before Tuesday 2027-01-05 open on Tuesday 2026-11-24.
	e2, err := c.ApplyExit(e, "x1", in, at8(2026, 11, 24, 9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyExit(e, "x1", in, at8(2026, 11, 23, 9)); err == nil {
		t.Fatal("a day before the window accepted")
	}
	e2, err = c.DecideExit(e2, "x1", true, "审核验收合格", at8(2026, 12, 20, 9))
	if err != nil {
		t.Fatal(err)
	}
	if a := decideAt(t, c, orgA, "government_procurement", []Entry{e2}, expiry.Add(-time.Second)); a.outcome != OutcomeRestrict {
		t.Fatalf("before expiry: %+v", a)
	}
	if a := decideAt(t, c, orgA, "government_procurement", []Entry{e2}, expiry); a.outcome != OutcomeClear {
		t.Fatalf("at expiry with an approved exit: %+v", a)
	}
	// An exit approved after expiry ends the entry at the approval.
	late, _ := c.ApplyExit(e, "x2", in, at8(2027, 1, 20, 9))
	late, _ = c.DecideExit(late, "x2", true, "", at8(2027, 2, 1, 9))
	if st := late.StatusAt(at8(2027, 1, 31, 0)); st != StatusAwaitingExit {
		t.Fatalf("before the late approval: %s", st)
	}
	if st := late.StatusAt(at8(2027, 2, 1, 9)); st != StatusExpired {
		t.Fatalf("at the late approval: %s", st)
	}
	// Lists without an exit rule lapse at expiry and take no applications.
	u := listed(t, c, "u1", "nanning_black", orgA, pub)
	if st := u.StatusAt(pub.AddDate(1, 0, 0)); st != StatusExpired {
		t.Fatalf("Nanning entry at 1 year: %s", st)
	}
	_, err = c.ApplyExit(u, "x", in, pub.AddDate(0, 11, 0))
	wantRule(t, err, ErrExitNotAllowed, "nanning_black.exit")
}

func TestApplicationInputLimits(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "e1", "nanning_black", orgA, at8(2026, 1, 5, 0))
	long := make([]byte, MaxTextLen+1)
	for i := range long {
		long[i] = 'x'
	}
	for name, in := range map[string]ApplicationInput{
		"no grounds":     {Grounds: "  "},
		"long grounds":   {Grounds: string(long)},
		"empty evidence": {Grounds: "g", EvidenceRefs: []string{""}},
		"many evidence":  {Grounds: "g", EvidenceRefs: make([]string, MaxEvidenceRefs+1)},
	} {
		if _, err := c.FileObjection(e, "o", FiledByAdministrator, in, at8(2026, 2, 1, 0)); !errors.Is(err, ErrInvalidApplication) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.FileObjection(e, "o", "the subject", ApplicationInput{Grounds: "g"}, at8(2026, 2, 1, 0)); !errors.Is(err, ErrInvalidApplication) {
		t.Errorf("filed_by: %v", err)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

// testCatalogWith is the decision tests' catalogue with extra measures.
func testCatalogWith(t testing.TB, measures string) *Catalog {
	t.Helper()
	c, err := LoadCatalog(mapFS(testCatalogYAML + measures))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mapFS(yaml string) fstest.MapFS {
	return fstest.MapFS{"test.yaml": {Data: []byte(yaml)}}
}

// BenchmarkDecideLifecycle is BenchmarkDecide with entries that carry a
// lifecycle: two decided objections (validity moved), a refused repair, an
// exit rule and a measure with its own term.
func BenchmarkDecideLifecycle(b *testing.B) {
	c := testCatalogWith(b, `
  - {id: m-term, list: black, actions: [government_procurement], effect: prohibit, mandatory: true, applies_to: [organization], term: {years: 3}, text: 三年内, legal_basis: 法, authority: 部, source: test}
`)
	black := entry("e1", "black", org, day0, c)
	d1, d2 := day0.AddDate(0, 0, 20), day0.AddDate(0, 0, 40)
	black.Objections = []Objection{
		{ID: "o1", FiledAt: day0.AddDate(0, 0, 10), DecidedAt: &d1, Decision: DecisionRejected},
		{ID: "o2", FiledAt: day0.AddDate(0, 0, 30), DecidedAt: &d2, Decision: DecisionRejected},
	}
	black.Repairs = []Repair{{ID: "r1", AppliedAt: d2, State: StateRefused, DecidedAt: &d2}}
	black.ExitByApplication = true
	entries := []Entry{black, entry("e2", "attention", org, day0, c), entry("e3", "red", org, day0, c)}
	at := day0.AddDate(0, 1, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, Query{Subject: org, Action: "government_procurement", At: at}, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// 落实到人: the legal representative of a dishonest judgment debtor company
// is restricted in high consumption through the company, for as long as the
// entry is in force and not while an objection is open.
func TestScenarioDebtorLegalRepresentativeConsumption(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 2, 2, 0)
	e := listed(t, c, "d1", "court_dishonest_debtor", orgB, pub, ResponsiblePerson{ID: personL.Value, Role: RoleLegalRepresentative})
	if a := decideAt(t, c, personL, "air_travel", []Entry{e}, pub.Add(-time.Second)); a.outcome != OutcomeClear {
		t.Fatalf("before: %+v", a)
	}
	d, _ := Decide(c, Query{Subject: personL, Action: "air_travel", At: pub.AddDate(0, 1, 0)}, []Entry{e})
	if d.Outcome == OutcomeClear || len(d.Measures) == 0 || d.Measures[0].Via == nil || d.Measures[0].Via.Organization != orgB.Value || d.Measures[0].Via.Role != RoleLegalRepresentative {
		t.Fatalf("during: %+v", d)
	}
	e, _ = c.FileObjection(e, "o", FiledByAdministrator, ApplicationInput{Grounds: "已履行"}, pub.AddDate(0, 2, 0))
	if a := decideAt(t, c, personL, "air_travel", []Entry{e}, pub.AddDate(0, 2, 1)); a.outcome != OutcomeClear || !a.has("court-air-travel:suspended") {
		t.Fatalf("under objection: %+v", a)
	}
	// Another person of the company, not named, is not reached.
	if a := decideAt(t, c, personM, "air_travel", []Entry{e}, pub.AddDate(0, 1, 0)); a.outcome != OutcomeClear || len(a.statuses) != 0 {
		t.Fatalf("unnamed person: %+v", a)
	}
}
