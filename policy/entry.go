package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EntryStatus is the state of a list entry at a moment in time.
type EntryStatus string

// Entry states. Only active entries have their measures applied; an entry
// under objection is shown but its measures are suspended (篇三(十六), 篇五(二十一)).
const (
	StatusPending        EntryStatus = "pending" // before publication
	StatusActive         EntryStatus = "active"
	StatusUnderObjection EntryStatus = "under_objection"
	StatusExpired        EntryStatus = "expired"
	StatusRevoked        EntryStatus = "revoked"
	// StatusRepaired: an approved credit repair ended the measures and the
	// public display; the record stays (篇十三 第十四条).
	StatusRepaired EntryStatus = "repaired"
	// StatusAwaitingExit: past its validity end on a list whose entries
	// leave only on an approved exit application (篇十二 第七条); the
	// measures still apply.
	StatusAwaitingExit EntryStatus = "awaiting_exit"
)

// ResponsiblePerson names a person an organisation's entry reaches (落实到人).
type ResponsiblePerson struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
}

// Objection is a subject's objection (异议) against an entry. While it is
// open the entry's measures are suspended.
type Objection struct {
	ID        string     `json:"id"`
	FiledAt   time.Time  `json:"filed_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// Decision is "upheld" or "rejected" once decided, or
	// "closed_by_revocation" when the entry was revoked while the
	// objection was open (CloseObjections).
	Decision string `json:"decision,omitempty"`
	// FiledBy is who filed on the subject's behalf: "administrator" or
	// "originating_department".
	FiledBy      string   `json:"filed_by,omitempty"`
	Grounds      string   `json:"grounds,omitempty"`
	EvidenceRefs []string `json:"evidence_refs,omitempty"`
	// DueAt is the end of the verification period (working days).
	DueAt *time.Time `json:"due_at,omitempty"`
	// DueProvisional: DueAt runs into a year whose holidays the calendar
	// did not declare when it was computed (only weekends counted as days
	// off there), so the real deadline may be later.
	DueProvisional bool `json:"due_provisional,omitempty"`
	// Remedy of an upheld objection: "revoked" or "corrected".
	Remedy string `json:"remedy,omitempty"`
	Note   string `json:"note,omitempty"`
}

// openAt reports whether the objection suspends measures at t.
func (o Objection) openAt(t time.Time) bool {
	return !t.Before(o.FiledAt) && (o.DecidedAt == nil || t.Before(*o.DecidedAt))
}

// Entry is one subject's record on one list.
type Entry struct {
	ID                    string              `json:"id"`
	Subject               SubjectID           `json:"-"`
	List                  string              `json:"list"`
	OriginatingDepartment string              `json:"originating_department"`
	Reason                string              `json:"reason"`
	LegalBasis            string              `json:"legal_basis"`
	EvidenceRefs          []string            `json:"evidence_refs,omitempty"`
	DecidedAt             time.Time           `json:"decided_at"`
	PublishedAt           time.Time           `json:"published_at"`
	ValidUntil            *time.Time          `json:"valid_until,omitempty"`
	RevokedAt             *time.Time          `json:"revoked_at,omitempty"`
	RevocationReason      string              `json:"revocation_reason,omitempty"`
	ResponsiblePersons    []ResponsiblePerson `json:"responsible_persons,omitempty"`
	Objections            []Objection         `json:"objections,omitempty"`
	// ParticularlySerious marks 情节特别严重 cases, which some lists never
	// let repair (篇十三 第十五条).
	ParticularlySerious bool `json:"particularly_serious,omitempty"`
	// ExitByApplication is derived from the list's exit rule: the entry
	// leaves at expiry only on an approved exit application.
	ExitByApplication bool              `json:"exit_by_application,omitempty"`
	Repairs           []Repair          `json:"repairs,omitempty"`
	Exits             []ExitApplication `json:"exits,omitempty"`
	// Derivation is the computation trail of an entry credgate derived
	// (points, escalation); nil for entries departments submitted.
	Derivation *Derivation `json:"derivation,omitempty"`
	// RevocationCause names the rule that revoked the entry, when a rule
	// did (cross-list removal, escalation, upheld objection).
	RevocationCause *Cause    `json:"revocation_cause,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	Version         int64     `json:"version"`
}

// RuleObjectionUpheld is the revocation cause of an entry whose objection
// was upheld with the remedy "revoked": the listing was an error.
const RuleObjectionUpheld = "objection.upheld"

// Voided reports whether the entry was revoked as an error (an upheld
// objection, 篇二 (三)2; 篇十三 第十一条): unlike an entry ended by a
// court's removal or a repair, it was never a bad credit record.
func (e *Entry) Voided() bool {
	return e.RevocationCause != nil && e.RevocationCause.Rule == RuleObjectionUpheld
}

// StatusAt is the entry's state at t. It is a pure function of time, so
// expiry needs no job and past states can be recomputed for auditors.
func (e *Entry) StatusAt(t time.Time) EntryStatus {
	switch {
	case e.RevokedAt != nil && !t.Before(*e.RevokedAt):
		return StatusRevoked
	case t.Before(e.PublishedAt):
		return StatusPending
	}
	if r := e.repairedAt(); r != nil && !t.Before(*r) {
		return StatusRepaired
	}
	held := false
	if e.ValidUntil != nil && !t.Before(*e.ValidUntil) {
		if !e.ExitByApplication {
			return StatusExpired
		}
		if x := e.exitAt(); x != nil && !t.Before(*x) {
			return StatusExpired
		}
		held = true
	}
	for _, o := range e.Objections {
		if o.openAt(t) {
			return StatusUnderObjection
		}
	}
	if held {
		return StatusAwaitingExit
	}
	return StatusActive
}

// Sentinel errors for entries.
var (
	ErrInvalidEntry       = errors.New("invalid entry")
	ErrSubjectKindOnList  = errors.New("list does not hold this kind of subject")
	ErrEntryRevoked       = errors.New("entry is revoked")
	ErrRoleNotReached     = errors.New("list does not reach this role")
	ErrResponsibleOnOrg   = errors.New("responsible persons apply to organisation entries only")
	ErrInvalidResponsible = errors.New("invalid responsible person")
	// ErrFullCapacityRequired: the list holds persons only with full civil
	// capacity (aged 18 or over, 篇四 第二条) and the person was younger at
	// the decision date. It is wrapped together with ErrInvalidEntry.
	ErrFullCapacityRequired = errors.New("the list requires full civil capacity (aged 18 or over at the decision date)")
)

// Limits on an entry's free-text and repeated fields, so one entry cannot
// grow without bound.
const (
	MaxTextLen            = 2000
	MaxEvidenceRefs       = 50
	MaxResponsiblePersons = 50
)

// ValidUntil computes the end of validity of an entry published at
// published on list l, or nil when the list has no fixed validity.
func (l List) ValidUntil(published time.Time) *time.Time {
	if l.Validity.IsZero() {
		return nil
	}
	end := published.AddDate(l.Validity.Years, l.Validity.Months, l.Validity.Days)
	return &end
}

// SuspensionExtension is how much later the list's validity and its
// measures' terms end for e: the time its measures were suspended by
// objections that did not end it, when the list's text counts on from the
// rejection (ObjectionExtendsValidity); zero otherwise.
func (l *List) SuspensionExtension(e *Entry) time.Duration {
	if l == nil || l.ObjectionExtendsValidity == nil {
		return 0
	}
	return e.Suspended()
}

// PrepareEntry validates e against the catalogue and fills in what the list
// rule derives (validity). It returns the entry ready to be stored.
func (c *Catalog) PrepareEntry(e Entry) (Entry, error) {
	l, ok := c.List(e.List)
	if !ok {
		return Entry{}, fmt.Errorf("%w: %w %q", ErrInvalidEntry, ErrUnknownList, e.List)
	}
	if e.Subject.IsZero() {
		return Entry{}, fmt.Errorf("%w: subject is required", ErrInvalidEntry)
	}
	if !slices.Contains(l.SubjectKinds, e.Subject.Kind) {
		return Entry{}, fmt.Errorf("%w: %w: %s holds %v, not %s", ErrInvalidEntry, ErrSubjectKindOnList, l.ID, l.SubjectKinds, e.Subject.Kind)
	}
	for name, v := range map[string]string{
		"originating_department": e.OriginatingDepartment, "reason": e.Reason, "legal_basis": e.LegalBasis,
	} {
		if strings.TrimSpace(v) == "" {
			return Entry{}, fmt.Errorf("%w: %s is required", ErrInvalidEntry, name)
		}
		if len(v) > MaxTextLen {
			return Entry{}, fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidEntry, name, MaxTextLen)
		}
		if p := TextProblem(v); p != "" {
			return Entry{}, fmt.Errorf("%w: %s %s", ErrInvalidEntry, name, p)
		}
	}
	if len(e.EvidenceRefs) > MaxEvidenceRefs {
		return Entry{}, fmt.Errorf("%w: more than %d evidence_refs", ErrInvalidEntry, MaxEvidenceRefs)
	}
	for i, r := range e.EvidenceRefs {
		if len(r) > MaxTextLen {
			return Entry{}, fmt.Errorf("%w: an evidence reference is longer than %d bytes", ErrInvalidEntry, MaxTextLen)
		}
		if p := TextProblem(r); p != "" {
			return Entry{}, fmt.Errorf("%w: evidence_refs[%d] %s", ErrInvalidEntry, i, p)
		}
	}
	if e.DecidedAt.IsZero() || e.PublishedAt.IsZero() {
		return Entry{}, fmt.Errorf("%w: decided_at and published_at are required", ErrInvalidEntry)
	}
	if e.PublishedAt.Before(e.DecidedAt) {
		return Entry{}, fmt.Errorf("%w: published_at is before decided_at", ErrInvalidEntry)
	}
	if l.RequiresFullCapacity && e.Subject.Kind == KindPerson && !c.adultAt(e.Subject, e.DecidedAt) {
		// The age is not repeated: it would reveal the birth date.
		return Entry{}, fmt.Errorf("%w: %w: list %s; the person is under 18 at the decision date", ErrInvalidEntry, ErrFullCapacityRequired, l.ID)
	}
	if len(e.ResponsiblePersons) > 0 && e.Subject.Kind != KindOrganization {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, ErrResponsibleOnOrg)
	}
	if len(e.ResponsiblePersons) > MaxResponsiblePersons {
		return Entry{}, fmt.Errorf("%w: more than %d responsible_persons", ErrInvalidEntry, MaxResponsiblePersons)
	}
	for i, p := range e.ResponsiblePersons {
		id, err := ParseResidentID(p.ID)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: responsible_persons[%d].id: %w", ErrInvalidResponsible, i, err)
		}
		if !slices.Contains(l.Reaches, p.Role) {
			return Entry{}, fmt.Errorf("%w: responsible_persons[%d]: %w: %s reaches %v, not %q", ErrInvalidResponsible, i, ErrRoleNotReached, l.ID, l.Reaches, p.Role)
		}
		e.ResponsiblePersons[i].ID = id.Value
	}
	e.DecidedAt = e.DecidedAt.UTC()
	e.PublishedAt = e.PublishedAt.UTC()
	// Validity counts from publication; it moves later by the time
	// measures were suspended by objections that did not end the entry
	// only where the list's text says so (ObjectionExtendsValidity).
	e.ValidUntil = l.ValidUntil(e.PublishedAt)
	if e.ValidUntil != nil {
		end := e.ValidUntil.Add(l.SuspensionExtension(&e))
		e.ValidUntil = &end
	}
	e.ExitByApplication = l.Exit != nil
	return e, nil
}

// adultAt reports whether the person p is 18 or over on the civil date of
// t in the calendar's zone: from the 18th birthday on (a person born on 29
// February comes of age on 1 March of a common year). A value whose birth
// date cannot be read counts as adult, since ParseResidentID admits none.
func (c *Catalog) adultAt(p SubjectID, t time.Time) bool {
	if len(p.Value) != identLen || !identResidentShaped(p.Value) {
		return true
	}
	y, m, d := identBirthDate(p.Value)
	comes := time.Date(y+18, time.Month(m), d, 0, 0, 0, 0, c.calendar.Location())
	return !t.Before(comes)
}
