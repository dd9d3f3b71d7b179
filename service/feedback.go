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

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Execution feedback (执行反馈): the partner that made a check reports what
// it did with the answer. A feedback is an evidence record (kind feedback),
// durable before it is accepted; the stores index it from the log. A
// correction is a new record naming the one it corrects: nothing is
// overwritten, and the current feedback of a check is its last.
//
// A check's feedback is thus a chain, and each record states its place in
// it (feedbackBody.Follows). The stores index one record per place, the
// first in log order (migration 0020 on SQLite, 0023 on PostgreSQL): two
// replicas that both read the chain before either appended both append,
// and the one whose record came second finds it unindexed and answers
// ErrFeedbackExists, its record being in the log without effect.

// Errors of feedback.
var (
	// ErrFeedbackExists: the check has feedback already, and the new one
	// does not name it as the one it corrects (or names another).
	ErrFeedbackExists = errors.New("the check has feedback already; a correction names the current one in corrects")
	// ErrFeedbackNotExpected: the record takes no feedback (a check re-run
	// as of a past time).
	ErrFeedbackNotExpected = errors.New("this check takes no feedback")
)

// FeedbackInput is a partner's feedback on one check.
type FeedbackInput struct {
	Decision  policy.BusinessDecision  `json:"decision"`
	Measures  []policy.MeasureFeedback `json:"measures"`
	Document  string                   `json:"document"`
	DecidedAt time.Time                `json:"decided_at"`
	Note      string                   `json:"note,omitempty"`
	// Corrects is the id of the feedback this one replaces; required when
	// the check has feedback already.
	Corrects string `json:"corrects,omitempty"`
}

// FeedbackView is a feedback as recorded. Its JSON (without the receipt),
// with the place it takes in the check's feedback (feedbackBody), is the
// evidence record's body; feedback_id comes first, which is how the stores
// recognise the body (migration 0010).
type FeedbackView struct {
	FeedbackID string                   `json:"feedback_id"`
	CheckID    string                   `json:"check_id"`
	Partner    string                   `json:"partner"`
	Subject    SubjectView              `json:"subject"`
	Action     string                   `json:"action"`
	Outcome    policy.Outcome           `json:"outcome"`
	Decision   policy.BusinessDecision  `json:"decision"`
	Measures   []policy.MeasureFeedback `json:"measures"`
	Document   string                   `json:"document"`
	DecidedAt  time.Time                `json:"decided_at"`
	Note       string                   `json:"note,omitempty"`
	Corrects   string                   `json:"corrects,omitempty"`
	CheckedAt  time.Time                `json:"checked_at"`
	// DueAt is when feedback was expected (the catalogue's working days
	// for the action); Late says whether this one came after it.
	DueAt      time.Time    `json:"due_at"`
	Late       bool         `json:"late"`
	RecordedAt time.Time    `json:"recorded_at"`
	Receipt    *ReceiptView `json:"receipt,omitempty"`
}

// feedbackBody is a feedback's evidence body: the view, and the place it
// takes in the check's chain of feedback, which the stores keep to one
// record each. Follows is "" for a check's first feedback and the id of
// the feedback corrected otherwise. It is never omitted: a body without
// it (an earlier release's) is indexed as before, unchecked.
type feedbackBody struct {
	FeedbackView
	Follows string `json:"follows"`
}

// OverdueView is a check whose feedback is overdue.
type OverdueView struct {
	CheckID   string    `json:"check_id"`
	LogIndex  int64     `json:"log_index"`
	Partner   string    `json:"partner"`
	Subject   string    `json:"subject_id"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"`
	CheckedAt time.Time `json:"checked_at"`
	DueAt     time.Time `json:"due_at"`
	// WorkingDaysOverdue counts the working days since it was due.
	WorkingDaysOverdue int `json:"working_days_overdue"`
}

// Feedback records and reads execution feedback.
type Feedback struct {
	checker *Checker
	log     EvidenceLog
	store   FollowUpStore
	now     func() time.Time
	// locks serialise feedback per check in this process, so that of two
	// submissions the second reads the first and is refused before it
	// appends. Across replicas the store decides (feedbackBody).
	locks [64]sync.Mutex
}

// FeedbackOption configures Feedback.
type FeedbackOption func(*Feedback)

// WithFeedbackClock sets the clock (tests).
func WithFeedbackClock(now func() time.Time) FeedbackOption {
	return func(f *Feedback) { f.now = now }
}

// NewFeedback returns the feedback use case. It reads checks through
// checker (their records, held to the tree), appends to log and reads the
// index in store.
func NewFeedback(checker *Checker, log EvidenceLog, store FollowUpStore, opts ...FeedbackOption) *Feedback {
	f := &Feedback{checker: checker, log: log, store: store, now: time.Now}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Feedback) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &f.locks[h.Sum32()%uint32(len(f.locks))]
	m.Lock()
	return m.Unlock
}

// ownCheck reads a check the caller made (admins and auditors: any when
// anyone is true), verified against the log.
func (f *Feedback) ownCheck(ctx context.Context, caller Caller, checkID string, anyone bool) (CheckAnswer, evidence.Record, error) {
	if checkID == "" || len(checkID) > evidence.MaxFieldLen {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", checkID, ErrNotFound)
	}
	rec, err := f.checker.records.Record(ctx, checkID)
	if errors.Is(err, evidence.ErrNotFound) {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", checkID, ErrNotFound)
	}
	if err != nil {
		return CheckAnswer{}, evidence.Record{}, err
	}
	mayRead := rec.Partner == caller.ClientID || (anyone && (caller.Role == RoleAdmin || caller.Role == RoleAuditor))
	if rec.Kind != evidence.KindCheck || !mayRead {
		// Another partner's check is not found: saying it exists would leak it.
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", checkID, ErrNotFound)
	}
	if err := f.checker.verifyRecord(ctx, rec); err != nil {
		return CheckAnswer{}, evidence.Record{}, err
	}
	var ans CheckAnswer
	if err := json.Unmarshal(rec.Body, &ans); err != nil {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("decode stored check %q: %w", checkID, err)
	}
	return ans, rec, nil
}

// Submit records feedback on a check the caller made, and returns it with
// its receipt once it is durable.
func (f *Feedback) Submit(ctx context.Context, caller Caller, checkID string, in FeedbackInput) (FeedbackView, error) {
	ans, _, err := f.ownCheck(ctx, caller, checkID, false)
	if err != nil {
		return FeedbackView{}, err
	}
	if ans.AsOf != nil {
		return FeedbackView{}, fmt.Errorf("%w: check %q re-ran a past time", ErrFeedbackNotExpected, checkID)
	}
	now := f.now().UTC().Truncate(time.Microsecond)
	answered, err := f.answered(ctx, ans, in)
	if err != nil {
		return FeedbackView{}, err
	}
	fb := policy.Feedback{Decision: in.Decision, Measures: in.Measures, Document: in.Document, DecidedAt: in.DecidedAt, Note: in.Note}
	if err := policy.ValidateFeedback(fb, answered, ans.CheckedAt, now); err != nil {
		return FeedbackView{}, err
	}
	defer f.lock(checkID)()
	prior, err := f.store.FeedbackOf(ctx, checkID)
	if err != nil {
		return FeedbackView{}, err
	}
	switch {
	case len(prior) == 0 && in.Corrects != "":
		return FeedbackView{}, fmt.Errorf("%w: check %q has no feedback to correct", ErrFeedbackExists, checkID)
	case len(prior) > 0 && in.Corrects != prior[len(prior)-1].ID:
		return FeedbackView{}, fmt.Errorf("%w: the current feedback is %q", ErrFeedbackExists, prior[len(prior)-1].ID)
	}
	id, err := newID("fb_")
	if err != nil {
		return FeedbackView{}, err
	}
	cat := f.checker.catalog
	due := cat.FeedbackDue(ans.Action, ans.CheckedAt)
	v := FeedbackView{
		FeedbackID: id, CheckID: checkID, Partner: caller.ClientID, Subject: ans.Subject, Action: ans.Action,
		Outcome: ans.Outcome, Decision: in.Decision, Measures: slices.Clone(in.Measures), Document: in.Document,
		DecidedAt: in.DecidedAt.UTC(), Note: in.Note, Corrects: in.Corrects, CheckedAt: ans.CheckedAt,
		DueAt: due, Late: now.After(due), RecordedAt: now,
	}
	if v.Measures == nil {
		v.Measures = []policy.MeasureFeedback{}
	}
	body, err := json.Marshal(feedbackBody{FeedbackView: v, Follows: in.Corrects})
	if err != nil {
		return FeedbackView{}, fmt.Errorf("encode feedback: %w", err)
	}
	recs, err := f.log.Append(ctx, evidence.Record{ID: id, Kind: evidence.KindFeedback, Partner: caller.ClientID, At: now, Body: body})
	if err != nil {
		return FeedbackView{}, fmt.Errorf("record feedback: %w", err)
	}
	if err := f.tookEffect(ctx, recs[0], checkID); err != nil {
		return FeedbackView{}, err
	}
	v.Receipt = receipt(recs[0])
	return v, nil
}

// answered is the answer's measures as feedback in is validated against:
// with the standing at in.DecidedAt of each measure reported not applied
// for a reason that states a fact about its entry (objection_pending,
// no_longer_in_force), read from the entries affecting the subject now.
// The entries are read only when such a reason is given.
func (f *Feedback) answered(ctx context.Context, ans CheckAnswer, in FeedbackInput) ([]policy.AnsweredMeasure, error) {
	out := make([]policy.AnsweredMeasure, len(ans.Measures))
	for i, m := range ans.Measures {
		out[i] = policy.AnsweredMeasure{ID: m.ID, Effect: m.Effect, Status: m.Status, Mandatory: m.Mandatory}
	}
	need := map[string]bool{}
	for _, m := range in.Measures {
		if !m.Applied && m.Reason.NeedsStanding() {
			need[m.ID] = true
		}
	}
	if len(need) == 0 || in.DecidedAt.IsZero() {
		return out, nil
	}
	found, err := f.checker.entries.LookupEntries(ctx, ans.Subject.ID)
	if err != nil {
		return nil, fmt.Errorf("read the entries of the check's measures: %w", err)
	}
	cat := f.checker.catalog
	for i, m := range ans.Measures {
		if !need[m.ID] || m.Status != policy.MeasureApplied || m.EntryID == "" {
			continue // a measure by eligibility has no entry to stand on: its standing stays unknown
		}
		var entry *policy.Entry
		for j := range found.Entries {
			if found.Entries[j].ID == m.EntryID {
				entry = &found.Entries[j]
				break
			}
		}
		out[i].Standing = cat.MeasureStandingAt(m.ID, entry, in.DecidedAt)
	}
	return out, nil
}

// tookEffect reads the feedback rec back from the index: it is there
// unless another replica's feedback took its place in the check's chain
// first, between this one's read of the chain and its append.
func (f *Feedback) tookEffect(ctx context.Context, rec evidence.Record, checkID string) error {
	// The index's first feedback of the partner at or after rec's position
	// is rec itself when it took effect.
	rows, err := f.store.ListFeedback(ctx, FeedbackFilter{Partner: rec.Partner, After: int64(rec.Index) - 1, Limit: 1})
	if err != nil {
		return fmt.Errorf("feedback %q is recorded; reading it back: %w", rec.ID, err)
	}
	if len(rows) == 1 && rows[0].ID == rec.ID {
		return nil
	}
	current := ""
	if prior, err := f.store.FeedbackOf(ctx, checkID); err == nil && len(prior) > 0 {
		current = prior[len(prior)-1].ID
	}
	return fmt.Errorf("%w: another feedback took its place first; the current feedback is %q, and %q is in the evidence log without effect",
		ErrFeedbackExists, current, rec.ID)
}

// read returns the recorded feedback of id, verified against the log.
func (f *Feedback) read(ctx context.Context, id string) (FeedbackView, error) {
	rec, err := f.checker.records.Record(ctx, id)
	if err != nil {
		return FeedbackView{}, fmt.Errorf("feedback %q: %w", id, err)
	}
	if err := f.checker.verifyRecord(ctx, rec); err != nil {
		return FeedbackView{}, err
	}
	var v FeedbackView
	if err := json.Unmarshal(rec.Body, &v); err != nil {
		return FeedbackView{}, fmt.Errorf("decode stored feedback %q: %w", id, err)
	}
	v.Receipt = receipt(rec)
	return v, nil
}

// OfCheck returns every feedback on a check, in the order recorded (the
// last is current). A partner reads only its own checks' feedback.
func (f *Feedback) OfCheck(ctx context.Context, caller Caller, checkID string) ([]FeedbackView, error) {
	_, rec, err := f.ownCheck(ctx, caller, checkID, true)
	if err != nil {
		return nil, err
	}
	rows, err := f.store.FeedbackOf(ctx, checkID)
	if err != nil {
		return nil, err
	}
	out, err := f.views(ctx, rows)
	if err != nil || !staffRead(caller, rec.Partner) {
		return out, err
	}
	ids := make([]string, len(out))
	for i, v := range out {
		ids[i] = v.FeedbackID
	}
	if err := recordRead(ctx, f.checker.readAudit(), &caller, ActCheckFeedbackRead, checkID,
		map[string]any{"partner": rec.Partner, "log_index": rec.Index, "count": len(out), "feedback_ids": ids}); err != nil {
		return nil, err
	}
	return out, nil
}

func (f *Feedback) views(ctx context.Context, rows []FeedbackRow) ([]FeedbackView, error) {
	out := make([]FeedbackView, 0, len(rows))
	for _, r := range rows {
		v, err := f.read(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// List returns feedback in log order after the log index after (-1: from
// the start): a partner's own, or for administrators and auditors every
// partner's (or partner's when given), a page shown to them recorded first
// as a read act (feedback_listed, reads.go): feedback names its check's
// subject.
func (f *Feedback) List(ctx context.Context, caller Caller, partner string, after int64, limit int) ([]FeedbackView, error) {
	if caller.Role != RoleAdmin && caller.Role != RoleAuditor {
		partner = caller.ClientID
	}
	rows, err := f.store.ListFeedback(ctx, FeedbackFilter{Partner: partner, After: after, Limit: min(max(limit, 1), MaxPage)})
	if err != nil {
		return nil, err
	}
	out, err := f.views(ctx, rows)
	if err != nil || (caller.Role != RoleAdmin && caller.Role != RoleAuditor) {
		return out, err
	}
	ids := make([]string, len(out))
	for i, v := range out {
		ids[i] = v.FeedbackID
	}
	if err := recordRead(ctx, f.checker.readAudit(), &caller, ActFeedbackListed, "feedback",
		map[string]any{"partner": partner, "after": after, "count": len(out), "feedback_ids": ids}); err != nil {
		return nil, err
	}
	return out, nil
}

// Cutoffs are the catalogue's actions grouped by their feedback deadline,
// each with the check time before which feedback is overdue at now.
func Cutoffs(cat *policy.Catalog, now time.Time) []ActionCutoff {
	byDays := map[int][]string{}
	var days []int
	for _, a := range cat.Actions() {
		n := cat.FeedbackWorkingDays(a.ID)
		if _, ok := byDays[n]; !ok {
			days = append(days, n)
		}
		byDays[n] = append(byDays[n], a.ID)
	}
	slices.Sort(days)
	out := make([]ActionCutoff, len(days))
	for i, n := range days {
		out[i] = ActionCutoff{Actions: byDays[n], Before: cat.FeedbackCutoff(n, now)}
	}
	return out
}

// Overdue lists the checks whose feedback is overdue now, in log order
// after after (-1: from the start), of one partner or all.
func (f *Feedback) Overdue(ctx context.Context, partner string, after int64, limit int) ([]OverdueView, error) {
	cat := f.checker.catalog
	now := f.now().UTC()
	rows, err := f.store.OverdueChecks(ctx, OverdueFilter{Cutoffs: Cutoffs(cat, now), Partner: partner, After: after,
		Limit: min(max(limit, 1), MaxPage)})
	if err != nil {
		return nil, err
	}
	out := make([]OverdueView, len(rows))
	for i, c := range rows {
		due := cat.FeedbackDue(c.Action, c.CheckedAt)
		out[i] = OverdueView{CheckID: c.CheckID, LogIndex: c.Index, Partner: c.Partner, Subject: c.Subject, Action: c.Action,
			Outcome: c.Outcome, CheckedAt: c.CheckedAt, DueAt: due, WorkingDaysOverdue: cat.Calendar().WorkingDaysBetween(due.Add(-time.Nanosecond), now)}
	}
	return out, nil
}

// Staff reads of partners' feedback (reads.go), one act per page.
const (
	// ActFeedbackListed: a page of partners' feedback (GET /v1/feedback),
	// with its filter and the feedback ids shown; target feedback.
	ActFeedbackListed Act = "feedback_listed"
	// ActFeedbackOverdueListed: a page of checks whose feedback is overdue
	// (GET /v1/admin/feedback/overdue: their subjects' ids), with its
	// filter and the check ids shown; target feedback_overdue.
	ActFeedbackOverdueListed Act = "feedback_overdue_listed"
	// ActCheckFeedbackRead: a partner's feedback on one of its checks (GET
	// /v1/checks/{id}/feedback), with the feedback ids shown; target the
	// check.
	ActCheckFeedbackRead Act = "check_feedback_read"
)

// ReadOverdue is Overdue for caller, a member of staff, recorded as
// feedback_overdue_listed before it is returned.
func (f *Feedback) ReadOverdue(ctx context.Context, caller Caller, partner string, after int64, limit int) ([]OverdueView, error) {
	out, err := f.Overdue(ctx, partner, after, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(out))
	for i, v := range out {
		ids[i] = v.CheckID
	}
	if err := recordRead(ctx, f.checker.readAudit(), &caller, ActFeedbackOverdueListed, "feedback_overdue",
		map[string]any{"partner": partner, "after": after, "count": len(out), "check_ids": ids}); err != nil {
		return nil, err
	}
	return out, nil
}

// ActFeedbackPendingListed: a page of partners' checks awaiting feedback
// (GET /v1/feedback/pending) shown to an administrator or an auditor, with
// its filter and the ids of the checks shown; target feedback_pending.
const ActFeedbackPendingListed Act = "feedback_pending_listed"

// PendingView is a check that awaits its partner's feedback: its answer
// applied measures and no feedback on it is recorded yet, whether or not
// it is due. Overdue says whether due_at has passed; WorkingDaysLeft
// counts the working days after today up to the day feedback is due (0:
// due by the end of today, or overdue), WorkingDaysOverdue the working
// days since it was due, as the overdue listing counts them (0 when not
// overdue).
type PendingView struct {
	CheckID            string    `json:"check_id"`
	LogIndex           int64     `json:"log_index"`
	Partner            string    `json:"partner"`
	Action             string    `json:"action"`
	Outcome            string    `json:"outcome"`
	CheckedAt          time.Time `json:"checked_at"`
	DueAt              time.Time `json:"due_at"`
	Overdue            bool      `json:"overdue"`
	WorkingDaysLeft    int       `json:"working_days_left"`
	WorkingDaysOverdue int       `json:"working_days_overdue"`
}

// pendingCutoffs select, as OverdueFilter.Cutoffs, every check of the
// catalogue's actions awaiting feedback, due or not: a cutoff no check
// time reaches.
func pendingCutoffs(cat *policy.Catalog) []ActionCutoff {
	actions := cat.Actions()
	ids := make([]string, len(actions))
	for i, a := range actions {
		ids[i] = a.ID
	}
	return []ActionCutoff{{Actions: ids, Before: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}}
}

// Pending lists the checks awaiting feedback (the selection of Overdue,
// due or not yet), in log order after after (-1: from the start), with
// when each is due: a partner's own, or for administrators and auditors
// every partner's (or partner's when given). A page shown to staff is
// recorded first as a read act (feedback_pending_listed, reads.go); an
// act that cannot be recorded fails the read (ErrAuditUnavailable).
func (f *Feedback) Pending(ctx context.Context, caller Caller, partner string, after int64, limit int) ([]PendingView, error) {
	staff := caller.Role == RoleAdmin || caller.Role == RoleAuditor
	if !staff {
		partner = caller.ClientID
	}
	cat := f.checker.catalog
	now := f.now().UTC()
	rows, err := f.store.OverdueChecks(ctx, OverdueFilter{Cutoffs: pendingCutoffs(cat), Partner: partner, After: after,
		Limit: min(max(limit, 1), MaxPage)})
	if err != nil {
		return nil, err
	}
	cal := cat.Calendar()
	out := make([]PendingView, len(rows))
	ids := make([]string, len(rows))
	for i, c := range rows {
		due := cat.FeedbackDue(c.Action, c.CheckedAt)
		v := PendingView{CheckID: c.CheckID, LogIndex: c.Index, Partner: c.Partner, Action: c.Action, Outcome: c.Outcome,
			CheckedAt: c.CheckedAt, DueAt: due, Overdue: !now.Before(due)}
		if v.Overdue {
			v.WorkingDaysOverdue = cal.WorkingDaysBetween(due.Add(-time.Nanosecond), now)
		} else {
			v.WorkingDaysLeft = cal.WorkingDaysBetween(now, due.Add(-time.Nanosecond))
		}
		out[i], ids[i] = v, c.CheckID
	}
	if staff {
		if err := recordRead(ctx, f.checker.readAudit(), &caller, ActFeedbackPendingListed, "feedback_pending",
			map[string]any{"partner": partner, "after": after, "count": len(out), "check_ids": ids}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
