package service

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/policy"
)

// The lifecycle of entries after publication: objections, repairs, exits,
// violation records and the entries derived from them, and the cross-list
// rules applied when entries are created. The rules themselves are in
// policy; this file loads, calls policy, and stores every change of one
// request in one transaction, with its history.

// Errors of the lifecycle use cases.
var (
	// ErrInvalidState: a listing filter other than open/overdue.
	ErrInvalidState = errors.New("invalid state filter")
	// ErrTooManyRecords: a subject has more violation records than one
	// computation reads.
	ErrTooManyRecords = errors.New("too many violation records for one subject")
	// ErrLifecycleUnsupported: the entry store cannot write several
	// entries atomically, which cross-list rules need.
	ErrLifecycleUnsupported = errors.New("the store does not support lifecycle changes")
)

// MaxSubjectRecords caps the violation records read for one subject.
const MaxSubjectRecords = 10_000

// EntryChanges are writes that go in one transaction: new entries,
// updated entries (each replacing the stored version e.Version-1, like
// UpdateEntry) and new violation records. Every entry write also records
// the entry's version in its history.
type EntryChanges struct {
	Insert  []policy.Entry
	Update  []policy.Entry
	Records []policy.ViolationRecord
}

// ProceedingKind is what a proceeding is.
type ProceedingKind string

// Proceeding kinds.
const (
	ProceedingObjection ProceedingKind = "objection"
	ProceedingRepair    ProceedingKind = "repair"
	ProceedingExit      ProceedingKind = "exit"
)

// ProceedingFilter selects open proceedings of one kind, ordered by id.
type ProceedingFilter struct {
	Kind ProceedingKind
	// DueBefore, when not zero, keeps those whose deadline is at or
	// before it (overdue at that time).
	DueBefore time.Time
	After     string
	Limit     int
}

// Proceeding is an open objection, repair or exit application, with its
// entry.
type Proceeding struct {
	ID    string
	Kind  ProceedingKind
	DueAt *time.Time
	Entry policy.Entry
}

// LifecycleStore keeps what the lifecycle adds to entries. Adapters pass
// the conformance suite's lifecycle tests.
type LifecycleStore interface {
	// ApplyEntryChanges writes all changes in one transaction, or none. A
	// stale or missing update is ErrConflict / ErrNotFound; a duplicate id
	// is ErrConflict.
	ApplyEntryChanges(ctx context.Context, c EntryChanges) error
	// EntryByProceeding returns the entry that holds the objection,
	// repair or exit application id; ErrNotFound when none does.
	EntryByProceeding(ctx context.Context, id string) (policy.Entry, error)
	// OpenProceedings lists undecided proceedings by filter; adapters cap
	// the page at MaxPage.
	OpenProceedings(ctx context.Context, f ProceedingFilter) ([]Proceeding, error)
	// ViolationRecords returns the subject's records known at knownAt
	// (recorded at or before it; all when zero), ordered by decision time
	// then id, at most MaxSubjectRecords+1.
	ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error)
	// EntriesAffectingAsOf is EntriesAffecting as credgate knew it at
	// knownAt: each entry in its latest version recorded at or before it.
	EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error)
}

// Lifecycle administers objections, repairs, exits and violation records.
// It shares the entry service's store, catalogue, clock and change hook,
// so that caches invalidated on entry changes are invalidated on these too.
type Lifecycle struct {
	entries *Entries
	store   LifecycleStore
	catalog *policy.Catalog
	// locks serialise derivations per subject in this process, so that
	// two records arriving together do not derive the same entry twice.
	locks [64]sync.Mutex
}

// LifecycleOption configures Lifecycle.
type LifecycleOption func(*Lifecycle)

// NewLifecycle returns the lifecycle service over entries' catalogue and
// clock and the store.
func NewLifecycle(entries *Entries, store LifecycleStore, opts ...LifecycleOption) *Lifecycle {
	l := &Lifecycle{entries: entries, store: store, catalog: entries.catalog}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Catalog returns the catalogue the lifecycle applies.
func (l *Lifecycle) Catalog() *policy.Catalog { return l.catalog }

func (l *Lifecycle) now() time.Time { return l.entries.now().UTC().Truncate(time.Microsecond) }

func newID(prefix string) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return prefix + strings.ReplaceAll(id.String(), "-", ""), nil
}

func (l *Lifecycle) lock(subject string) func() {
	h := fnv.New32a()
	h.Write([]byte(subject))
	m := &l.locks[h.Sum32()%uint32(len(l.locks))]
	m.Lock()
	return m.Unlock
}

// Administrative acts of the lifecycle, recorded in the evidence log (see
// Audit) before they are done.
const (
	ActObjectionFiled    Act = "objection_filed"
	ActObjectionDecided  Act = "objection_decided"
	ActRepairApplied     Act = "repair_applied"
	ActRepairReviewed    Act = "repair_reviewed"
	ActRepairDecided     Act = "repair_decided"
	ActExitApplied       Act = "exit_applied"
	ActExitDecided       Act = "exit_decided"
	ActViolationRecorded Act = "violation_recorded"
)

// save records the act, then stores the changed entry (its version
// bumped, updated now) and tells the change hook.
func (l *Lifecycle) save(ctx context.Context, act Act, target string, details map[string]any, old, e policy.Entry, now time.Time, also ...policy.Entry) (policy.Entry, error) {
	e.UpdatedAt = now
	e.Version = old.Version + 1
	details["status"] = string(e.StatusAt(now))
	updates := append([]policy.Entry{e}, also...)
	err := l.entries.audit.do(ctx, act, target, details, func() error {
		return l.store.ApplyEntryChanges(ctx, EntryChanges{Update: updates})
	})
	if err != nil {
		return policy.Entry{}, fmt.Errorf("store entry %s: %w", e.ID, err)
	}
	touched := append(affected(old), affected(e)...)
	for _, a := range also {
		touched = append(touched, affected(a)...)
	}
	l.entries.changed(touched...)
	return e, nil
}

// actDetails is what an audit record says about a lifecycle act: the entry
// and the proceeding, never grounds, notes or persons' numbers.
func actDetails(e policy.Entry, extra ...any) map[string]any {
	d := map[string]any{"entry_id": e.ID, "subject_id": e.Subject.Value, "list": e.List}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	return d
}

// ---------------------------------------------------------------- objections

// ObjectionInput is an objection filed on the subject's behalf.
type ObjectionInput struct {
	FiledBy      string   `json:"filed_by"`
	Grounds      string   `json:"grounds"`
	EvidenceRefs []string `json:"evidence_refs,omitempty"`
}

// FileObjection files an objection against entry id now; its measures are
// suspended from now until it is decided.
func (l *Lifecycle) FileObjection(ctx context.Context, entryID string, in ObjectionInput) (policy.Entry, policy.Objection, error) {
	e, err := l.entries.store.GetEntry(ctx, entryID)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	id, err := newID("obj_")
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	now := l.now()
	ne, err := l.catalog.FileObjection(e, id, in.FiledBy, policy.ApplicationInput{Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs}, now)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	ne, err = l.save(ctx, ActObjectionFiled, id, actDetails(e, "objection_id", id, "filed_by", in.FiledBy), e, ne, now)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	return ne, ne.Objections[len(ne.Objections)-1], nil
}

// ObjectionDecisionInput is the originating department's decision.
type ObjectionDecisionInput struct {
	Decision string `json:"decision"`
	Remedy   string `json:"remedy,omitempty"`
	Note     string `json:"note,omitempty"`
	// Correction is required for an upheld objection with remedy
	// "corrected", and refused otherwise.
	Correction *EntryPatch `json:"correction,omitempty"`
}

// DecideObjection decides objection id now (see policy.DecideObjection);
// the validity end is recomputed from the list rule and the suspension.
func (l *Lifecycle) DecideObjection(ctx context.Context, objID string, in ObjectionDecisionInput) (policy.Entry, policy.Objection, error) {
	if (in.Correction != nil) != (in.Decision == policy.DecisionUpheld && in.Remedy == policy.RemedyCorrected) {
		return policy.Entry{}, policy.Objection{}, fmt.Errorf("%w: a correction goes with, and only with, decision upheld and remedy corrected", policy.ErrInvalidDecision)
	}
	e, err := l.store.EntryByProceeding(ctx, objID)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, fmt.Errorf("objection %s: %w", objID, err)
	}
	if !slices.ContainsFunc(e.Objections, func(o policy.Objection) bool { return o.ID == objID }) {
		return policy.Entry{}, policy.Objection{}, fmt.Errorf("objection %s: %w", objID, ErrNotFound)
	}
	now := l.now()
	ne, err := l.catalog.DecideObjection(e, objID, policy.ObjectionDecision{Decision: in.Decision, Remedy: in.Remedy, Note: in.Note}, now)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	if in.Correction != nil {
		ne = in.Correction.apply(ne)
		if in.Correction.DecidedAt != nil {
			if err := decidedBy(ne.DecidedAt, now); err != nil {
				return policy.Entry{}, policy.Objection{}, err
			}
		}
	}
	if ne.RevokedAt == nil || ne.RevokedAt.After(now) {
		if ne, err = l.catalog.PrepareEntry(ne); err != nil {
			return policy.Entry{}, policy.Objection{}, err
		}
	}
	// A voided entry gives back what its entering took: the red entries
	// it removed are reopened in the same act.
	details := actDetails(e, "objection_id", objID, "decision", in.Decision, "remedy", in.Remedy)
	// Upheld with the entry revoked, the repair or exit application still
	// open on it is closed by that revocation and named here.
	var closed closedProceedings
	closed.add(e, ne)
	closed.describe(details)
	var reopened []policy.Entry
	if ne.Voided() {
		all, err := l.entries.store.EntriesAffecting(ctx, e.Subject.Value)
		if err != nil {
			return policy.Entry{}, policy.Objection{}, fmt.Errorf("look up entries: %w", err)
		}
		var ids []string
		var back reopenedProceedings
		for _, c := range l.catalog.OnVoid(ne, own(all, e.Subject)) {
			r := c.Entry
			if i := slices.IndexFunc(all, func(o policy.Entry) bool { return o.ID == r.ID }); i >= 0 {
				back.add(all[i], r)
			}
			r.UpdatedAt, r.Version = now, r.Version+1
			reopened = append(reopened, r)
			ids = append(ids, r.ID)
		}
		if len(ids) > 0 {
			details["reopened_entries"] = ids
		}
		// Their revocation undone, the objections, repairs and exit
		// applications it closed are open again, never decided on their
		// merits.
		back.describe(details)
	}
	ne, err = l.save(ctx, ActObjectionDecided, objID, details, e, ne, now, reopened...)
	if err != nil {
		return policy.Entry{}, policy.Objection{}, err
	}
	i := slices.IndexFunc(ne.Objections, func(o policy.Objection) bool { return o.ID == objID })
	return ne, ne.Objections[i], nil
}

// reopenedProceedings are the objections, repairs and exit applications a
// revocation had closed that are open again once it is undone.
type reopenedProceedings struct {
	objections, repairs, exits []string
}

// add adds those a revocation had closed in old that are open again in e.
func (b *reopenedProceedings) add(old, e policy.Entry) {
	for _, o := range old.Objections {
		if o.Decision != policy.DecisionClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(e.Objections, func(p policy.Objection) bool { return p.ID == o.ID }); i >= 0 && e.Objections[i].DecidedAt == nil {
			b.objections = append(b.objections, o.ID)
		}
	}
	for _, r := range old.Repairs {
		if r.State != policy.StateClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(e.Repairs, func(p policy.Repair) bool { return p.ID == r.ID }); i >= 0 && openState(e.Repairs[i].State) {
			b.repairs = append(b.repairs, r.ID)
		}
	}
	for _, x := range old.Exits {
		if x.State != policy.StateClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(e.Exits, func(p policy.ExitApplication) bool { return p.ID == x.ID }); i >= 0 && openState(e.Exits[i].State) {
			b.exits = append(b.exits, x.ID)
		}
	}
}

// describe names them in an act's details (reopened_objections,
// reopened_repairs, reopened_exits), each only when there are some.
func (b reopenedProceedings) describe(d map[string]any) {
	for key, ids := range map[string][]string{"reopened_objections": b.objections, "reopened_repairs": b.repairs, "reopened_exits": b.exits} {
		if len(ids) > 0 {
			d[key] = ids
		}
	}
}

// ---------------------------------------------------------------- proceedings listing

// ProceedingState filters listings: every undecided one, or only those
// past their deadline.
const (
	StateOpen    = "open"
	StateOverdue = "overdue"
)

// ListProceedings lists undecided proceedings of a kind; state "overdue"
// keeps those past their deadline now.
func (l *Lifecycle) ListProceedings(ctx context.Context, kind ProceedingKind, state, after string, limit int) ([]Proceeding, time.Time, error) {
	now := l.now()
	f := ProceedingFilter{Kind: kind, After: after, Limit: limit}
	switch state {
	case "", StateOpen:
	case StateOverdue:
		f.DueBefore = now
	default:
		return nil, now, fmt.Errorf("%w: %q (open or overdue)", ErrInvalidState, state)
	}
	if f.Limit <= 0 || f.Limit > MaxPage {
		f.Limit = MaxPage
	}
	ps, err := l.store.OpenProceedings(ctx, f)
	return ps, now, err
}

// WorkingDaysOverdue is how many working days past its deadline a
// proceeding is at now (0 when not overdue).
func (l *Lifecycle) WorkingDaysOverdue(due *time.Time, now time.Time) int {
	if due == nil || now.Before(*due) {
		return 0
	}
	// due is the midnight after the last allowed day: the first overdue
	// working day is the first working day on or after it.
	return l.catalog.Calendar().WorkingDaysBetween(due.Add(-time.Nanosecond), now)
}

// ---------------------------------------------------------------- repairs

// ApplicationRequest is a repair or exit application.
type ApplicationRequest struct {
	Grounds      string   `json:"grounds"`
	EvidenceRefs []string `json:"evidence_refs,omitempty"`
}

// history is what repair rules look at: the subject's own entries and its
// violation records.
func (l *Lifecycle) history(ctx context.Context, e policy.Entry) (policy.RepairHistory, error) {
	all, err := l.entries.store.EntriesAffecting(ctx, e.Subject.Value)
	if err != nil {
		return policy.RepairHistory{}, fmt.Errorf("look up entries: %w", err)
	}
	h := policy.RepairHistory{Entries: own(all, e.Subject)}
	if h.Records, err = l.records(ctx, e.Subject.Value, time.Time{}); err != nil {
		return policy.RepairHistory{}, err
	}
	return h, nil
}

func (l *Lifecycle) records(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error) {
	rs, err := l.store.ViolationRecords(ctx, subject, knownAt)
	if err != nil {
		return nil, fmt.Errorf("look up violation records: %w", err)
	}
	if len(rs) > MaxSubjectRecords {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyRecords, MaxSubjectRecords)
	}
	return rs, nil
}

// own keeps the entries on subject itself (not those naming it as a
// responsible person).
func own(entries []policy.Entry, subject policy.SubjectID) []policy.Entry {
	out := entries[:0:0]
	for _, e := range entries {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

// ApplyRepair records a repair application for entry id now.
func (l *Lifecycle) ApplyRepair(ctx context.Context, entryID string, in ApplicationRequest) (policy.Entry, policy.Repair, error) {
	e, err := l.entries.store.GetEntry(ctx, entryID)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	h, err := l.history(ctx, e)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	id, err := newID("rep_")
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	now := l.now()
	ne, err := l.catalog.ApplyRepair(e, id, policy.ApplicationInput{Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs}, h, now)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	if ne, err = l.save(ctx, ActRepairApplied, id, actDetails(e, "repair_id", id), e, ne, now); err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	return ne, ne.Repairs[len(ne.Repairs)-1], nil
}

// RepairReviewInput is the review (核查/复核) of a repair.
type RepairReviewInput struct {
	Finding        string `json:"finding"`
	Recommendation string `json:"recommendation"`
}

// ReviewRepair records the review of repair id now.
func (l *Lifecycle) ReviewRepair(ctx context.Context, repID string, in RepairReviewInput) (policy.Entry, policy.Repair, error) {
	e, err := l.entryWithRepair(ctx, repID)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	now := l.now()
	ne, err := l.catalog.ReviewRepair(e, repID, in.Finding, in.Recommendation, now)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	if ne, err = l.save(ctx, ActRepairReviewed, repID, actDetails(e, "repair_id", repID, "recommendation", in.Recommendation), e, ne, now); err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	return ne, repairOf(ne, repID), nil
}

// DecisionInput approves or refuses a repair or exit application.
type DecisionInput struct {
	Decision string `json:"decision"` // "approved" or "refused"
	Note     string `json:"note,omitempty"`
}

func (in DecisionInput) approve() (bool, error) {
	switch in.Decision {
	case string(policy.StateApproved):
		return true, nil
	case string(policy.StateRefused):
		return false, nil
	}
	return false, fmt.Errorf("%w: decision must be \"approved\" or \"refused\"", policy.ErrInvalidDecision)
}

// DecideRepair approves or refuses repair id now; an approval outside the
// list's rule is refused with the rule named.
func (l *Lifecycle) DecideRepair(ctx context.Context, repID string, in DecisionInput) (policy.Entry, policy.Repair, error) {
	approve, err := in.approve()
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	e, err := l.entryWithRepair(ctx, repID)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	h, err := l.history(ctx, e)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	now := l.now()
	ne, err := l.catalog.DecideRepair(e, repID, approve, in.Note, h, now)
	if err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	if ne, err = l.save(ctx, ActRepairDecided, repID, actDetails(e, "repair_id", repID, "decision", in.Decision), e, ne, now); err != nil {
		return policy.Entry{}, policy.Repair{}, err
	}
	return ne, repairOf(ne, repID), nil
}

func (l *Lifecycle) entryWithRepair(ctx context.Context, id string) (policy.Entry, error) {
	e, err := l.store.EntryByProceeding(ctx, id)
	if err != nil {
		return policy.Entry{}, fmt.Errorf("repair %s: %w", id, err)
	}
	if !slices.ContainsFunc(e.Repairs, func(r policy.Repair) bool { return r.ID == id }) {
		return policy.Entry{}, fmt.Errorf("repair %s: %w", id, ErrNotFound)
	}
	return e, nil
}

func repairOf(e policy.Entry, id string) policy.Repair {
	return e.Repairs[slices.IndexFunc(e.Repairs, func(r policy.Repair) bool { return r.ID == id })]
}

// ---------------------------------------------------------------- exits

// ApplyExit records an exit application for entry id now.
func (l *Lifecycle) ApplyExit(ctx context.Context, entryID string, in ApplicationRequest) (policy.Entry, policy.ExitApplication, error) {
	e, err := l.entries.store.GetEntry(ctx, entryID)
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	id, err := newID("exit_")
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	now := l.now()
	ne, err := l.catalog.ApplyExit(e, id, policy.ApplicationInput{Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs}, now)
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	if ne, err = l.save(ctx, ActExitApplied, id, actDetails(e, "exit_id", id), e, ne, now); err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	return ne, ne.Exits[len(ne.Exits)-1], nil
}

// DecideExit approves or refuses exit application id now.
func (l *Lifecycle) DecideExit(ctx context.Context, exitID string, in DecisionInput) (policy.Entry, policy.ExitApplication, error) {
	approve, err := in.approve()
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	e, err := l.store.EntryByProceeding(ctx, exitID)
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, fmt.Errorf("exit application %s: %w", exitID, err)
	}
	i := slices.IndexFunc(e.Exits, func(x policy.ExitApplication) bool { return x.ID == exitID })
	if i < 0 {
		return policy.Entry{}, policy.ExitApplication{}, fmt.Errorf("exit application %s: %w", exitID, ErrNotFound)
	}
	now := l.now()
	ne, err := l.catalog.DecideExit(e, exitID, approve, in.Note, now)
	if err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	if ne, err = l.save(ctx, ActExitDecided, exitID, actDetails(e, "exit_id", exitID, "decision", in.Decision), e, ne, now); err != nil {
		return policy.Entry{}, policy.ExitApplication{}, err
	}
	return ne, ne.Exits[i], nil
}

// ---------------------------------------------------------------- violation records

// ViolationInput is a violation record (不良信用记录) as a department
// reports it.
type ViolationInput struct {
	Subject             string    `json:"subject_id"`
	Item                string    `json:"item"`
	DecidedAt           time.Time `json:"decided_at"`
	Department          string    `json:"department"`
	Reference           string    `json:"reference"`
	EvidenceRefs        []string  `json:"evidence_refs,omitempty"`
	ParticularlySerious bool      `json:"particularly_serious,omitempty"`
}

// ViolationResult is what recording a violation did.
type ViolationResult struct {
	Record   policy.ViolationRecord
	Standing policy.Standing
	// Derived is the entry the record put the subject on, if any.
	Derived *policy.Entry
	// Closed are the entries the derived one superseded or removed.
	Closed []policy.Entry
}

// RecordViolation stores a violation record and, in the same transaction,
// the entry its rule set or an escalation rule derives, closing the
// entries it supersedes.
func (l *Lifecycle) RecordViolation(ctx context.Context, in ViolationInput) (ViolationResult, error) {
	subject, err := policy.ParseSubjectID(in.Subject)
	if err != nil {
		return ViolationResult{}, fmt.Errorf("subject_id: %w", err)
	}
	defer l.lock(subject.Value)()
	rid, err := newID("vr_")
	if err != nil {
		return ViolationResult{}, err
	}
	now := l.now()
	rec, err := l.catalog.PrepareViolation(policy.ViolationRecord{
		ID: rid, Subject: subject, Item: in.Item, DecidedAt: in.DecidedAt.Truncate(time.Microsecond), RecordedAt: now,
		Department: in.Department, Reference: in.Reference, EvidenceRefs: in.EvidenceRefs, ParticularlySerious: in.ParticularlySerious,
	})
	if err != nil {
		return ViolationResult{}, err
	}
	records, err := l.records(ctx, subject.Value, time.Time{})
	if err != nil {
		return ViolationResult{}, err
	}
	all, err := l.entries.store.EntriesAffecting(ctx, subject.Value)
	if err != nil {
		return ViolationResult{}, fmt.Errorf("look up entries: %w", err)
	}
	entries := own(all, subject)
	eid, err := newID("ent_")
	if err != nil {
		return ViolationResult{}, err
	}
	d, err := l.catalog.Derive(rec, append(records, rec), entries, eid, now)
	if err != nil {
		return ViolationResult{}, err
	}
	ch := EntryChanges{Records: []policy.ViolationRecord{rec}}
	res := ViolationResult{Record: rec, Standing: d.Standing}
	touched := []string{subject.Value}
	if d.New != nil {
		ch.Insert = append(ch.Insert, *d.New)
		res.Derived = d.New
		touched = append(touched, affected(*d.New)...)
	}
	var closed closedProceedings
	for _, c := range d.Closed {
		e := c.Entry
		if i := slices.IndexFunc(entries, func(o policy.Entry) bool { return o.ID == e.ID }); i >= 0 {
			closed.add(entries[i], e)
		}
		e.UpdatedAt, e.Version = now, e.Version+1
		ch.Update = append(ch.Update, e)
		res.Closed = append(res.Closed, e)
		touched = append(touched, affected(e)...)
	}
	details := map[string]any{"record_id": rec.ID, "subject_id": subject.Value, "item": rec.Item, "rule_set": rec.RuleSet,
		"points": d.Standing.Points, "closed_entries": len(d.Closed)}
	closed.describe(details)
	if d.New != nil {
		details["derived_entry_id"], details["derived_list"] = d.New.ID, d.New.List
	}
	err = l.entries.audit.do(ctx, ActViolationRecorded, rec.ID, details, func() error {
		return l.store.ApplyEntryChanges(ctx, ch)
	})
	if err != nil {
		return ViolationResult{}, fmt.Errorf("store violation record: %w", err)
	}
	if d.New != nil || len(d.Closed) > 0 {
		l.entries.changed(touched...)
	}
	return res, nil
}

// SubjectViolations is a subject's records and its standing in every rule
// set with levels, now.
func (l *Lifecycle) SubjectViolations(ctx context.Context, rawSubject string) (policy.SubjectID, []policy.ViolationRecord, []policy.Standing, error) {
	subject, err := policy.ParseSubjectID(rawSubject)
	if err != nil {
		return policy.SubjectID{}, nil, nil, fmt.Errorf("subject_id: %w", err)
	}
	records, err := l.records(ctx, subject.Value, time.Time{})
	if err != nil {
		return policy.SubjectID{}, nil, nil, err
	}
	standings, err := standingsOf(l.catalog, records, l.now())
	return subject, records, standings, err
}

// standingsOf computes the subject's standing in every rule set for which
// it has records.
func standingsOf(c *policy.Catalog, records []policy.ViolationRecord, at time.Time) ([]policy.Standing, error) {
	var out []policy.Standing
	for _, rs := range c.RuleSets() {
		if len(rs.Levels) == 0 || !slices.ContainsFunc(records, func(r policy.ViolationRecord) bool { return r.RuleSet == rs.ID }) {
			continue
		}
		st, err := c.Standing(rs.ID, records, at)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ---------------------------------------------------------------- cross-list rules on creation

// crossListed is what the catalogue's cross-list rules make of new
// entries: the entries to insert (one the batch itself closes, closed),
// the stored entries they close, and the objections, repairs and exit
// applications of those that the closures close (policy.Close).
type crossListed struct {
	entries []policy.Entry
	updates []policy.Entry
	closed  closedProceedings
}

// describe adds to an act's details the stored entries the act closes
// and the proceedings it closes with them, so that its evidence record
// names them: their ids, or past maxImportIDs how many.
func (x crossListed) describe(d map[string]any) map[string]any {
	name := func(key string, ids []string) {
		switch {
		case len(ids) == 0:
		case len(ids) > maxImportIDs:
			d[key+"_count"] = len(ids)
		default:
			d[key] = ids
		}
	}
	ids := make([]string, 0, len(x.updates))
	for _, u := range x.updates {
		ids = append(ids, u.ID)
	}
	name("closed_entries", ids)
	name("closed_objections", x.closed.objections)
	name("closed_repairs", x.closed.repairs)
	name("closed_exits", x.closed.exits)
	return d
}

// insert stores new entries (from Create or Import) as crossList made
// them: entering a list that removes others closes the subject's entries
// there in the same transaction.
func (s *Entries) insert(ctx context.Context, x crossListed) error {
	if len(x.updates) == 0 {
		return s.store.InsertEntries(ctx, x.entries)
	}
	if err := s.store.ApplyEntryChanges(ctx, EntryChanges{Insert: x.entries, Update: x.updates}); err != nil {
		return err
	}
	s.changedEntries(x.updates)
	return nil
}

// changedEntries calls the change hook with the subjects entries affect.
func (s *Entries) changedEntries(entries []policy.Entry) {
	var touched []string
	for _, u := range entries {
		touched = append(touched, affected(u)...)
	}
	s.changed(touched...)
}

// crossList applies the catalogue's cross-list rules to new entries: it
// returns them (an entry the batch itself closes, closed) and the stored
// entries they close, updated. An entry that a rule of an existing entry
// forbids is refused; a rule refusing an entry is a LineError
// (ImportError) when lines (each entry's line) is not nil.
func (s *Entries) crossList(ctx context.Context, entries []policy.Entry, lines []int) (crossListed, error) {
	var (
		updates []policy.Entry
		shut    closedProceedings
		bad     []LineError
		seen    = map[string][]policy.Entry{} // subject → its entries, stored then batch
		now     = s.now().UTC().Truncate(time.Microsecond)
	)
	for i := range entries {
		n := &entries[i]
		if !s.catalog.CrossListInvolved(n.List) {
			continue
		}
		subj := n.Subject.Value
		if _, ok := seen[subj]; !ok {
			all, err := s.store.EntriesAffecting(ctx, subj)
			if err != nil {
				return crossListed{}, fmt.Errorf("look up entries: %w", err)
			}
			seen[subj] = own(all, n.Subject)
		}
		changes, err := s.catalog.OnEnter(*n, seen[subj])
		if err != nil {
			if lines == nil {
				return crossListed{}, err
			}
			line := i + 1
			if i < len(lines) {
				line = lines[i]
			}
			bad = append(bad, LineError{Line: line, Err: err})
			continue
		}
		for _, c := range changes {
			closed := c.Entry
			list := seen[subj]
			k := slices.IndexFunc(list, func(e policy.Entry) bool { return e.ID == closed.ID })
			// A proceeding is closed once: add names only those open
			// before this closure.
			shut.add(list[k], closed)
			if j := slices.IndexFunc(entries, func(e policy.Entry) bool { return e.ID == closed.ID }); j >= 0 {
				entries[j] = closed // closing an entry of this same batch
			} else {
				closed.UpdatedAt, closed.Version = now, closed.Version+1
				if k := slices.IndexFunc(updates, func(e policy.Entry) bool { return e.ID == closed.ID }); k >= 0 {
					closed.Version = updates[k].Version
					updates[k] = closed
				} else {
					updates = append(updates, closed)
				}
			}
			list[k] = closed
		}
		seen[subj] = append(seen[subj], *n)
	}
	if len(bad) > 0 {
		return crossListed{}, &ImportError{Lines: bad}
	}
	return crossListed{entries: entries, updates: updates, closed: shut}, nil
}
