package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// An entry revoked while an objection against it is open closes the
// objection in the same change: decided at the revocation with
// closed_by_revocation and a note naming it, so that nothing is left
// pending on an entry nothing is left to verify of. Before the revocation
// the objection still suspended the measures: the past is unchanged.
func TestRevokeClosesOpenObjection(t *testing.T) {
	c := bundledCat(t)
	e := listed(t, c, "blk1", "safety_production_blacklist", orgA, at8(2026, 3, 2, 0))
	filed := at8(2026, 3, 10, 9)
	e, err := c.FileObjection(e, "o1", FiledByAdministrator, ApplicationInput{Grounds: "事故责任认定有误"}, filed)
	if err != nil {
		t.Fatal(err)
	}
	before := e
	revoked := at8(2026, 3, 12, 15)
	got := Revoke(e, "法院判决撤销处罚决定", revoked)

	if got.RevokedAt == nil || !got.RevokedAt.Equal(revoked) || got.RevocationReason != "法院判决撤销处罚决定" {
		t.Fatalf("revoked %v %q", got.RevokedAt, got.RevocationReason)
	}
	o := got.Objections[0]
	if o.DecidedAt == nil || !o.DecidedAt.Equal(revoked) || o.Decision != DecisionClosedByRevocation || o.Remedy != "" {
		t.Fatalf("objection after the revocation: %+v", o)
	}
	if !strings.Contains(o.Note, "revoked at 2026-03-12T07:00:00Z") || !strings.Contains(o.Note, "法院判决撤销处罚决定") {
		t.Fatalf("note does not name the revocation: %q", o.Note)
	}
	if got.OpenObjection() != nil {
		t.Fatal("an objection is still open on the revoked entry")
	}
	if before.Objections[0].DecidedAt != nil {
		t.Fatal("Revoke modified the caller's objections")
	}
	// Past states are what they were.
	for _, tc := range []struct {
		at   time.Time
		want EntryStatus
	}{
		{at8(2026, 3, 5, 0), StatusActive},
		{at8(2026, 3, 11, 0), StatusUnderObjection},
		{revoked.Add(-time.Second), StatusUnderObjection},
		{revoked, StatusRevoked},
		{at8(2026, 6, 1, 0), StatusRevoked},
	} {
		if s := got.StatusAt(tc.at); s != tc.want {
			t.Errorf("status at %s: %s, want %s", tc.at, s, tc.want)
		}
	}
	// Decided objections stay as decided.
	rejected := listed(t, c, "blk2", "safety_production_blacklist", orgA, at8(2026, 3, 2, 0))
	if rejected, err = c.FileObjection(rejected, "o2", FiledByAdministrator, ApplicationInput{Grounds: "g"}, filed); err != nil {
		t.Fatal(err)
	}
	if rejected, err = c.DecideObjection(rejected, "o2", ObjectionDecision{Decision: DecisionRejected, Note: "核实无误"}, filed.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	after := Revoke(rejected, "撤销", revoked)
	if o := after.Objections[0]; o.Decision != DecisionRejected || !o.DecidedAt.Equal(filed.Add(time.Hour)) || o.Note != "核实无误" {
		t.Fatalf("a decided objection changed: %+v", o)
	}
}

// A cross-list closure (entering the black list removes the red entry)
// closes the red entry's open objection at the closure; when the black
// entry is voided and the red one reopened, its objection is open again,
// never decided on its merits; a closure moved earlier moves the
// objection's closing with it.
func TestCloseAndReopenObjection(t *testing.T) {
	c := cityCat(t)
	red := listed(t, c, "red1", "honest_exemplar_redlist", orgA, at8(2025, 6, 1, 0))
	red, err := c.FileObjection(red, "ro", FiledByAdministrator, ApplicationInput{Grounds: "g"}, at8(2026, 3, 20, 9))
	if err != nil {
		t.Fatal(err)
	}
	blackPub := at8(2026, 4, 1, 0)
	black := listed(t, c, "blk1", "city_safety_blacklist", orgA, blackPub)
	changes, err := c.OnEnter(black, []Entry{red})
	if err != nil || len(changes) != 1 {
		t.Fatalf("on enter: %+v %v", changes, err)
	}
	closed := changes[0].Entry
	o := closed.Objections[0]
	if o.Decision != DecisionClosedByRevocation || o.DecidedAt == nil || !o.DecidedAt.Equal(blackPub) ||
		!strings.Contains(o.Note, "removed on entering city_safety_blacklist (entry blk1)") {
		t.Fatalf("red entry's objection after the closure: %+v", o)
	}

	// Moved earlier, the closure moves the objection's closing.
	earlier := at8(2026, 3, 25, 0)
	moved := Close(closed, Cause{Rule: "x.on_enter_remove_from_kinds", EntryID: "blk0"}, "removed earlier", earlier)
	if o := moved.Objections[0]; !o.DecidedAt.Equal(earlier) || !strings.Contains(o.Note, "removed earlier") {
		t.Fatalf("objection after the closure moved earlier: %+v", o)
	}
	// Closed before the objection was filed (a closure backdated to a
	// publication before it), it is decided when filed, never before.
	backdated := Close(red, Cause{Rule: "x.on_enter_remove_from_kinds", EntryID: "blk0"}, "backdated", at8(2026, 3, 1, 0))
	if o := backdated.Objections[0]; !o.DecidedAt.Equal(o.FiledAt) {
		t.Fatalf("objection decided %v, filed %v", o.DecidedAt, o.FiledAt)
	}

	black.Objections = []Objection{{ID: "bo", FiledAt: at8(2026, 4, 10, 0)}}
	voided, err := c.DecideObjection(black, "bo", ObjectionDecision{Decision: DecisionUpheld}, at8(2026, 4, 20, 0))
	if err != nil || !voided.Voided() {
		t.Fatalf("decide: %v", err)
	}
	ch := c.OnVoid(voided, []Entry{closed, voided})
	if len(ch) != 1 || ch[0].Entry.RevokedAt != nil {
		t.Fatalf("reopened %+v", ch)
	}
	if o := ch[0].Entry.Objections[0]; o.DecidedAt != nil || o.Decision != "" || o.Note != "" {
		t.Fatalf("reopened entry's objection: %+v", o)
	}
	if ch[0].Entry.OpenObjection() == nil || ch[0].Entry.StatusAt(at8(2026, 4, 21, 0)) != StatusUnderObjection {
		t.Fatal("the reopened entry's objection is not open")
	}
	if closed.Objections[0].DecidedAt == nil {
		t.Fatal("OnVoid modified the caller's entry")
	}
	// Reopened but removed by another black entry, it is closed again.
	second := listed(t, c, "blk2", "city_safety_blacklist", orgA, at8(2026, 4, 15, 0))
	ch = c.OnVoid(voided, []Entry{closed, voided, second})
	if len(ch) != 1 || ch[0].Entry.RevokedAt == nil {
		t.Fatalf("with a second black entry: %+v", ch)
	}
	if o := ch[0].Entry.Objections[0]; o.Decision != DecisionClosedByRevocation || !o.DecidedAt.Equal(at8(2026, 4, 15, 0)) {
		t.Fatalf("objection under the second black entry: %+v", o)
	}
}

// An objection filed against an entry whose revocation is already
// scheduled (closed at a pending entry's publication) suspends the
// measures until then and is closed by it, not left open after.
func TestObjectionAgainstScheduledRevocation(t *testing.T) {
	c := cityCat(t)
	red := listed(t, c, "red1", "honest_exemplar_redlist", orgA, at8(2025, 6, 1, 0))
	pub := at8(2026, 5, 1, 0)
	black := listed(t, c, "blk1", "city_safety_blacklist", orgA, pub)
	changes, err := c.OnEnter(black, []Entry{red})
	if err != nil || len(changes) != 1 {
		t.Fatalf("on enter: %+v %v", changes, err)
	}
	filed := at8(2026, 4, 10, 9)
	e, err := c.FileObjection(changes[0].Entry, "o1", FiledByAdministrator, ApplicationInput{Grounds: "g"}, filed)
	if err != nil {
		t.Fatal(err)
	}
	o := e.Objections[0]
	if o.Decision != DecisionClosedByRevocation || o.DecidedAt == nil || !o.DecidedAt.Equal(pub) {
		t.Fatalf("objection: %+v", o)
	}
	if s := e.StatusAt(at8(2026, 4, 20, 0)); s != StatusUnderObjection {
		t.Fatalf("before the scheduled revocation: %s", s)
	}
	if s := e.StatusAt(pub); s != StatusRevoked {
		t.Fatalf("at the scheduled revocation: %s", s)
	}
}

// A revocation closes the repair and exit applications still open on the
// entry as it closes an open objection: closed_by_revocation at the
// revocation, a note naming it, the review kept; decided ones stay as
// decided; the caller's entry is not modified. A closure moved earlier
// moves their closing, never before they were applied for or reviewed.
func TestRevokeClosesOpenApplications(t *testing.T) {
	c := cityCat(t)
	e := listed(t, c, "blk1", "city_safety_blacklist", orgA, at8(2026, 3, 2, 0))
	h := RepairHistory{Entries: []Entry{e}}
	e, err := c.ApplyRepair(e, "rep0", ApplicationInput{Grounds: "已整改"}, h, at8(2026, 6, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	if e, err = c.DecideRepair(e, "rep0", false, "整改不到位", h, at8(2026, 6, 2, 9)); err != nil {
		t.Fatal(err)
	}
	applied := at8(2027, 2, 22, 9)
	if e, err = c.ApplyRepair(e, "rep1", ApplicationInput{Grounds: "已整改并消除影响"}, h, applied); err != nil {
		t.Fatal(err)
	}
	reviewed := at8(2027, 2, 23, 9)
	if e, err = c.ReviewRepair(e, "rep1", "整改到位", "approve", reviewed); err != nil {
		t.Fatal(err)
	}
	if e, err = c.ApplyExit(e, "x1", ApplicationInput{Grounds: "管理期满"}, applied); err != nil {
		t.Fatal(err)
	}
	before := e
	revoked := at8(2027, 2, 24, 15)
	got := Revoke(e, "法院判决撤销处罚决定", revoked)

	if r := got.Repairs[0]; r.State != StateRefused || !r.DecidedAt.Equal(at8(2026, 6, 2, 9)) || r.Note != "整改不到位" {
		t.Fatalf("a decided repair changed: %+v", r)
	}
	r := got.Repairs[1]
	if r.State != StateClosedByRevocation || r.DecidedAt == nil || !r.DecidedAt.Equal(revoked) ||
		!strings.Contains(r.Note, "revoked at 2027-02-24T07:00:00Z") || !strings.Contains(r.Note, "法院判决撤销处罚决定") {
		t.Fatalf("open repair after the revocation: %+v", r)
	}
	if r.ReviewedAt == nil || !r.ReviewedAt.Equal(reviewed) || r.Finding != "整改到位" || r.Recommendation != "approve" {
		t.Fatalf("the closed repair lost its review: %+v", r)
	}
	x := got.Exits[0]
	if x.State != StateClosedByRevocation || x.DecidedAt == nil || !x.DecidedAt.Equal(revoked) || x.Note != r.Note {
		t.Fatalf("open exit after the revocation: %+v", x)
	}
	if before.Repairs[1].State != StateReviewed || before.Exits[0].State != StateApplied {
		t.Fatal("Revoke modified the caller's applications")
	}
	if _, err := c.DecideExit(got, "x1", true, "", revoked.Add(time.Hour)); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("decision of a closed exit: %v", err)
	}
	// The status is that of a revoked entry, not repaired, not exited.
	if s := got.StatusAt(revoked); s != StatusRevoked {
		t.Fatalf("status at the revocation: %s", s)
	}

	// Moved earlier (a cross-list closure backdated), the closing moves,
	// never before the application or its review.
	moved := Close(got, Cause{Rule: "x.on_enter_remove_from_lists", EntryID: "blk0"}, "removed earlier", applied.Add(time.Hour))
	if r, x := moved.Repairs[1], moved.Exits[0]; !r.DecidedAt.Equal(reviewed) || !x.DecidedAt.Equal(applied.Add(time.Hour)) ||
		!strings.Contains(x.Note, "removed earlier") {
		t.Fatalf("after the closure moved earlier: repair %+v, exit %+v", r, x)
	}
	if r := moved.Repairs[0]; r.State != StateRefused {
		t.Fatalf("a decided repair changed: %+v", r)
	}
}

// An objection upheld with the entry revoked closes the repair still open
// on it, as any revocation does.
func TestUpheldObjectionClosesOpenRepair(t *testing.T) {
	c := cityCat(t)
	e := listed(t, c, "blk1", "city_safety_blacklist", orgA, at8(2026, 3, 2, 0))
	e, err := c.ApplyRepair(e, "rep1", ApplicationInput{Grounds: "已整改"}, RepairHistory{Entries: []Entry{e}}, at8(2026, 4, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	if e, err = c.FileObjection(e, "o1", FiledByAdministrator, ApplicationInput{Grounds: "事故责任认定有误"}, at8(2026, 4, 2, 9)); err != nil {
		t.Fatal(err)
	}
	upheld := at8(2026, 4, 10, 9)
	if e, err = c.DecideObjection(e, "o1", ObjectionDecision{Decision: DecisionUpheld, Note: "认定错误"}, upheld); err != nil {
		t.Fatal(err)
	}
	if r := e.Repairs[0]; r.State != StateClosedByRevocation || !r.DecidedAt.Equal(upheld) || !strings.Contains(r.Note, "objection o1 upheld") {
		t.Fatalf("repair after the upheld objection: %+v", r)
	}
	// Upheld with a correction the entry stays, and so does the repair.
	k := listed(t, c, "blk2", "city_safety_blacklist", orgA, at8(2026, 3, 2, 0))
	if k, err = c.ApplyRepair(k, "rep2", ApplicationInput{Grounds: "已整改"}, RepairHistory{Entries: []Entry{k}}, at8(2026, 4, 1, 9)); err != nil {
		t.Fatal(err)
	}
	if k, err = c.FileObjection(k, "o2", FiledByAdministrator, ApplicationInput{Grounds: "事由表述有误"}, at8(2026, 4, 2, 9)); err != nil {
		t.Fatal(err)
	}
	if k, err = c.DecideObjection(k, "o2", ObjectionDecision{Decision: DecisionUpheld, Remedy: RemedyCorrected}, upheld); err != nil {
		t.Fatal(err)
	}
	if r := k.Repairs[0]; r.State != StateApplied || r.DecidedAt != nil {
		t.Fatalf("repair after a correction: %+v", r)
	}
}

// A key-attention entry closed on entering the black list has its open
// exit application closed at the closure; when the black entry is voided
// and the key-attention entry reopened, the application is open again,
// never decided on its merits.
func TestCloseAndReopenExit(t *testing.T) {
	c := bundledCat(t)
	ka := listed(t, c, "ka1", "safety_production_key_attention", orgA, at8(2025, 4, 1, 0))
	ka, err := c.ApplyExit(ka, "x1", ApplicationInput{Grounds: "管理期满"}, at8(2026, 3, 16, 9))
	if err != nil {
		t.Fatal(err)
	}
	blackPub := at8(2026, 3, 18, 0)
	black := listed(t, c, "blk1", "safety_production_blacklist", orgA, blackPub)
	changes, err := c.OnEnter(black, []Entry{ka})
	if err != nil || len(changes) != 1 {
		t.Fatalf("on enter: %+v %v", changes, err)
	}
	closed := changes[0].Entry
	if x := closed.Exits[0]; x.State != StateClosedByRevocation || !x.DecidedAt.Equal(blackPub) ||
		!strings.Contains(x.Note, "removed on entering safety_production_blacklist (entry blk1)") {
		t.Fatalf("key-attention exit after the closure: %+v", x)
	}
	black.Objections = []Objection{{ID: "bo", FiledAt: at8(2026, 3, 19, 0)}}
	voided, err := c.DecideObjection(black, "bo", ObjectionDecision{Decision: DecisionUpheld}, at8(2026, 3, 25, 0))
	if err != nil || !voided.Voided() {
		t.Fatalf("decide: %v", err)
	}
	ch := c.OnVoid(voided, []Entry{closed, voided})
	if len(ch) != 1 || ch[0].Entry.RevokedAt != nil {
		t.Fatalf("reopened %+v", ch)
	}
	if x := ch[0].Entry.Exits[0]; x.State != StateApplied || x.DecidedAt != nil || x.Note != "" {
		t.Fatalf("reopened entry's exit: %+v", x)
	}
	if closed.Exits[0].State != StateClosedByRevocation {
		t.Fatal("OnVoid modified the caller's entry")
	}
	// A reviewed repair reopens reviewed.
	rev := Repair{ID: "r", AppliedAt: at8(2026, 3, 1, 0), State: StateReviewed, ReviewedAt: ptrTime(at8(2026, 3, 2, 0)), Finding: "f", Recommendation: "approve"}
	back := reopenRepairs(CloseRepairs([]Repair{rev}, at8(2026, 3, 3, 0), "r"))
	if back[0].State != StateReviewed || back[0].DecidedAt != nil || back[0].Note != "" || back[0].Finding != "f" {
		t.Fatalf("reopened reviewed repair: %+v", back[0])
	}
}

// An exit application filed against an entry whose revocation is already
// scheduled (closed at a pending entry's publication) is closed by it, as
// an objection is, and counts as pending until then: a second one is
// refused.
func TestExitAgainstScheduledRevocation(t *testing.T) {
	c := bundledCat(t)
	ka := listed(t, c, "ka1", "safety_production_key_attention", orgA, at8(2025, 4, 1, 0))
	pub := at8(2026, 3, 25, 0)
	black := listed(t, c, "blk1", "safety_production_blacklist", orgA, pub)
	changes, err := c.OnEnter(black, []Entry{ka})
	if err != nil || len(changes) != 1 {
		t.Fatalf("on enter: %+v %v", changes, err)
	}
	filed := at8(2026, 3, 16, 9)
	e, err := c.ApplyExit(changes[0].Entry, "x1", ApplicationInput{Grounds: "管理期满"}, filed)
	if err != nil {
		t.Fatal(err)
	}
	if x := e.Exits[0]; x.State != StateClosedByRevocation || x.DecidedAt == nil || !x.DecidedAt.Equal(pub) {
		t.Fatalf("exit: %+v", x)
	}
	if _, err := c.ApplyExit(e, "x2", ApplicationInput{Grounds: "管理期满"}, filed.Add(time.Hour)); !errors.Is(err, ErrWrongState) {
		t.Fatalf("a second exit before the scheduled revocation: %v", err)
	}
}
