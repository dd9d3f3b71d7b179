package service_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// revStore is what these tests need of a store: both adapters are one.
type revStore interface {
	service.EntriesStore
	evidence.Sink
}

// revWorld is the entry and lifecycle services over one store, with a
// settable clock and the audit records kept.
type revWorld struct {
	clock     *testenv.Clock
	store     revStore
	entries   *service.Entries
	lifecycle *service.Lifecycle
	audit     *spy
}

func newRevWorld(t *testing.T, st revStore, start time.Time) *revWorld {
	t.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	w := &revWorld{clock: testenv.NewClock(start), store: st, audit: &spy{next: app}}
	w.entries = service.NewEntries(st, cat, service.WithEntriesClock(w.clock.Now), service.WithEntriesAudit(service.NewAudit(w.audit)))
	w.lifecycle = service.NewLifecycle(w.entries, st)
	return w
}

// eachEntryStore runs fn on a fresh SQLite store and a fresh PostgreSQL
// schema.
func eachEntryStore(t *testing.T, fn func(t *testing.T, st revStore)) {
	eachStore(t, func(t *testing.T, st testStore) { fn(t, st) })
}

// detailsOf returns the details of the last audit record of act.
func (w *revWorld) detailsOf(t *testing.T, act service.Act) map[string]any {
	t.Helper()
	var d map[string]any
	for _, b := range w.audit.bodies(t) {
		if b.Act == act {
			d = b.Details
		}
	}
	if d == nil {
		t.Fatalf("no %s act", act)
	}
	return d
}

func namesOnly(v any, want ...string) bool {
	ids, _ := v.([]any)
	if len(ids) != len(want) {
		return false
	}
	for i, id := range ids {
		if id != want[i] {
			return false
		}
	}
	return true
}

// wantClosedByRevocation fails unless objection id of e was closed by the
// entry's revocation at `at`.
func wantClosedByRevocation(t *testing.T, e policy.Entry, id string, at time.Time) {
	t.Helper()
	i := slices.IndexFunc(e.Objections, func(o policy.Objection) bool { return o.ID == id })
	if i < 0 {
		t.Fatalf("entry %s has no objection %s", e.ID, id)
	}
	o := e.Objections[i]
	if o.DecidedAt == nil || !o.DecidedAt.Equal(at) || o.Decision != policy.DecisionClosedByRevocation || !strings.Contains(o.Note, "revoked at") {
		t.Fatalf("objection %s of entry %s: %+v, want closed by the revocation at %s", id, e.ID, o, at)
	}
	if e.OpenObjection() != nil {
		t.Fatalf("entry %s still has an open objection", e.ID)
	}
}

// An administrator's revocation of an entry under objection closes the
// objection in the same write and names it in the same act: the stored
// entry shows it decided, no listing shows it pending, and the status
// before the revocation is still "under objection".
func TestServiceRevokeClosesOpenObjection(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 3, 1, 9))
		e, err := w.entries.Create(ctx, safetyEntry(cstAt(2026, 3, 1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 3, 2, 10))
		_, o, err := w.lifecycle.FileObjection(ctx, e.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "事故责任认定被撤销"})
		if err != nil {
			t.Fatal(err)
		}
		revokedAt := cstAt(2026, 3, 4, 15)
		w.clock.Set(revokedAt)
		got, err := w.entries.Revoke(ctx, e.ID, "法院判决撤销处罚决定")
		if err != nil {
			t.Fatal(err)
		}
		wantClosedByRevocation(t, got, o.ID, revokedAt)
		stored, err := w.entries.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantClosedByRevocation(t, stored, o.ID, revokedAt)
		if stored.Version != 3 {
			t.Fatalf("version %d: the revocation and the objection's closing are one write", stored.Version)
		}
		if d := w.detailsOf(t, service.ActEntryRevoked); !namesOnly(d["closed_objections"], o.ID) {
			t.Fatalf("the revocation's act does not name the objection it closed: %v", d)
		}
		// Not open, not overdue, even long after its deadline.
		w.clock.Set(cstAt(2026, 6, 1, 9))
		for _, state := range []string{"open", "overdue"} {
			if ps, _, err := w.lifecycle.ListProceedings(ctx, service.ProceedingObjection, state, "", 10); err != nil || len(ps) != 0 {
				t.Fatalf("%s objections: %v %v", state, ps, err)
			}
		}
		if _, _, err := w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "rejected"}); err == nil {
			t.Fatal("an objection closed by the revocation was decided again")
		}
		if s := stored.StatusAt(cstAt(2026, 3, 3, 0)); s != policy.StatusUnderObjection {
			t.Fatalf("status between filing and revocation: %s", s)
		}
	})
}

// A cross-list closure (the black entry removes the red one) closes the
// red entry's open objection, named by the creating act; voiding the black
// entry reopens the red entry and its objection, pending again, named by
// the deciding act.
func TestServiceCrossListClosureClosesObjection(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newCityRevWorld(t, st, cstAt(2026, 3, 1, 9))
		red, err := w.entries.Create(ctx, redEntry(lcOrg, cstAt(2025, 6, 1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 3, 20, 9))
		_, ro, err := w.lifecycle.FileObjection(ctx, red.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "表彰依据有误"})
		if err != nil {
			t.Fatal(err)
		}
		blackAt := cstAt(2026, 4, 1, 9)
		w.clock.Set(blackAt)
		black, err := w.entries.Create(ctx, citySafetyEntry(blackAt))
		if err != nil {
			t.Fatal(err)
		}
		closed, err := w.entries.Get(ctx, red.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantClosedByRevocation(t, closed, ro.ID, blackAt)
		d := w.detailsOf(t, service.ActEntryCreated)
		if !namesOnly(d["closed_entries"], red.ID) || !namesOnly(d["closed_objections"], ro.ID) {
			t.Fatalf("the creating act does not name what it closed: %v", d)
		}

		w.clock.Set(cstAt(2026, 4, 2, 9))
		_, bo, err := w.lifecycle.FileObjection(ctx, black.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "事故责任认定有误"})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 4, 10, 9))
		if _, _, err := w.lifecycle.DecideObjection(ctx, bo.ID, service.ObjectionDecisionInput{Decision: "upheld", Note: "认定错误"}); err != nil {
			t.Fatal(err)
		}
		reopened, err := w.entries.Get(ctx, red.ID)
		if err != nil {
			t.Fatal(err)
		}
		if reopened.RevokedAt != nil || reopened.OpenObjection() == nil || reopened.OpenObjection().ID != ro.ID {
			t.Fatalf("reopened red entry: revoked %v, objections %+v", reopened.RevokedAt, reopened.Objections)
		}
		if ps, _, err := w.lifecycle.ListProceedings(ctx, service.ProceedingObjection, "open", "", 10); err != nil || len(ps) != 1 || ps[0].ID != ro.ID {
			t.Fatalf("open objections after the reopening: %v %v", ps, err)
		}
		if d := w.detailsOf(t, service.ActObjectionDecided); !namesOnly(d["reopened_objections"], ro.ID) {
			t.Fatalf("the deciding act does not name the reopened objection: %v", d)
		}
	})
}

// An escalation (the third same-item penalty derives the black entry and
// supersedes the general one) closes the general entry's open objection,
// named by the violation's act.
func TestServiceEscalationClosesObjection(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 3, 3, 12))
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
		record(cstAt(2026, 3, 3, 10))
		general := record(cstAt(2026, 4, 7, 10)).Derived
		if general == nil {
			t.Fatal("no general entry derived")
		}
		w.clock.Set(cstAt(2026, 4, 20, 9))
		_, o, err := w.lifecycle.FileObjection(ctx, general.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "处罚决定已撤销"})
		if err != nil {
			t.Fatal(err)
		}
		third := record(cstAt(2026, 5, 12, 10))
		if len(third.Closed) != 1 || third.Closed[0].ID != general.ID {
			t.Fatalf("closed: %+v", third.Closed)
		}
		stored, err := w.entries.Get(ctx, general.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantClosedByRevocation(t, stored, o.ID, *stored.RevokedAt)
		if d := w.detailsOf(t, service.ActViolationRecorded); !namesOnly(d["closed_objections"], o.ID) {
			t.Fatalf("the violation's act does not name the objection it closed: %v", d)
		}
	})
}

// wantApplicationClosed fails unless state, decided and note say an
// application was closed by its entry's revocation at `at`.
func wantApplicationClosed(t *testing.T, what string, state policy.ApplicationState, decided *time.Time, note string, at time.Time) {
	t.Helper()
	if state != policy.StateClosedByRevocation || decided == nil || !decided.Equal(at) || !strings.Contains(note, "revoked at") {
		t.Fatalf("%s: state %s, decided %v, note %q; want closed by the revocation at %s", what, state, decided, note, at)
	}
}

// An administrator's revocation closes the repair (reviewed, not yet
// decided) and the exit application still open on the entry, as it closes
// an open objection: in the same version, named in the same act, and gone
// from the administrator's queue, open or overdue; neither can be decided
// after.
func TestServiceRevokeClosesOpenApplications(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newCityRevWorld(t, st, cstAt(2026, 3, 1, 9))
		e, err := w.entries.Create(ctx, citySafetyEntry(cstAt(2026, 3, 1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		// Within the 30 working days before expiry (2027-03-01) the exit
		// window is open; the list's repair needs a review.
		w.clock.Set(cstAt(2027, 2, 22, 10))
		_, rep, err := w.lifecycle.ApplyRepair(ctx, e.ID, service.ApplicationRequest{Grounds: "已整改并消除影响"})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2027, 2, 23, 10))
		if _, rep, err = w.lifecycle.ReviewRepair(ctx, rep.ID, service.RepairReviewInput{Finding: "整改到位", Recommendation: "approve"}); err != nil {
			t.Fatal(err)
		}
		_, x, err := w.lifecycle.ApplyExit(ctx, e.ID, service.ApplicationRequest{Grounds: "管理期满,申请移出"})
		if err != nil {
			t.Fatal(err)
		}
		queue := func(kind service.ProceedingKind, state string) []string {
			t.Helper()
			ps, _, err := w.lifecycle.ListProceedings(ctx, kind, state, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			return ids
		}
		if !slices.Equal(queue(service.ProceedingRepair, "open"), []string{rep.ID}) || !slices.Equal(queue(service.ProceedingExit, "open"), []string{x.ID}) {
			t.Fatal("the applications are not in the queue before the revocation")
		}

		revokedAt := cstAt(2027, 2, 24, 15)
		w.clock.Set(revokedAt)
		got, err := w.entries.Revoke(ctx, e.ID, "法院判决撤销处罚决定")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := w.entries.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		for name, en := range map[string]policy.Entry{"returned": got, "stored": stored} {
			r, xa := en.Repairs[0], en.Exits[0]
			wantApplicationClosed(t, name+" repair", r.State, r.DecidedAt, r.Note, revokedAt)
			wantApplicationClosed(t, name+" exit", xa.State, xa.DecidedAt, xa.Note, revokedAt)
			if r.ReviewedAt == nil || r.Finding != "整改到位" || !strings.Contains(r.Note, "法院判决撤销处罚决定") {
				t.Fatalf("%s repair lost its review or the reason: %+v", name, r)
			}
		}
		if stored.Version != 5 {
			t.Fatalf("version %d: the revocation and the applications' closing are one write", stored.Version)
		}
		d := w.detailsOf(t, service.ActEntryRevoked)
		if !namesOnly(d["closed_repairs"], rep.ID) || !namesOnly(d["closed_exits"], x.ID) {
			t.Fatalf("the revocation's act does not name the applications it closed: %v", d)
		}
		// Not open, not overdue, even long after.
		w.clock.Set(cstAt(2027, 6, 1, 9))
		for _, kind := range []service.ProceedingKind{service.ProceedingRepair, service.ProceedingExit} {
			for _, state := range []string{"open", "overdue"} {
				if ids := queue(kind, state); len(ids) != 0 {
					t.Fatalf("%s %s after the revocation: %v", state, kind, ids)
				}
			}
		}
		if _, _, err := w.lifecycle.DecideRepair(ctx, rep.ID, service.DecisionInput{Decision: "refused", Note: "名单已撤销"}); !errors.Is(err, policy.ErrAlreadyDecided) {
			t.Fatalf("a repair closed by the revocation was decided again: %v", err)
		}
		if _, _, err := w.lifecycle.DecideExit(ctx, x.ID, service.DecisionInput{Decision: "refused", Note: "名单已撤销"}); !errors.Is(err, policy.ErrAlreadyDecided) {
			t.Fatalf("an exit closed by the revocation was decided again: %v", err)
		}
	})
}

// A cross-list closure (entering the black list ends the key-attention
// entry) closes the key-attention entry's open exit application, named by
// the creating act; voiding the black entry reopens the entry and its
// exit application, back in the queue and named by the deciding act.
func TestServiceCrossListClosureClosesExit(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2025, 4, 1, 9))
		key := safetyEntry(cstAt(2025, 4, 1, 0))
		key.List = "safety_production_key_attention"
		ka, err := w.entries.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 3, 16, 9))
		_, x, err := w.lifecycle.ApplyExit(ctx, ka.ID, service.ApplicationRequest{Grounds: "管理期满,申请移出"})
		if err != nil {
			t.Fatal(err)
		}
		blackAt := cstAt(2026, 3, 18, 9)
		w.clock.Set(blackAt)
		black, err := w.entries.Create(ctx, safetyEntry(blackAt))
		if err != nil {
			t.Fatal(err)
		}
		closed, err := w.entries.Get(ctx, ka.ID)
		if err != nil {
			t.Fatal(err)
		}
		xa := closed.Exits[0]
		wantApplicationClosed(t, "key-attention exit", xa.State, xa.DecidedAt, xa.Note, blackAt)
		if d := w.detailsOf(t, service.ActEntryCreated); !namesOnly(d["closed_entries"], ka.ID) || !namesOnly(d["closed_exits"], x.ID) {
			t.Fatalf("the creating act does not name what it closed: %v", d)
		}
		if ps, _, err := w.lifecycle.ListProceedings(ctx, service.ProceedingExit, "open", "", 10); err != nil || len(ps) != 0 {
			t.Fatalf("open exits after the closure: %v %v", ps, err)
		}

		w.clock.Set(cstAt(2026, 3, 19, 9))
		_, bo, err := w.lifecycle.FileObjection(ctx, black.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "事故责任认定有误"})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 3, 25, 9))
		if _, _, err := w.lifecycle.DecideObjection(ctx, bo.ID, service.ObjectionDecisionInput{Decision: "upheld", Note: "认定错误"}); err != nil {
			t.Fatal(err)
		}
		reopened, err := w.entries.Get(ctx, ka.ID)
		if err != nil {
			t.Fatal(err)
		}
		if xa := reopened.Exits[0]; reopened.RevokedAt != nil || xa.State != policy.StateApplied || xa.DecidedAt != nil || xa.Note != "" {
			t.Fatalf("reopened key-attention entry: revoked %v, exit %+v", reopened.RevokedAt, xa)
		}
		if ps, _, err := w.lifecycle.ListProceedings(ctx, service.ProceedingExit, "open", "", 10); err != nil || len(ps) != 1 || ps[0].ID != x.ID {
			t.Fatalf("open exits after the reopening: %v %v", ps, err)
		}
		if d := w.detailsOf(t, service.ActObjectionDecided); !namesOnly(d["reopened_exits"], x.ID) {
			t.Fatalf("the deciding act does not name the reopened exit: %v", d)
		}
	})
}

// A revocation's reason goes through the rule every free text does: a
// control character other than tab, line feed and carriage return is an
// invalid entry on both stores (PostgreSQL cannot store NUL at all), and
// nothing is revoked or recorded.
func TestServiceRevokeRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 3, 1, 9))
		e, err := w.entries.Create(ctx, safetyEntry(cstAt(2026, 3, 1, 0)))
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Set(cstAt(2026, 3, 4, 15))
		for _, reason := range []string{"法院判决\x00撤销", "撤销\x1b[2J", "\x07撤销"} {
			if _, err := w.entries.Revoke(ctx, e.ID, reason); !errors.Is(err, policy.ErrInvalidEntry) || !strings.Contains(err.Error(), "control character") {
				t.Fatalf("reason %q: %v, want an invalid entry naming the control character", reason, err)
			}
		}
		stored, err := w.entries.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.RevokedAt != nil || stored.Version != 1 {
			t.Fatalf("refused revocations changed the entry: revoked %v, version %d", stored.RevokedAt, stored.Version)
		}
		for _, b := range w.audit.bodies(t) {
			if b.Act == service.ActEntryRevoked || b.Act == service.ActFailed {
				t.Fatalf("a refused revocation was recorded: %+v", b)
			}
		}
		// Tab, line feed and carriage return are text.
		got, err := w.entries.Revoke(ctx, e.ID, "法院判决撤销处罚决定\r\n文号:\t(2026)第1号")
		if err != nil || got.RevokedAt == nil {
			t.Fatalf("revocation with tab and line breaks: %v", err)
		}
	})
}
