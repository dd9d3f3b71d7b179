package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Credit commitments (信用承诺): a written promise, made on 容缺受理 (篇三
// 二(一), 篇五) or with a repair or exit application (篇十三 第十七条, 篇七
// 第五条(六)), to do something by a date. Each commitment, and each change
// of its state, is an evidence record (kind commitment), durable before it
// is accepted; the stores keep the state from the log. On a breach an
// administrator may record the violation it constitutes through the
// existing points rule sets, where the commitment kind names them.

// Errors of commitments.
var (
	// ErrCommitmentClosed: the commitment was fulfilled or breached already.
	ErrCommitmentClosed = errors.New("the commitment is no longer open")
	// ErrViolationNotAllowed: the breach names a violation the commitment's
	// kind does not lead to, or the caller may not record violations.
	ErrViolationNotAllowed = errors.New("this breach cannot be recorded as that violation")
)

// Commitment states.
const (
	CommitmentOpen      = "open"
	CommitmentFulfilled = "fulfilled"
	CommitmentBreached  = "breached"
)

// CommitmentInput records a commitment. A partner's belongs to one of its
// checks (容缺受理 on an application it checked); an administrator's names
// a check or a proceeding (a repair or exit application).
type CommitmentInput struct {
	Subject      string      `json:"subject_id"`
	Kind         string      `json:"kind"`
	Promise      string      `json:"promise"`
	Due          policy.Date `json:"due"`
	CheckID      string      `json:"check_id,omitempty"`
	ProceedingID string      `json:"proceeding_id,omitempty"`
}

// CommitmentChange fulfils or breaches a commitment. A breach by an
// administrator may carry the violation it constitutes.
type CommitmentChange struct {
	Note      string          `json:"note,omitempty"`
	Violation *ViolationInput `json:"violation,omitempty"`
}

// CommitmentBody is the evidence body of a commitment record and of each
// state change; commitment_id comes first, which is how the stores
// recognise it (migration 0010).
type CommitmentBody struct {
	CommitmentID string       `json:"commitment_id"`
	Op           string       `json:"op"` // recorded, fulfilled, breached
	Actor        string       `json:"actor"`
	Subject      *SubjectView `json:"subject,omitempty"`
	Kind         string       `json:"kind,omitempty"`
	Promise      string       `json:"promise,omitempty"`
	Due          string       `json:"due,omitempty"`
	CheckID      string       `json:"check_id,omitempty"`
	ProceedingID string       `json:"proceeding_id,omitempty"`
	Note         string       `json:"note,omitempty"`
	// ViolationID is the violation record a breach led to.
	ViolationID string    `json:"violation_id,omitempty"`
	At          time.Time `json:"at"`
}

// CommitmentView is a commitment with its state.
type CommitmentView struct {
	ID           string       `json:"id"`
	Partner      string       `json:"partner"`
	Subject      string       `json:"subject_id"`
	Kind         string       `json:"kind"`
	Promise      string       `json:"promise"`
	Due          string       `json:"due"`
	CheckID      string       `json:"check_id,omitempty"`
	ProceedingID string       `json:"proceeding_id,omitempty"`
	State        string       `json:"state"`
	Overdue      bool         `json:"overdue"`
	RecordedAt   time.Time    `json:"recorded_at"`
	StateAt      *time.Time   `json:"state_at,omitempty"`
	StateRecord  string       `json:"state_record,omitempty"`
	Receipt      *ReceiptView `json:"receipt,omitempty"`
	// Violation is the violation record a breach led to, when it did.
	Violation *BreachViolation `json:"violation,omitempty"`
}

// BreachViolation is the violation a breach was recorded as.
type BreachViolation struct {
	RecordID string `json:"record_id"`
	RuleSet  string `json:"rule_set"`
	Points   int    `json:"points"`
	// DerivedEntry is the entry the points put the subject on, if any.
	DerivedEntry string `json:"derived_entry,omitempty"`
}

// Commitments records credit commitments and their fulfilment or breach.
type Commitments struct {
	feedback  *Feedback // reads checks the way feedback does
	lifecycle *Lifecycle
	// locks serialise the changes of a commitment in this process, so that
	// of two the second reads the first and is refused before it appends.
	// Across replicas the store decides: the first change in log order
	// closes the commitment (migration 0010), and Change reads back whose
	// it was.
	locks [64]sync.Mutex
}

// NewCommitments returns the commitments use case over feedback's checks,
// log and store; breaches record violations through lifecycle (nil: a
// breach never does).
func NewCommitments(feedback *Feedback, lifecycle *Lifecycle) *Commitments {
	return &Commitments{feedback: feedback, lifecycle: lifecycle}
}

func (c *Commitments) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &c.locks[h.Sum32()%uint32(len(c.locks))]
	m.Lock()
	return m.Unlock
}

func (c *Commitments) append(ctx context.Context, id, partner string, b CommitmentBody) (evidence.Record, error) {
	body, err := json.Marshal(b)
	if err != nil {
		return evidence.Record{}, fmt.Errorf("encode commitment: %w", err)
	}
	recs, err := c.feedback.log.Append(ctx, evidence.Record{ID: id, Kind: evidence.KindCommitment, Partner: partner, At: b.At, Body: body})
	if err != nil {
		return evidence.Record{}, fmt.Errorf("record commitment: %w", err)
	}
	return recs[0], nil
}

// appendAndGet appends b to the log as record recID, made by the caller,
// and returns the commitment as it then stands, with that record's receipt.
func (c *Commitments) appendAndGet(ctx context.Context, caller Caller, recID string, b CommitmentBody) (CommitmentView, error) {
	rec, err := c.append(ctx, recID, caller.ClientID, b)
	if err != nil {
		return CommitmentView{}, err
	}
	v, err := c.Get(ctx, caller, b.CommitmentID)
	if err != nil {
		return CommitmentView{}, err
	}
	v.Receipt = receipt(rec)
	return v, nil
}

// Record records a commitment made to the caller.
func (c *Commitments) Record(ctx context.Context, caller Caller, in CommitmentInput) (CommitmentView, error) {
	cat := c.feedback.checker.catalog
	now := c.feedback.now().UTC().Truncate(time.Microsecond)
	subject, err := policy.ParseSubjectID(in.Subject)
	if err != nil {
		return CommitmentView{}, fmt.Errorf("subject_id: %w", err)
	}
	if err := cat.ValidateCommitment(policy.Commitment{Kind: in.Kind, Promise: in.Promise, Due: in.Due}, now); err != nil {
		return CommitmentView{}, err
	}
	switch {
	case in.CheckID == "" && in.ProceedingID == "":
		return CommitmentView{}, fmt.Errorf("%w: check_id or proceeding_id is required", policy.ErrInvalidCommitment)
	case in.ProceedingID != "" && caller.Role != RoleAdmin:
		return CommitmentView{}, fmt.Errorf("%w: only administrators record commitments of proceedings", policy.ErrInvalidCommitment)
	}
	if in.CheckID != "" {
		// A partner's own check (an administrator's: any), about this subject.
		ans, _, err := c.feedback.ownCheck(ctx, caller, in.CheckID, caller.Role == RoleAdmin)
		if err != nil {
			return CommitmentView{}, err
		}
		if ans.Subject.ID != subject.Value {
			return CommitmentView{}, fmt.Errorf("%w: check %q is about another subject", policy.ErrInvalidCommitment, in.CheckID)
		}
		if err := cat.ValidateCommitmentCheck(in.Kind, commitmentCheck(ans)); err != nil {
			return CommitmentView{}, fmt.Errorf("check %q: %w", in.CheckID, err)
		}
	} else if err := cat.ValidateCommitmentCheck(in.Kind, policy.CommitmentCheck{}); err != nil {
		// A commitment made under a facilitation rests on a check.
		return CommitmentView{}, fmt.Errorf("%w (check_id is required for this kind)", err)
	}
	if in.ProceedingID != "" {
		if c.lifecycle == nil {
			return CommitmentView{}, ErrLifecycleUnsupported
		}
		e, err := c.lifecycle.store.EntryByProceeding(ctx, in.ProceedingID)
		if err != nil {
			return CommitmentView{}, fmt.Errorf("proceeding %q: %w", in.ProceedingID, err)
		}
		if e.Subject.Value != subject.Value {
			return CommitmentView{}, fmt.Errorf("%w: proceeding %q is about another subject", policy.ErrInvalidCommitment, in.ProceedingID)
		}
	}
	id, err := newID("cm_")
	if err != nil {
		return CommitmentView{}, err
	}
	sv := SubjectView{ID: subject.Value, Kind: subject.Kind}
	return c.appendAndGet(ctx, caller, id, CommitmentBody{CommitmentID: id, Op: "recorded", Actor: caller.ClientID,
		Subject: &sv, Kind: in.Kind, Promise: in.Promise, Due: in.Due.String(), CheckID: in.CheckID,
		ProceedingID: in.ProceedingID, At: now})
}

// commitmentCheck is what a commitment's eligibility is judged on in the
// answer ans (policy.ValidateCommitmentCheck).
func commitmentCheck(ans CheckAnswer) policy.CommitmentCheck {
	ch := policy.CommitmentCheck{Action: ans.Action, Outcome: ans.Outcome}
	for _, m := range ans.Measures {
		if m.Status == policy.MeasureApplied {
			ch.Applied = append(ch.Applied, m.ID)
		}
	}
	for _, e := range ans.Entries {
		switch e.Status {
		case policy.StatusActive, policy.StatusUnderObjection, policy.StatusAwaitingExit:
			ch.Lists = append(ch.Lists, e.ListKind)
		}
	}
	return ch
}

// mayRead: administrators and auditors read every commitment, a partner
// those made to it.
func mayRead(caller Caller, row CommitmentRow) bool {
	return caller.Role == RoleAdmin || caller.Role == RoleAuditor || row.Partner == caller.ClientID
}

// Get returns a commitment the caller may read.
func (c *Commitments) Get(ctx context.Context, caller Caller, id string) (CommitmentView, error) {
	row, err := c.feedback.store.Commitment(ctx, id)
	if err != nil {
		return CommitmentView{}, err
	}
	if !mayRead(caller, row) {
		return CommitmentView{}, fmt.Errorf("commitment %q: %w", id, ErrNotFound)
	}
	return c.view(ctx, row)
}

func (c *Commitments) view(ctx context.Context, row CommitmentRow) (CommitmentView, error) {
	v := CommitmentView{ID: row.ID, Partner: row.Partner, Subject: row.Subject, Kind: row.Kind, Due: row.Due,
		CheckID: row.CheckID, ProceedingID: row.ProceedingID, State: row.State, RecordedAt: row.RecordedAt,
		StateAt: row.StateAt, StateRecord: row.StateRecord}
	rec, err := c.feedback.checker.records.Record(ctx, row.ID)
	if err != nil {
		return CommitmentView{}, fmt.Errorf("commitment %q: %w", row.ID, err)
	}
	if err := c.feedback.checker.verifyRecord(ctx, rec); err == nil {
		var b CommitmentBody
		if json.Unmarshal(rec.Body, &b) == nil {
			v.Promise = b.Promise
		}
	} else if !errors.Is(err, ErrRecordErased) {
		return CommitmentView{}, err
	}
	today := c.feedback.now().In(c.feedback.checker.catalog.Calendar().Location()).Format(time.DateOnly)
	v.Overdue = row.State == CommitmentOpen && row.Due < today
	return v, nil
}

// List lists commitments by id: a partner's own, or any for administrators
// and auditors; state is open, fulfilled, breached, overdue (open and past
// due) or "" for all. A page shown to administrators and auditors is
// recorded first as a read act (commitments_listed, reads.go).
func (c *Commitments) List(ctx context.Context, caller Caller, f CommitmentFilter) ([]CommitmentView, error) {
	staff := caller.Role == RoleAdmin || caller.Role == RoleAuditor
	if !staff {
		f.Partner = caller.ClientID
	}
	asked := f
	switch f.State {
	case "", CommitmentOpen, CommitmentFulfilled, CommitmentBreached:
	case "overdue":
		f.State = CommitmentOpen
		f.DueBefore = c.feedback.now().In(c.feedback.checker.catalog.Calendar().Location()).Format(time.DateOnly)
	default:
		return nil, fmt.Errorf("%w: state %q is not open, overdue, fulfilled or breached", ErrInvalidState, f.State)
	}
	f.Limit = min(max(f.Limit, 1), MaxPage)
	rows, err := c.feedback.store.ListCommitments(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]CommitmentView, 0, len(rows))
	for _, r := range rows {
		v, err := c.view(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if !staff {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, v := range out {
		ids[i] = v.ID
	}
	d := map[string]any{"partner": asked.Partner, "state": asked.State, "after": asked.After, "count": len(out), "commitment_ids": ids}
	if asked.Subject != "" {
		d["subject_id"] = asked.Subject // a lookup by subject names the subject looked up (reads.go)
	}
	if err := recordRead(ctx, c.feedback.checker.readAudit(), &caller, ActCommitmentsListed, "commitments", d); err != nil {
		return nil, err
	}
	return out, nil
}

// ActCommitmentsListed: a page of partners' commitments (GET
// /v1/commitments: their subjects and promises) shown to an administrator
// or an auditor, with its filter and the commitment ids shown; target
// commitments (reads.go).
const ActCommitmentsListed Act = "commitments_listed"

// Change fulfils or breaches an open commitment: the partner it was made
// to, or an administrator. A breach by an administrator may record the
// violation it constitutes, through the rule sets the kind names.
func (c *Commitments) Change(ctx context.Context, caller Caller, id, op string, in CommitmentChange) (CommitmentView, error) {
	if op != CommitmentFulfilled && op != CommitmentBreached {
		return CommitmentView{}, fmt.Errorf("%w: %q", ErrInvalidState, op)
	}
	if err := checkNote(in.Note); err != nil {
		return CommitmentView{}, err
	}
	defer c.lock(id)()
	row, err := c.feedback.store.Commitment(ctx, id)
	if err != nil {
		return CommitmentView{}, err
	}
	if caller.Role != RoleAdmin && row.Partner != caller.ClientID {
		return CommitmentView{}, fmt.Errorf("commitment %q: %w", id, ErrNotFound)
	}
	if row.State != CommitmentOpen {
		return CommitmentView{}, fmt.Errorf("%w: commitment %q is %s", ErrCommitmentClosed, id, row.State)
	}
	if in.Violation != nil {
		if err := c.violationAllowed(caller, row, op, *in.Violation); err != nil {
			return CommitmentView{}, err
		}
	}
	recID, err := uuid.NewV7()
	if err != nil {
		return CommitmentView{}, err
	}
	now := c.feedback.now().UTC().Truncate(time.Microsecond)
	v, err := c.appendAndGet(ctx, caller, recID.String(), CommitmentBody{CommitmentID: id, Op: op, Actor: caller.ClientID,
		Note: in.Note, At: now})
	if err != nil {
		return CommitmentView{}, err
	}
	if v.StateRecord != recID.String() {
		// Another replica's change, appended between this one's read and
		// its append, closed the commitment first: this record is in the
		// log without effect, and a violation would punish a breach the
		// commitment's state does not record.
		return CommitmentView{}, fmt.Errorf("%w: commitment %q was %s by another change first; %s is in the evidence log without effect",
			ErrCommitmentClosed, id, v.State, recID)
	}
	if in.Violation != nil {
		// The breach is in the log; the violation is a second act of its
		// own, recorded (and audited) by the lifecycle like any other.
		vi := *in.Violation
		vi.Subject = row.Subject
		res, err := c.lifecycle.RecordViolation(ctx, vi)
		if err != nil {
			return v, fmt.Errorf("the breach is recorded (%s); the violation is not: %w", recID, err)
		}
		v.Violation = &BreachViolation{RecordID: res.Record.ID, RuleSet: res.Record.RuleSet, Points: res.Standing.Points}
		if res.Derived != nil {
			v.Violation.DerivedEntry = res.Derived.ID
		}
	}
	return v, nil
}

func (c *Commitments) violationAllowed(caller Caller, row CommitmentRow, op string, vi ViolationInput) error {
	if op != CommitmentBreached || caller.Role != RoleAdmin || c.lifecycle == nil {
		return fmt.Errorf("%w: only an administrator's breach records a violation", ErrViolationNotAllowed)
	}
	cat := c.feedback.checker.catalog
	kind, _ := cat.CommitmentKind(row.Kind)
	item, ok := cat.ViolationItem(vi.Item)
	if !ok || !slices.Contains(kind.BreachRuleSets, item.RuleSet) {
		return fmt.Errorf("%w: a breached %s commitment counts only in %v", ErrViolationNotAllowed, row.Kind, kind.BreachRuleSets)
	}
	if vi.Subject != "" && vi.Subject != row.Subject {
		return fmt.Errorf("%w: the violation names another subject", ErrViolationNotAllowed)
	}
	// Refuse a violation that would fail once the breach is recorded.
	subject, err := policy.ParseSubjectID(row.Subject)
	if err != nil {
		return err
	}
	_, err = cat.PrepareViolation(policy.ViolationRecord{Subject: subject, Item: vi.Item, DecidedAt: vi.DecidedAt,
		RecordedAt: c.feedback.now().UTC(), Department: vi.Department, Reference: vi.Reference, EvidenceRefs: vi.EvidenceRefs})
	return err
}

func checkNote(note string) error {
	if len(note) > policy.MaxFeedbackText {
		return fmt.Errorf("%w: note longer than %d bytes", policy.ErrInvalidCommitment, policy.MaxFeedbackText)
	}
	return nil
}
