package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the lifecycle of an entry after it is published:
// objections (异议), credit repair (信用修复), exit at expiry (移出) and the
// cross-list rules (交叉对比、转入). Every transition is a pure function
// from an entry, a request and a time to the changed entry, so that the
// service layer only loads, calls and stores, and so that the rules can be
// tested with exact dates.

// Sentinel errors of the lifecycle. Errors that refuse a request because of
// a catalogue rule are *RuleError values wrapping one of these, so that the
// answer can name the rule.
var (
	// ErrEntryNotInForce: the entry has expired, been repaired or exited;
	// it can no longer be objected to, repaired or exited.
	ErrEntryNotInForce = errors.New("entry is not in force")
	// ErrObjectionOpen: the entry already has an undecided objection.
	ErrObjectionOpen = errors.New("entry already has an open objection")
	// ErrAlreadyDecided: the objection, repair or exit application has
	// already been decided.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrInvalidDecision: the decision is not one of the allowed values or
	// lacks what it needs (a correction, a note).
	ErrInvalidDecision = errors.New("invalid decision")
	// ErrInvalidApplication: an objection, repair or exit application
	// breaks a rule of its shape (missing grounds, too many references).
	ErrInvalidApplication = errors.New("invalid application")
	// ErrWrongState: the step does not follow from the current state
	// (e.g. a repair decided before it was reviewed).
	ErrWrongState = errors.New("not allowed in the current state")
	// ErrRepairNotAllowed: the list's repair rule refuses this repair.
	ErrRepairNotAllowed = errors.New("repair not allowed")
	// ErrExitNotAllowed: the list's exit rule refuses this application.
	ErrExitNotAllowed = errors.New("exit not allowed")
	// ErrCrossListConflict: a cross-list rule forbids the entry (a red
	// entry for a subject on a black list that removes it from red lists).
	ErrCrossListConflict = errors.New("cross-list rule conflict")
)

// RuleError is a refusal by a named catalogue rule. Rule is the rule's
// path in the catalogue (list id, rule, index), e.g.
// "urban_management_black.repair.locks[1]".
type RuleError struct {
	Rule   string
	Source string // the section of the source texts
	Detail string
	Err    error
}

func (e *RuleError) Error() string {
	s := fmt.Sprintf("%v: rule %s", e.Err, e.Rule)
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *RuleError) Unwrap() error { return e.Err }

// ---------------------------------------------------------------- rules

// RepairRule is a list's rule for credit repair (信用修复).
type RepairRule struct {
	// ReviewWorkingDays or ReviewDays is the review deadline from the
	// application (15 working days, 篇十三 第十八条; 20 days, 篇四 第十六条).
	ReviewWorkingDays int `yaml:"review_working_days,omitempty" json:"review_working_days,omitempty"`
	ReviewDays        int `yaml:"review_days,omitempty" json:"review_days,omitempty"`
	// RequiresReview: a repair may be approved only after a review
	// (复核) has been recorded.
	RequiresReview bool `yaml:"requires_review,omitempty" json:"requires_review,omitempty"`
	// Locks forbid repair for a period after publication, by how many
	// times the subject has been on this list (首次/再次).
	Locks []RepairLock `yaml:"locks,omitempty" json:"locks,omitempty"`
	// NeverIfParticularlySerious: 情节特别严重的不予修复.
	NeverIfParticularlySerious bool `yaml:"never_if_particularly_serious,omitempty" json:"never_if_particularly_serious,omitempty"`
	// RequiresNoNewRecords names a rule set: a repair is refused when the
	// subject has a violation record of that set decided since the entry
	// was published (如无新增不良信用记录, 篇四 第十六条).
	RequiresNoNewRecords string `yaml:"requires_no_new_records,omitempty" json:"requires_no_new_records,omitempty"`
	Source               string `yaml:"source" json:"source"`
}

// RepairLock forbids repair within Period of publication for the
// FromListing-th listing of a subject on the list and later ones (the
// lock with the highest FromListing not above the count applies).
type RepairLock struct {
	FromListing int      `yaml:"from_listing" json:"from_listing"`
	Period      Validity `yaml:"period" json:"period"`
	Source      string   `yaml:"source" json:"source"`
}

// ExitRule is a list's rule for leaving it at expiry (移出): the entry does
// not lapse by itself; the subject applies within the working days before
// expiry and the entry ends at expiry once the exit is approved
// (篇十 第七条(五), 篇十二 第七条).
type ExitRule struct {
	ApplyWithinWorkingDays int    `yaml:"apply_within_working_days" json:"apply_within_working_days"`
	Source                 string `yaml:"source" json:"source"`
}

// Escalation moves a subject to another list when a new act of the named
// severities, in the named rule set, is decided while its entry is in
// force (篇七 第七条 转入黑名单; 篇十三 第七条(三) 升级).
type Escalation struct {
	To       string   `yaml:"to" json:"to"`
	RuleSet  string   `yaml:"rule_set" json:"rule_set"`
	OnNewAct []string `yaml:"on_new_act" json:"on_new_act"`
	Source   string   `yaml:"source" json:"source"`
}

// ---------------------------------------------------------------- records on an entry

// Who may file an objection on the subject's behalf.
const (
	FiledByAdministrator         = "administrator"
	FiledByOriginatingDepartment = "originating_department"
)

// Objection decisions.
const (
	DecisionUpheld   = "upheld"
	DecisionRejected = "rejected"
	// DecisionClosedByRevocation is not a decision on the merits: the
	// entry was revoked (by an administrator, a cross-list rule, an
	// escalation) while the objection was open, so nothing is left to
	// verify. The revocation records it, with decided_at the revocation
	// time and a note naming the revocation (see CloseObjections).
	DecisionClosedByRevocation = "closed_by_revocation"
)

// Remedies of an upheld objection.
const (
	RemedyRevoked   = "revoked"
	RemedyCorrected = "corrected"
)

// ApplicationState is the state of a repair or exit application.
type ApplicationState string

// Application states.
const (
	StateApplied  ApplicationState = "applied"
	StateReviewed ApplicationState = "reviewed"
	StateApproved ApplicationState = "approved"
	StateRefused  ApplicationState = "refused"
	// StateClosedByRevocation is, like DecisionClosedByRevocation for an
	// objection, not a decision on the merits: the entry was revoked while
	// the application was open (applied or reviewed), so nothing is left to
	// repair or exit from. The revocation records it, with decided_at the
	// revocation time and a note naming the revocation (CloseRepairs,
	// CloseExits); a review already recorded is kept.
	StateClosedByRevocation ApplicationState = DecisionClosedByRevocation
)

// pending reports whether an application still awaits a decision at `at`:
// applied or reviewed, or closed by a revocation that is still ahead (a
// revocation scheduled at a pending entry's publication). A revocation at
// `at` closes those, moving one a later revocation closed to `at`.
func pending(state ApplicationState, decided *time.Time, at time.Time) bool {
	switch state {
	case StateApplied, StateReviewed:
		return true
	case StateClosedByRevocation:
		return decided != nil && decided.After(at)
	}
	return false
}

// Repair is an application for credit repair (信用修复) and its outcome. An
// approved repair ends the entry's measures and public display from its
// decision; the record stays (篇十三 第十四条).
type Repair struct {
	ID           string     `json:"id"`
	AppliedAt    time.Time  `json:"applied_at"`
	Grounds      string     `json:"grounds"`
	EvidenceRefs []string   `json:"evidence_refs,omitempty"`
	DueAt        *time.Time `json:"due_at,omitempty"`
	// DueProvisional: a working-day DueAt runs into a year the calendar did
	// not cover when it was computed (see Objection.DueProvisional).
	DueProvisional bool             `json:"due_provisional,omitempty"`
	State          ApplicationState `json:"state"`
	ReviewedAt     *time.Time       `json:"reviewed_at,omitempty"`
	Finding        string           `json:"finding,omitempty"`
	Recommendation string           `json:"recommendation,omitempty"`
	DecidedAt      *time.Time       `json:"decided_at,omitempty"`
	Note           string           `json:"note,omitempty"`
}

// ExitApplication is an application to leave a list at expiry (移出申请).
type ExitApplication struct {
	ID           string           `json:"id"`
	AppliedAt    time.Time        `json:"applied_at"`
	Grounds      string           `json:"grounds"`
	EvidenceRefs []string         `json:"evidence_refs,omitempty"`
	State        ApplicationState `json:"state"`
	DecidedAt    *time.Time       `json:"decided_at,omitempty"`
	Note         string           `json:"note,omitempty"`
}

// Derivation is the computation trail of an entry credgate derived itself:
// from points (积分) or by escalation. It says which rule, which records and
// which entry led to it.
type Derivation struct {
	Rule       string    `json:"rule"`
	Source     string    `json:"source"`
	RuleSet    string    `json:"rule_set,omitempty"`
	Points     int       `json:"points,omitempty"`
	Records    []string  `json:"records,omitempty"`
	FromEntry  string    `json:"from_entry,omitempty"`
	Trail      []string  `json:"trail"`
	ComputedAt time.Time `json:"computed_at"`
}

// Cause says which rule ended an entry, when a rule rather than a person
// did: a cross-list removal, an escalation, a points upgrade, an upheld
// objection.
type Cause struct {
	Rule        string `json:"rule"`
	Source      string `json:"source,omitempty"`
	EntryID     string `json:"entry_id,omitempty"`
	ObjectionID string `json:"objection_id,omitempty"`
}

// ---------------------------------------------------------------- time

// Suspended is how long the entry's measures were suspended by objections
// that were decided and did not end the entry (rejected, or upheld with a
// correction): the validity end moves later by as much (篇二 (三)2: the
// punishment period continues counting from the rejection).
func (e *Entry) Suspended() time.Duration {
	var d time.Duration
	for _, o := range e.Objections {
		if o.DecidedAt == nil || (o.Decision == DecisionUpheld && o.Remedy != RemedyCorrected) {
			continue
		}
		from := o.FiledAt
		if from.Before(e.PublishedAt) {
			from = e.PublishedAt
		}
		if o.DecidedAt.After(from) {
			d += o.DecidedAt.Sub(from)
		}
	}
	return d
}

// repairedAt is when an approved repair took effect, or nil.
func (e *Entry) repairedAt() *time.Time {
	for i := range e.Repairs {
		if e.Repairs[i].State == StateApproved {
			return e.Repairs[i].DecidedAt
		}
	}
	return nil
}

// exitAt is when an approved exit ends the entry: at expiry, or at the
// approval when that comes later. nil without an approved exit.
func (e *Entry) exitAt() *time.Time {
	for i := range e.Exits {
		x := &e.Exits[i]
		if x.State != StateApproved || x.DecidedAt == nil {
			continue
		}
		at := *x.DecidedAt
		if e.ValidUntil != nil && e.ValidUntil.After(at) {
			at = *e.ValidUntil
		}
		return &at
	}
	return nil
}

// InForceAt reports whether the entry counts at t: its measures apply or
// are only suspended by an objection.
func (e *Entry) InForceAt(t time.Time) bool {
	switch e.StatusAt(t) {
	case StatusActive, StatusUnderObjection, StatusAwaitingExit:
		return true
	}
	return false
}

// OpenObjection returns the undecided objection, if any.
func (e *Entry) OpenObjection() *Objection {
	for i := range e.Objections {
		if e.Objections[i].DecidedAt == nil {
			return &e.Objections[i]
		}
	}
	return nil
}

// Limits of lifecycle records, so an entry cannot grow without bound.
const (
	MaxObjections = 20
	MaxRepairs    = 20
	MaxExits      = 20
)

// ApplicationInput is the common shape of an objection, a repair or an exit
// application.
type ApplicationInput struct {
	Grounds      string
	EvidenceRefs []string
}

func (in ApplicationInput) validate() (ApplicationInput, error) {
	in.Grounds = strings.TrimSpace(in.Grounds)
	if in.Grounds == "" {
		return in, fmt.Errorf("%w: grounds are required", ErrInvalidApplication)
	}
	if len(in.Grounds) > MaxTextLen {
		return in, fmt.Errorf("%w: grounds are longer than %d bytes", ErrInvalidApplication, MaxTextLen)
	}
	if p := TextProblem(in.Grounds); p != "" {
		return in, fmt.Errorf("%w: grounds %s", ErrInvalidApplication, p)
	}
	if len(in.EvidenceRefs) > MaxEvidenceRefs {
		return in, fmt.Errorf("%w: more than %d evidence_refs", ErrInvalidApplication, MaxEvidenceRefs)
	}
	for i, r := range in.EvidenceRefs {
		if strings.TrimSpace(r) == "" || len(r) > MaxTextLen {
			return in, fmt.Errorf("%w: an evidence reference is empty or longer than %d bytes", ErrInvalidApplication, MaxTextLen)
		}
		if p := TextProblem(r); p != "" {
			return in, fmt.Errorf("%w: evidence_refs[%d] %s", ErrInvalidApplication, i, p)
		}
	}
	in.EvidenceRefs = slices.Clone(in.EvidenceRefs)
	return in, nil
}

// ---------------------------------------------------------------- objections

// FileObjection records an objection filed at `at` on the subject's behalf
// by filedBy (FiledByAdministrator or FiledByOriginatingDepartment). The
// entry is "under objection" and its measures are suspended from that
// moment. The verification deadline is the list's objection_working_days
// (15 when the list declares none, 篇五(二十一)) counted on the calendar.
func (c *Catalog) FileObjection(e Entry, id, filedBy string, in ApplicationInput, at time.Time) (Entry, error) {
	if filedBy != FiledByAdministrator && filedBy != FiledByOriginatingDepartment {
		return Entry{}, fmt.Errorf("%w: filed_by must be %q or %q", ErrInvalidApplication, FiledByAdministrator, FiledByOriginatingDepartment)
	}
	in, err := in.validate()
	if err != nil {
		return Entry{}, err
	}
	if err := objectable(&e, at); err != nil {
		return Entry{}, err
	}
	if len(e.Objections) >= MaxObjections {
		return Entry{}, fmt.Errorf("%w: the entry already has %d objections", ErrInvalidApplication, MaxObjections)
	}
	days := DefaultObjectionWorkingDays
	if l, ok := c.listByID[e.List]; ok && l.ObjectionWorkingDays > 0 {
		days = l.ObjectionWorkingDays
	}
	due := c.calendar.Deadline(at, days)
	e.Objections = append(slices.Clone(e.Objections), Objection{
		ID: id, FiledAt: at, FiledBy: filedBy, Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs, DueAt: &due,
		DueProvisional: c.calendar.Provisional(at, due),
	})
	if e.RevokedAt != nil {
		// A revocation already scheduled (a cross-list closure at a
		// pending entry's publication) ends this objection too: it
		// suspends the measures until then, and is not left open after.
		e = closeProceedings(e, *e.RevokedAt, e.RevocationReason)
	}
	return e, nil
}

// CloseObjections returns objs with every objection still undecided
// closed by a revocation of their entry at `at` for reason: decision
// DecisionClosedByRevocation, decided_at `at` (the filing time for one
// filed later), a note naming the revocation. One a later revocation
// closed is moved to `at`. The measures were suspended while it was open
// (篇三(十六)); from `at` the entry is revoked, so nothing is left to verify,
// and the answer the subject is owed (篇十三 第十条) is the revocation. objs
// is not modified.
func CloseObjections(objs []Objection, at time.Time, reason string) []Objection {
	var out []Objection
	for i, o := range objs {
		open := o.DecidedAt == nil
		moved := o.Decision == DecisionClosedByRevocation && o.DecidedAt != nil && o.DecidedAt.After(at)
		if !open && !moved {
			continue
		}
		if out == nil {
			out = slices.Clone(objs)
		}
		d := at
		if d.Before(o.FiledAt) {
			d = o.FiledAt
		}
		c := &out[i]
		c.DecidedAt, c.Decision, c.Remedy = &d, DecisionClosedByRevocation, ""
		c.Note = revocationNote(at, reason)
	}
	if out == nil {
		return objs
	}
	return out
}

// closeProceedings closes every objection, repair and exit application
// still open on e by its revocation at `at` for reason (CloseObjections,
// CloseRepairs, CloseExits).
func closeProceedings(e Entry, at time.Time, reason string) Entry {
	e.Objections = CloseObjections(e.Objections, at, reason)
	e.Repairs = CloseRepairs(e.Repairs, at, reason)
	e.Exits = CloseExits(e.Exits, at, reason)
	return e
}

// closedAt is when a revocation at `at` closes an application applied at
// applied and reviewed at reviewed (nil when not): at, or the last of
// those when later, so that it is never decided before it was made.
func closedAt(at, applied time.Time, reviewed *time.Time) time.Time {
	if at.Before(applied) {
		at = applied
	}
	if reviewed != nil && at.Before(*reviewed) {
		at = *reviewed
	}
	return at
}

// CloseRepairs returns rs with every repair still open (applied or
// reviewed) closed by a revocation of their entry at `at` for reason, as
// CloseObjections closes objections: state StateClosedByRevocation,
// decided_at `at` (its application or review time when later), a note
// naming the revocation; a review recorded is kept. One a later
// revocation closed is moved to `at` (pending). An approved repair ends
// the entry's measures (篇五(二十)); once the entry is revoked they have
// ended, so nothing is left to repair, and the application is not left
// pending in the administrator's queue. rs is not modified.
func CloseRepairs(rs []Repair, at time.Time, reason string) []Repair {
	var out []Repair
	for i, r := range rs {
		if !pending(r.State, r.DecidedAt, at) {
			continue
		}
		if out == nil {
			out = slices.Clone(rs)
		}
		d := closedAt(at, r.AppliedAt, r.ReviewedAt)
		out[i].State, out[i].DecidedAt, out[i].Note = StateClosedByRevocation, &d, revocationNote(at, reason)
	}
	if out == nil {
		return rs
	}
	return out
}

// CloseExits is CloseRepairs for exit applications (移出申请): once the
// entry is revoked there is nothing left to exit from (篇十二 第七条).
// xs is not modified.
func CloseExits(xs []ExitApplication, at time.Time, reason string) []ExitApplication {
	var out []ExitApplication
	for i, x := range xs {
		if !pending(x.State, x.DecidedAt, at) {
			continue
		}
		if out == nil {
			out = slices.Clone(xs)
		}
		d := closedAt(at, x.AppliedAt, nil)
		out[i].State, out[i].DecidedAt, out[i].Note = StateClosedByRevocation, &d, revocationNote(at, reason)
	}
	if out == nil {
		return xs
	}
	return out
}

// reopenRepairs undoes CloseRepairs, for an entry whose revocation is
// undone (OnVoid): each repair is open again in the state it was closed
// in (reviewed when a review is recorded), never having been decided.
// rs is not modified.
func reopenRepairs(rs []Repair) []Repair {
	var out []Repair
	for i, r := range rs {
		if r.State != StateClosedByRevocation {
			continue
		}
		if out == nil {
			out = slices.Clone(rs)
		}
		out[i].State = StateApplied
		if r.ReviewedAt != nil {
			out[i].State = StateReviewed
		}
		out[i].DecidedAt, out[i].Note = nil, ""
	}
	if out == nil {
		return rs
	}
	return out
}

// reopenExits undoes CloseExits (see reopenRepairs). xs is not modified.
func reopenExits(xs []ExitApplication) []ExitApplication {
	var out []ExitApplication
	for i, x := range xs {
		if x.State != StateClosedByRevocation {
			continue
		}
		if out == nil {
			out = slices.Clone(xs)
		}
		out[i].State, out[i].DecidedAt, out[i].Note = StateApplied, nil, ""
	}
	if out == nil {
		return xs
	}
	return out
}

// reopenObjections undoes CloseObjections, for an entry whose revocation
// is undone (OnVoid): the objections are open again, never having been
// decided on their merits. objs is not modified.
func reopenObjections(objs []Objection) []Objection {
	var out []Objection
	for i, o := range objs {
		if o.Decision != DecisionClosedByRevocation {
			continue
		}
		if out == nil {
			out = slices.Clone(objs)
		}
		out[i].DecidedAt, out[i].Decision, out[i].Note = nil, "", ""
	}
	if out == nil {
		return objs
	}
	return out
}

// revocationNote is the note of an objection, repair or exit application
// closed by a revocation: the time and the revocation's reason, cut to
// MaxTextLen bytes.
func revocationNote(at time.Time, reason string) string {
	n := "closed without a decision on its merits: the entry was revoked at " + at.UTC().Format(time.RFC3339Nano)
	if reason = strings.TrimSpace(reason); reason != "" {
		n += ": " + reason
	}
	if len(n) > MaxTextLen {
		n = strings.ToValidUTF8(n[:MaxTextLen-len("…")], "") + "…"
	}
	return n
}

// DefaultObjectionWorkingDays is the verification deadline where a list
// declares none (篇五(二十一), 篇七 第五条(七)).
const DefaultObjectionWorkingDays = 15

func objectable(e *Entry, at time.Time) error {
	switch e.StatusAt(at) {
	case StatusRevoked:
		return fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	case StatusExpired, StatusRepaired:
		return fmt.Errorf("entry %s is %s: %w", e.ID, e.StatusAt(at), ErrEntryNotInForce)
	}
	if e.OpenObjection() != nil {
		return fmt.Errorf("entry %s: %w", e.ID, ErrObjectionOpen)
	}
	return nil
}

// ObjectionDecision is how the originating department decides an
// objection.
type ObjectionDecision struct {
	Decision string // DecisionUpheld or DecisionRejected
	// Remedy of an upheld objection: RemedyRevoked (default) revokes the
	// entry; RemedyCorrected keeps it with the corrections the caller
	// applies, and measures resume like after a rejection.
	Remedy string
	Note   string
}

// DecideObjection decides the objection objID at `at`.
//   - rejected: measures resume and the validity end moves later by the
//     time spent suspended (篇二 (三)2).
//   - upheld, revoked: the entry is revoked from `at`, the cause recorded
//     (reputation restored, 篇十三 第十一条).
//   - upheld, corrected: the entry stays, corrected by the caller; measures
//     resume and the validity end moves like after a rejection.
//
// The validity end is recomputed by PrepareEntry; callers pass the result
// through it (the service does).
func (c *Catalog) DecideObjection(e Entry, objID string, d ObjectionDecision, at time.Time) (Entry, error) {
	d.Note = strings.TrimSpace(d.Note)
	if len(d.Note) > MaxTextLen {
		return Entry{}, fmt.Errorf("%w: note is longer than %d bytes", ErrInvalidDecision, MaxTextLen)
	}
	if p := TextProblem(d.Note); p != "" {
		return Entry{}, fmt.Errorf("%w: note %s", ErrInvalidDecision, p)
	}
	switch d.Decision {
	case DecisionRejected:
		if d.Remedy != "" {
			return Entry{}, fmt.Errorf("%w: a rejection has no remedy", ErrInvalidDecision)
		}
	case DecisionUpheld:
		if d.Remedy == "" {
			d.Remedy = RemedyRevoked
		}
		if d.Remedy != RemedyRevoked && d.Remedy != RemedyCorrected {
			return Entry{}, fmt.Errorf("%w: remedy must be %q or %q", ErrInvalidDecision, RemedyRevoked, RemedyCorrected)
		}
	default:
		return Entry{}, fmt.Errorf("%w: decision must be %q or %q", ErrInvalidDecision, DecisionUpheld, DecisionRejected)
	}
	if e.RevokedAt != nil && !at.Before(*e.RevokedAt) {
		return Entry{}, fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	}
	i := slices.IndexFunc(e.Objections, func(o Objection) bool { return o.ID == objID })
	if i < 0 {
		return Entry{}, fmt.Errorf("objection %s not on entry %s: %w", objID, e.ID, ErrInvalidDecision)
	}
	if e.Objections[i].DecidedAt != nil {
		return Entry{}, fmt.Errorf("objection %s: %w", objID, ErrAlreadyDecided)
	}
	if at.Before(e.Objections[i].FiledAt) {
		return Entry{}, fmt.Errorf("%w: decided before it was filed", ErrInvalidDecision)
	}
	e.Objections = slices.Clone(e.Objections)
	o := &e.Objections[i]
	o.DecidedAt, o.Decision, o.Note = &at, d.Decision, d.Note
	if d.Decision == DecisionUpheld {
		o.Remedy = d.Remedy
		if d.Remedy == RemedyRevoked {
			e.RevokedAt = &at
			e.RevocationReason = "objection " + objID + " upheld"
			if d.Note != "" {
				e.RevocationReason += ": " + d.Note
			}
			e.RevocationCause = &Cause{Rule: RuleObjectionUpheld, Source: "篇二 (三)2; 篇十三 第十一条", ObjectionID: objID}
			// A repair or exit application still open ends with the
			// entry, as with any revocation.
			e = closeProceedings(e, at, e.RevocationReason)
		}
	}
	return e, nil
}

// ---------------------------------------------------------------- repair

// RepairHistory is what a repair decision needs beyond the entry: the
// subject's other entries (to count listings) and its violation records
// (for "no new records").
type RepairHistory struct {
	Entries []Entry
	Records []ViolationRecord
}

// ApplyRepair records an application for repair at `at`. It is refused,
// with the rule named, when the list provides no repair or the rule
// forbids it at that time.
func (c *Catalog) ApplyRepair(e Entry, id string, in ApplicationInput, h RepairHistory, at time.Time) (Entry, error) {
	in, err := in.validate()
	if err != nil {
		return Entry{}, err
	}
	if err := c.repairable(&e, h, at); err != nil {
		return Entry{}, err
	}
	for _, r := range e.Repairs {
		if pending(r.State, r.DecidedAt, at) {
			return Entry{}, fmt.Errorf("entry %s has repair %s pending: %w", e.ID, r.ID, ErrWrongState)
		}
	}
	if len(e.Repairs) >= MaxRepairs {
		return Entry{}, fmt.Errorf("%w: the entry already has %d repair applications", ErrInvalidApplication, MaxRepairs)
	}
	rule := c.listByID[e.List].Repair
	r := Repair{ID: id, AppliedAt: at, Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs, State: StateApplied}
	switch {
	case rule.ReviewWorkingDays > 0:
		due := c.calendar.Deadline(at, rule.ReviewWorkingDays)
		r.DueAt, r.DueProvisional = &due, c.calendar.Provisional(at, due)
	case rule.ReviewDays > 0:
		due := at.AddDate(0, 0, rule.ReviewDays)
		r.DueAt = &due
	}
	e.Repairs = append(slices.Clone(e.Repairs), r)
	if e.RevokedAt != nil {
		// A revocation already scheduled ends it, as it ends an objection
		// (FileObjection).
		e.Repairs = CloseRepairs(e.Repairs, *e.RevokedAt, e.RevocationReason)
	}
	return e, nil
}

// repairable checks the list's repair rule at `at`.
func (c *Catalog) repairable(e *Entry, h RepairHistory, at time.Time) error {
	switch e.StatusAt(at) {
	case StatusRevoked:
		return fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	case StatusExpired, StatusRepaired, StatusPending:
		return fmt.Errorf("entry %s is %s: %w", e.ID, e.StatusAt(at), ErrEntryNotInForce)
	}
	l, ok := c.listByID[e.List]
	if !ok || l.Repair == nil {
		return &RuleError{Rule: e.List + ".repair", Detail: "the list provides no credit repair", Err: ErrRepairNotAllowed}
	}
	rule := l.Repair
	if rule.NeverIfParticularlySerious && e.ParticularlySerious {
		return &RuleError{Rule: e.List + ".repair.never_if_particularly_serious", Source: rule.Source,
			Detail: "情节特别严重的不予修复: a particularly serious case is never repairable", Err: ErrRepairNotAllowed}
	}
	if len(rule.Locks) > 0 {
		n := listingNumber(e, h.Entries)
		li := -1
		for i, lk := range rule.Locks {
			if lk.FromListing <= n && (li < 0 || lk.FromListing > rule.Locks[li].FromListing) {
				li = i
			}
		}
		if li >= 0 {
			lk := rule.Locks[li]
			until := e.PublishedAt.AddDate(lk.Period.Years, lk.Period.Months, lk.Period.Days)
			if at.Before(until) {
				return &RuleError{Rule: fmt.Sprintf("%s.repair.locks[%d]", e.List, li), Source: lk.Source,
					Detail: fmt.Sprintf("listing no. %d on this list is not repairable within %s of publication, i.e. before %s",
						n, lk.Period, until.UTC().Format(time.RFC3339)), Err: ErrRepairNotAllowed}
			}
		}
	}
	if rule.RequiresNoNewRecords != "" {
		for _, r := range h.Records {
			if r.RuleSet == rule.RequiresNoNewRecords && !r.DecidedAt.Before(e.PublishedAt) && !r.DecidedAt.After(at) {
				return &RuleError{Rule: e.List + ".repair.requires_no_new_records", Source: rule.Source,
					Detail: fmt.Sprintf("violation record %s (decided %s) is new since publication", r.ID, r.DecidedAt.UTC().Format(time.RFC3339)),
					Err:    ErrRepairNotAllowed}
			}
		}
	}
	return nil
}

// listingNumber is the rank of e among the subject's entries on its list,
// by publication (1 for the first listing). Entries revoked because an
// objection was upheld were errors and do not count.
func listingNumber(e *Entry, others []Entry) int {
	n := 1
	for i := range others {
		o := &others[i]
		if o.ID == e.ID || o.List != e.List || o.Subject != e.Subject {
			continue
		}
		if o.Voided() {
			continue
		}
		if o.PublishedAt.Before(e.PublishedAt) || (o.PublishedAt.Equal(e.PublishedAt) && o.ID < e.ID) {
			n++
		}
	}
	return n
}

// ReviewRepair records the review (核查/复核) of repair repID.
func (c *Catalog) ReviewRepair(e Entry, repID, finding, recommendation string, at time.Time) (Entry, error) {
	finding = strings.TrimSpace(finding)
	if finding == "" || len(finding) > MaxTextLen {
		return Entry{}, fmt.Errorf("%w: a finding of at most %d bytes is required", ErrInvalidDecision, MaxTextLen)
	}
	if p := TextProblem(finding); p != "" {
		return Entry{}, fmt.Errorf("%w: finding %s", ErrInvalidDecision, p)
	}
	if recommendation != "approve" && recommendation != "refuse" {
		return Entry{}, fmt.Errorf("%w: recommendation must be \"approve\" or \"refuse\"", ErrInvalidDecision)
	}
	e.Repairs = slices.Clone(e.Repairs)
	r, err := findRepair(&e, repID)
	if err != nil {
		return Entry{}, err
	}
	if r.State != StateApplied {
		return Entry{}, fmt.Errorf("repair %s is %s: %w", repID, r.State, ErrWrongState)
	}
	if e.RevokedAt != nil && !at.Before(*e.RevokedAt) {
		// Nothing is left to repair; the application can still be refused.
		return Entry{}, fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	}
	r.State, r.ReviewedAt, r.Finding, r.Recommendation = StateReviewed, &at, finding, recommendation
	return e, nil
}

// DecideRepair approves or refuses repair repID at `at`. Approval is
// checked against the list's rule again (time has passed, records may have
// come) and refused with the rule named; a list that requires a review
// cannot approve before it.
func (c *Catalog) DecideRepair(e Entry, repID string, approve bool, note string, h RepairHistory, at time.Time) (Entry, error) {
	note = strings.TrimSpace(note)
	if len(note) > MaxTextLen {
		return Entry{}, fmt.Errorf("%w: note is longer than %d bytes", ErrInvalidDecision, MaxTextLen)
	}
	if p := TextProblem(note); p != "" {
		return Entry{}, fmt.Errorf("%w: note %s", ErrInvalidDecision, p)
	}
	if !approve && note == "" {
		return Entry{}, fmt.Errorf("%w: a refusal must give its reasons in note (篇四 第十六条)", ErrInvalidDecision)
	}
	e.Repairs = slices.Clone(e.Repairs)
	r, err := findRepair(&e, repID)
	if err != nil {
		return Entry{}, err
	}
	if r.State == StateApproved || r.State == StateRefused || r.State == StateClosedByRevocation {
		return Entry{}, fmt.Errorf("repair %s: %w", repID, ErrAlreadyDecided)
	}
	if approve {
		if e.RevokedAt != nil && !at.Before(*e.RevokedAt) {
			// Said before the review rule: a review would not help.
			return Entry{}, fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
		}
		if l, ok := c.listByID[e.List]; ok && l.Repair != nil && l.Repair.RequiresReview && r.State != StateReviewed {
			return Entry{}, &RuleError{Rule: e.List + ".repair.requires_review", Source: l.Repair.Source,
				Detail: "the repair must be reviewed before it is approved", Err: ErrWrongState}
		}
		if err := c.repairable(&e, h, at); err != nil {
			return Entry{}, err
		}
		r.State = StateApproved
	} else {
		r.State = StateRefused
	}
	r.DecidedAt, r.Note = &at, note
	return e, nil
}

func findRepair(e *Entry, id string) (*Repair, error) {
	for i := range e.Repairs {
		if e.Repairs[i].ID == id {
			return &e.Repairs[i], nil
		}
	}
	return nil, fmt.Errorf("repair %s not on entry %s: %w", id, e.ID, ErrInvalidDecision)
}

// ---------------------------------------------------------------- exit

// ApplyExit records an exit application at `at`. Only lists with an exit
// rule take them, and only from the opening of the window before expiry
// (期满前30个工作日内).
func (c *Catalog) ApplyExit(e Entry, id string, in ApplicationInput, at time.Time) (Entry, error) {
	in, err := in.validate()
	if err != nil {
		return Entry{}, err
	}
	l, ok := c.listByID[e.List]
	if !ok || l.Exit == nil {
		return Entry{}, &RuleError{Rule: e.List + ".exit", Detail: "the list's entries lapse at expiry without an application", Err: ErrExitNotAllowed}
	}
	switch e.StatusAt(at) {
	case StatusRevoked:
		return Entry{}, fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	case StatusExpired, StatusRepaired, StatusPending:
		return Entry{}, fmt.Errorf("entry %s is %s: %w", e.ID, e.StatusAt(at), ErrEntryNotInForce)
	}
	if e.ValidUntil == nil {
		return Entry{}, &RuleError{Rule: e.List + ".exit", Source: l.Exit.Source, Detail: "the entry has no expiry to exit at", Err: ErrExitNotAllowed}
	}
	opens := c.calendar.WorkingDaysBefore(*e.ValidUntil, l.Exit.ApplyWithinWorkingDays)
	if at.Before(opens) {
		return Entry{}, &RuleError{Rule: e.List + ".exit.apply_within_working_days", Source: l.Exit.Source,
			Detail: fmt.Sprintf("applications are taken within %d working days before expiry (%s), i.e. from %s%s",
				l.Exit.ApplyWithinWorkingDays, e.ValidUntil.UTC().Format(time.RFC3339), opens.Format(time.RFC3339),
				provisionalNote(c.calendar.Provisional(opens, *e.ValidUntil))),
			Err: ErrExitNotAllowed}
	}
	for _, x := range e.Exits {
		if x.State == StateApproved || pending(x.State, x.DecidedAt, at) {
			return Entry{}, fmt.Errorf("entry %s has exit application %s %s: %w", e.ID, x.ID, x.State, ErrWrongState)
		}
	}
	if len(e.Exits) >= MaxExits {
		return Entry{}, fmt.Errorf("%w: the entry already has %d exit applications", ErrInvalidApplication, MaxExits)
	}
	e.Exits = append(slices.Clone(e.Exits), ExitApplication{ID: id, AppliedAt: at, Grounds: in.Grounds, EvidenceRefs: in.EvidenceRefs, State: StateApplied})
	if e.RevokedAt != nil {
		// A revocation already scheduled ends it (see ApplyRepair).
		e.Exits = CloseExits(e.Exits, *e.RevokedAt, e.RevocationReason)
	}
	return e, nil
}

// DecideExit approves or refuses exit application exitID at `at`. An
// approved exit ends the entry at expiry, or at once when expiry has
// passed.
func (c *Catalog) DecideExit(e Entry, exitID string, approve bool, note string, at time.Time) (Entry, error) {
	note = strings.TrimSpace(note)
	if len(note) > MaxTextLen {
		return Entry{}, fmt.Errorf("%w: note is longer than %d bytes", ErrInvalidDecision, MaxTextLen)
	}
	if p := TextProblem(note); p != "" {
		return Entry{}, fmt.Errorf("%w: note %s", ErrInvalidDecision, p)
	}
	if !approve && note == "" {
		return Entry{}, fmt.Errorf("%w: a refusal must give its reasons in note", ErrInvalidDecision)
	}
	e.Exits = slices.Clone(e.Exits)
	i := slices.IndexFunc(e.Exits, func(x ExitApplication) bool { return x.ID == exitID })
	if i < 0 {
		return Entry{}, fmt.Errorf("exit application %s not on entry %s: %w", exitID, e.ID, ErrInvalidDecision)
	}
	x := &e.Exits[i]
	if x.State != StateApplied {
		return Entry{}, fmt.Errorf("exit application %s: %w", exitID, ErrAlreadyDecided)
	}
	if e.RevokedAt != nil && !at.Before(*e.RevokedAt) {
		return Entry{}, fmt.Errorf("entry %s: %w", e.ID, ErrEntryRevoked)
	}
	x.State = StateRefused
	if approve {
		x.State = StateApproved
	}
	x.DecidedAt, x.Note = &at, note
	return e, nil
}

// ---------------------------------------------------------------- cross-list rules

// EntryChange is an existing entry a rule changes, with why.
type EntryChange struct {
	Entry Entry
	Cause Cause
}

// Close ends e at `at` because of cause: the record stays, revoked, with
// the rule that ended it, and objections, repairs and exit applications
// still open are closed by the revocation (see Revoke).
func Close(e Entry, cause Cause, reason string, at time.Time) Entry {
	if e.RevokedAt != nil && !e.RevokedAt.After(at) {
		return e
	}
	e = Revoke(e, reason, at)
	e.RevocationCause = &cause
	return e
}

// Revoke ends e at `at` for reason, naming no rule (an administrator's
// revocation): the record stays (篇十三 第十四条), and objections, repairs
// and exit applications still open are closed by the revocation in the
// same change (CloseObjections, CloseRepairs, CloseExits), so that none is
// left pending on an entry nothing is left to verify, repair or exit.
func Revoke(e Entry, reason string, at time.Time) Entry {
	e.RevokedAt = &at
	e.RevocationReason = reason
	e.RevocationCause = nil
	return closeProceedings(e, at, reason)
}

// OnEnter applies the cross-list rules of a new entry's list to the
// subject's other entries (existing: the subject's entries as stored, and
// earlier entries of the same batch). It returns the entries to close, or
// a *RuleError when a rule of an existing entry forbids the new one: a red
// entry for a subject on a black list that removes it from red lists. A
// closure takes effect at the new entry's publication, or at the closed
// entry's own publication when that is later.
func (c *Catalog) OnEnter(n Entry, existing []Entry) ([]EntryChange, error) {
	nl, ok := c.listByID[n.List]
	if !ok {
		return nil, nil
	}
	var out []EntryChange
	for i := range existing {
		o := existing[i]
		if o.ID == n.ID || o.Subject != n.Subject {
			continue
		}
		ol, ok := c.listByID[o.List]
		if !ok {
			continue
		}
		// o still counts at or after n's publication?
		at := n.PublishedAt
		if o.PublishedAt.After(at) {
			at = o.PublishedAt
		}
		if !o.InForceAt(at) && o.StatusAt(at) != StatusPending {
			continue
		}
		if slices.Contains(ol.OnEnterRemoveFromKinds, nl.Kind) || slices.Contains(ol.OnEnterRemoveFromLists, nl.ID) {
			return nil, &RuleError{Rule: o.List + ".on_enter_remove_from_kinds", Source: ol.Source,
				Detail: fmt.Sprintf("the subject is on %s (entry %s), which removes it from %s lists", o.List, o.ID, nl.Kind),
				Err:    ErrCrossListConflict}
		}
		rule := ""
		switch {
		case slices.Contains(nl.OnEnterRemoveFromKinds, ol.Kind):
			rule = n.List + ".on_enter_remove_from_kinds"
		case slices.Contains(nl.OnEnterRemoveFromLists, ol.ID):
			rule = n.List + ".on_enter_remove_from_lists"
		default:
			continue
		}
		cause := Cause{Rule: rule, Source: nl.Source, EntryID: n.ID}
		out = append(out, EntryChange{
			Entry: Close(o, cause, fmt.Sprintf("removed on entering %s (entry %s), rule %s", n.List, n.ID, rule), at),
			Cause: cause,
		})
	}
	return out, nil
}

// OnVoid undoes the cross-list closures of v, an entry voided by an upheld
// objection: the entries its entering closed (their cause names v and an
// on_enter rule) are reopened, for the listing was an error and the
// subject's reputation is to be restored (篇三(十六) 恢复其信誉; 篇十三
// 第十一条 恢复其名誉). A reopened entry that another entry of the subject
// in existing would have closed had it been open is closed by that one
// instead. Closures by the derivation of points are not undone here: the
// points standing decides them.
func (c *Catalog) OnVoid(v Entry, existing []Entry) []EntryChange {
	if !v.Voided() {
		return nil
	}
	var out []EntryChange
	for i := range existing {
		o := existing[i]
		cause := o.RevocationCause
		if o.ID == v.ID || o.Subject != v.Subject || cause == nil || cause.EntryID != v.ID ||
			(!strings.HasSuffix(cause.Rule, ".on_enter_remove_from_kinds") && !strings.HasSuffix(cause.Rule, ".on_enter_remove_from_lists")) {
			continue
		}
		o.RevokedAt, o.RevocationReason, o.RevocationCause = nil, "", nil
		o.Objections = reopenObjections(o.Objections)
		o.Repairs, o.Exits = reopenRepairs(o.Repairs), reopenExits(o.Exits)
		change := EntryChange{Entry: o, Cause: Cause{Rule: RuleObjectionUpheld + ".reopen", Source: "篇三(十六); 篇十三 第十一条", EntryID: v.ID}}
		for j := range existing {
			n := existing[j]
			if n.ID == v.ID || n.ID == o.ID || n.Voided() {
				continue
			}
			if closed, err := c.OnEnter(n, []Entry{o}); err == nil && len(closed) == 1 {
				change = closed[0]
				break
			}
		}
		out = append(out, change)
	}
	return out
}

// validateListRules checks a list's lifecycle rules against the rest of
// the catalogue.
func (c *Catalog) validateListRules(l *List) error {
	if r := l.Repair; r != nil {
		if r.Source == "" {
			return errors.New("repair: source is required")
		}
		if r.ReviewWorkingDays < 0 || r.ReviewDays < 0 || (r.ReviewWorkingDays > 0 && r.ReviewDays > 0) {
			return errors.New("repair: at most one of review_working_days and review_days, not negative")
		}
		if r.ReviewWorkingDays > maxWorkingDays || r.ReviewDays > maxWorkingDays {
			return fmt.Errorf("repair: review period longer than %d days", maxWorkingDays)
		}
		seen := map[int]bool{}
		for i, lk := range r.Locks {
			if lk.FromListing < 1 || seen[lk.FromListing] {
				return fmt.Errorf("repair.locks[%d]: from_listing must be ≥ 1 and distinct", i)
			}
			seen[lk.FromListing] = true
			if lk.Period.IsZero() || lk.Period.Years < 0 || lk.Period.Months < 0 || lk.Period.Days < 0 {
				return fmt.Errorf("repair.locks[%d]: period must be positive", i)
			}
			if lk.Source == "" {
				return fmt.Errorf("repair.locks[%d]: source is required", i)
			}
		}
		if rs := r.RequiresNoNewRecords; rs != "" {
			if _, ok := c.ruleSetByID[rs]; !ok {
				return fmt.Errorf("repair.requires_no_new_records: %w %q", ErrUnknownRuleSet, rs)
			}
		}
		if l.Kind == ListRed {
			return errors.New("repair: a red list has nothing to repair")
		}
	}
	if x := l.Exit; x != nil {
		if x.ApplyWithinWorkingDays < 1 || x.ApplyWithinWorkingDays > maxWorkingDays {
			return fmt.Errorf("exit: apply_within_working_days must be 1..%d", maxWorkingDays)
		}
		if x.Source == "" {
			return errors.New("exit: source is required")
		}
		if l.Validity.IsZero() {
			return errors.New("exit: a list without validity has no expiry to exit at")
		}
	}
	for _, k := range l.OnEnterRemoveFromKinds {
		if !k.valid() {
			return fmt.Errorf("on_enter_remove_from_kinds: unknown kind %q", k)
		}
		if k == l.Kind {
			return fmt.Errorf("on_enter_remove_from_kinds: a list cannot remove its own kind %q", k)
		}
	}
	for _, id := range l.OnEnterRemoveFromLists {
		if _, ok := c.listByID[id]; !ok {
			return fmt.Errorf("on_enter_remove_from_lists: %w %q", ErrUnknownList, id)
		}
		if id == l.ID {
			return errors.New("on_enter_remove_from_lists: a list cannot remove from itself")
		}
	}
	if e := l.Escalate; e != nil {
		to, ok := c.listByID[e.To]
		if !ok {
			return fmt.Errorf("escalate.to: %w %q", ErrUnknownList, e.To)
		}
		if e.To == l.ID || kindRank(to.Kind) <= kindRank(l.Kind) {
			return fmt.Errorf("escalate.to: %s (%s) is not stronger than %s (%s)", e.To, to.Kind, l.ID, l.Kind)
		}
		for _, k := range l.SubjectKinds {
			if !slices.Contains(to.SubjectKinds, k) {
				return fmt.Errorf("escalate.to: %s does not hold %s subjects", e.To, k)
			}
		}
		rs, ok := c.ruleSetByID[e.RuleSet]
		if !ok {
			return fmt.Errorf("escalate.rule_set: %w %q", ErrUnknownRuleSet, e.RuleSet)
		}
		if len(e.OnNewAct) == 0 {
			return errors.New("escalate.on_new_act is required")
		}
		for _, sv := range e.OnNewAct {
			if !slices.ContainsFunc(rs.Severities, func(s Severity) bool { return s.ID == sv }) {
				return fmt.Errorf("escalate.on_new_act: rule set %s has no severity %q", rs.ID, sv)
			}
		}
		if e.Source == "" {
			return errors.New("escalate.source is required")
		}
	}
	return nil
}

// indexCrossList records which lists a cross-list rule involves.
func (c *Catalog) indexCrossList() {
	c.crossList = map[string]bool{}
	for i := range c.lists {
		l := &c.lists[i]
		if len(l.OnEnterRemoveFromKinds) == 0 && len(l.OnEnterRemoveFromLists) == 0 {
			continue
		}
		c.crossList[l.ID] = true
		for j := range c.lists {
			o := &c.lists[j]
			if slices.Contains(l.OnEnterRemoveFromKinds, o.Kind) || slices.Contains(l.OnEnterRemoveFromLists, o.ID) {
				c.crossList[o.ID] = true
			}
		}
	}
}

// CrossListInvolved reports whether a cross-list rule involves list, as
// the list that removes or as one removed from: only then does a new
// entry need the subject's other entries.
func (c *Catalog) CrossListInvolved(list string) bool { return c.crossList[list] }

// provisionalNote qualifies a working-day date shown in a message.
func provisionalNote(provisional bool) string {
	if provisional {
		return " (provisional: the calendar does not cover every year counted, so holidays not yet declared may move it)"
	}
	return ""
}
