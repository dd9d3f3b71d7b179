package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Answers as of a past time. Every entry write keeps the entry's version
// with the time credgate recorded it (record time) beside the times it
// carries (publication, validity, objections …: valid time). "What credgate
// knew at T" is each entry in its latest version recorded at or before T,
// and "what it would have answered" is policy.Decide on those versions at
// T. Re-running a check as of its own checked_at therefore reproduces it,
// for every change recorded before the check read its entries.

// Errors of answers as of a past time.
var (
	// ErrAsOfNotAllowed: only administrators and auditors may ask about
	// the past.
	ErrAsOfNotAllowed = errors.New("as_of is for administrators and auditors only")
	// ErrInvalidAsOf: the time asked about is in the future or missing.
	ErrInvalidAsOf = errors.New("invalid as_of time")
	// ErrHistoryUnavailable: the checker has no history store.
	ErrHistoryUnavailable = errors.New("no entry history configured")
)

// History is what answers as of a past time read.
type History interface {
	EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error)
	ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error)
}

// WithHistory lets the checker answer as of a past time from h (the store:
// never a cache, whose copies are of now).
func WithHistory(h History) CheckerOption { return func(c *Checker) { c.history = h } }

// evidenceKindStatus is the evidence kind of subject status answers.
const evidenceKindStatus evidence.Kind = "subject_status"

// asOfCaller checks that caller may ask as of req.AsOf and returns the
// caller the check is validated as: an auditor, who checks no action of
// its own, may re-run any action as of a past time.
func (c *Checker) asOfCaller(caller Caller, req CheckRequest) (Caller, error) {
	if caller.Role != RoleAdmin && caller.Role != RoleAuditor {
		return Caller{}, ErrAsOfNotAllowed
	}
	if err := c.validPast(*req.AsOf); err != nil {
		return Caller{}, err
	}
	if caller.Role == RoleAuditor {
		caller.Actions = []string{req.Action}
	}
	return caller, nil
}

func (c *Checker) validPast(at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: the time is required", ErrInvalidAsOf)
	}
	if at.After(c.now()) {
		return fmt.Errorf("%w: %s is in the future", ErrInvalidAsOf, at.UTC().Format(time.RFC3339))
	}
	if c.history == nil {
		return ErrHistoryUnavailable
	}
	return nil
}

// lookupAt reads the entries affecting subject now (past nil) or as
// credgate knew them at *past.
func (c *Checker) lookupAt(ctx context.Context, subject string, past *time.Time) (Lookup, error) {
	if past == nil {
		return c.lookup(ctx, subject)
	}
	if c.history == nil {
		return Lookup{}, ErrHistoryUnavailable
	}
	entries, err := c.history.EntriesAffectingAsOf(ctx, subject, *past)
	if err != nil {
		return Lookup{}, err
	}
	return Lookup{Entries: entries, AsOf: *past}, nil
}

// StatusEntryView is an entry as it stood at the time asked about, with
// its lifecycle: objections, repairs, exits, the trail of a derived entry
// and the rule that ended it.
type StatusEntryView struct {
	EntryView
	SubjectID           string                   `json:"subject_id"`
	EvidenceRefs        []string                 `json:"evidence_refs"`
	RevokedAt           *time.Time               `json:"revoked_at,omitempty"`
	RevocationReason    string                   `json:"revocation_reason,omitempty"`
	RevocationCause     *policy.Cause            `json:"revocation_cause,omitempty"`
	ParticularlySerious bool                     `json:"particularly_serious,omitempty"`
	Objections          []policy.Objection       `json:"objections"`
	Repairs             []policy.Repair          `json:"repairs"`
	Exits               []policy.ExitApplication `json:"exits"`
	Derivation          *policy.Derivation       `json:"derivation,omitempty"`
	Version             int64                    `json:"version"`
	RecordedAt          time.Time                `json:"recorded_at"`
}

// ActionOutcome is what a check for one action would have answered.
type ActionOutcome struct {
	Action   string         `json:"action"`
	Outcome  policy.Outcome `json:"outcome"`
	Measures []MeasureView  `json:"measures"`
}

// SubjectStatus is what credgate knew about a subject at a time and would
// have answered then, for every action whose answer was not "clear".
type SubjectStatus struct {
	StatusID  string      `json:"status_id"`
	Requester string      `json:"requester"`
	Subject   SubjectView `json:"subject"`
	// At is the record time: the entries as credgate knew them then.
	At time.Time `json:"at"`
	// ValidAt, when asked, is the time whose standing is shown (entry
	// states, outcomes, points); otherwise that time is At.
	ValidAt *time.Time `json:"valid_at,omitempty"`
	// Context is what the measures' scopes were matched against.
	Context         ContextView       `json:"context"`
	Entries         []StatusEntryView `json:"entries"`
	Actions         []ActionOutcome   `json:"actions"`
	Points          []policy.Standing `json:"points"`
	CatalogRevision string            `json:"catalog_revision"`
	AnsweredAt      time.Time         `json:"answered_at"`
	Receipt         *ReceiptView      `json:"receipt,omitempty"`
}

// StatusQuery is what a subject status asks: the record time (At, nil:
// now), the valid time (ValidAt, nil: the record time) and the context
// the measures' scopes are matched against.
type StatusQuery struct {
	At      *time.Time
	ValidAt *time.Time
	Context policy.CheckContext
}

// SubjectStatus answers, for an administrator or auditor, what credgate
// knew about subject at `at` (nil: now) and what it would have answered
// then; the answer is recorded as evidence before it is returned.
func (c *Checker) SubjectStatus(ctx context.Context, caller Caller, rawSubject string, at *time.Time) (SubjectStatus, error) {
	return c.SubjectStatusOf(ctx, caller, rawSubject, StatusQuery{At: at})
}

// SubjectStatusOf is SubjectStatus with a valid time and a context: the
// entries as known at q.At, their states, the outcomes and the points at
// q.ValidAt.
func (c *Checker) SubjectStatusOf(ctx context.Context, caller Caller, rawSubject string, q StatusQuery) (SubjectStatus, error) {
	if caller.Role != RoleAdmin && caller.Role != RoleAuditor {
		return SubjectStatus{}, ErrAsOfNotAllowed
	}
	subject, err := policy.ParseSubjectID(rawSubject)
	if err != nil {
		return SubjectStatus{}, err
	}
	now := c.now().UTC()
	known := now
	if q.At != nil {
		known = q.At.UTC()
	}
	if err := c.validPast(known); err != nil {
		return SubjectStatus{}, err
	}
	if err := c.validValidAt(q.ValidAt); err != nil {
		return SubjectStatus{}, err
	}
	when := known
	var validAt *time.Time
	if q.ValidAt != nil {
		v := q.ValidAt.UTC()
		when, validAt = v, &v
	}
	scope, err := c.effectiveContext(caller, q.Context)
	if err != nil {
		return SubjectStatus{}, err
	}
	entries, err := c.history.EntriesAffectingAsOf(ctx, subject.Value, known)
	if err != nil {
		return SubjectStatus{}, fmt.Errorf("look up entries: %w", err)
	}
	records, err := c.history.ViolationRecords(ctx, subject.Value, known)
	if err != nil {
		return SubjectStatus{}, fmt.Errorf("look up violation records: %w", err)
	}
	if len(records) > MaxSubjectRecords {
		return SubjectStatus{}, fmt.Errorf("%w: more than %d", ErrTooManyRecords, MaxSubjectRecords)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return SubjectStatus{}, err
	}
	st := SubjectStatus{
		StatusID: id.String(), Requester: caller.ClientID, Subject: SubjectView{ID: subject.Value, Kind: subject.Kind},
		At: known, ValidAt: validAt, Context: contextView(scope),
		Entries: []StatusEntryView{}, Actions: []ActionOutcome{}, CatalogRevision: c.catalog.Revision(), AnsweredAt: now,
	}
	violations := violationTimes(records)
	for _, e := range entries {
		var via *policy.Via
		if e.Subject != subject {
			via = reachOf(e, subject)
			if via == nil {
				continue // an entry that named the subject only in another version
			}
		}
		st.Entries = append(st.Entries, statusEntry(c.catalog, e, via, when))
	}
	for _, a := range c.catalog.Actions() {
		d, err := policy.Decide(c.catalog, policy.Query{Subject: subject, Action: a.ID, At: when, Context: scope, Violations: violations}, entries)
		if err != nil {
			return SubjectStatus{}, err
		}
		if d.Outcome == policy.OutcomeClear {
			continue
		}
		ao := ActionOutcome{Action: a.ID, Outcome: d.Outcome, Measures: make([]MeasureView, 0, len(d.Measures))}
		for _, m := range d.Measures {
			ao.Measures = append(ao.Measures, measureView(m))
		}
		st.Actions = append(st.Actions, ao)
	}
	if st.Points, err = standingsOf(c.catalog, records, when); err != nil {
		return SubjectStatus{}, err
	}
	if st.Points == nil {
		st.Points = []policy.Standing{}
	}
	body, err := json.Marshal(st)
	if err != nil {
		return SubjectStatus{}, fmt.Errorf("encode status: %w", err)
	}
	recs, err := c.log.Append(ctx, evidence.Record{ID: st.StatusID, Kind: evidenceKindStatus, Partner: caller.ClientID, At: now, Body: body})
	if err != nil {
		return SubjectStatus{}, fmt.Errorf("record status: %w", err)
	}
	st.Receipt = receipt(recs[0])
	return st, nil
}

// reachOf is the organisation and role through which e names person.
func reachOf(e policy.Entry, person policy.SubjectID) *policy.Via {
	for _, p := range e.ResponsiblePersons {
		if p.ID == person.Value && person.Kind == policy.KindPerson {
			return &policy.Via{Organization: e.Subject.Value, Role: p.Role}
		}
	}
	return nil
}

func statusEntry(cat *policy.Catalog, e policy.Entry, via *policy.Via, at time.Time) StatusEntryView {
	l, _ := cat.List(e.List)
	v := StatusEntryView{
		EntryView: EntryView{
			ID: e.ID, List: e.List, ListName: l.Name, ListKind: l.Kind, Status: e.StatusAt(at),
			OriginatingDepartment: e.OriginatingDepartment, Reason: e.Reason, LegalBasis: e.LegalBasis,
			DecidedAt: e.DecidedAt, PublishedAt: e.PublishedAt, ValidUntil: e.ValidUntil, Via: viaView(via),
		},
		SubjectID: e.Subject.Value, EvidenceRefs: e.EvidenceRefs, RevokedAt: e.RevokedAt, RevocationReason: e.RevocationReason,
		RevocationCause: e.RevocationCause, ParticularlySerious: e.ParticularlySerious,
		Objections: e.Objections, Repairs: e.Repairs, Exits: e.Exits, Derivation: e.Derivation,
		Version: e.Version, RecordedAt: e.UpdatedAt,
	}
	if v.EvidenceRefs == nil {
		v.EvidenceRefs = []string{}
	}
	if v.Objections == nil {
		v.Objections = []policy.Objection{}
	}
	if v.Repairs == nil {
		v.Repairs = []policy.Repair{}
	}
	if v.Exits == nil {
		v.Exits = []policy.ExitApplication{}
	}
	return v
}
