package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// What follows a check (执行反馈, 篇三(十三), 篇五(十七)): the implementing
// department reports what it did with the answer, within a number of
// working days the catalogue sets per action; and credit commitments (信用
// 承诺) made on 容缺受理, repair or exit. The rules are data (the
// catalogue's follow_up section); this file validates against them.

// FollowUpSpec is the catalogue's follow_up section.
type FollowUpSpec struct {
	// FeedbackWorkingDays is the default number of working days, after
	// the day of a check, within which feedback is expected; an action's
	// feedback_working_days overrides it.
	FeedbackWorkingDays int `yaml:"feedback_working_days" json:"feedback_working_days"`
	// FeedbackSource cites (and quotes) where the default comes from.
	FeedbackSource string `yaml:"feedback_source" json:"feedback_source"`
	// CommitmentKinds are the kinds of credit commitment credgate records.
	CommitmentKinds []CommitmentKind `yaml:"commitment_kinds" json:"commitment_kinds"`
}

// CommitmentKind is a kind of credit commitment and what its breach may
// lead to.
type CommitmentKind struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	// BreachRuleSets are the points rule sets whose violation items a
	// breach may be recorded as; empty: a breach is recorded, nothing is
	// counted.
	BreachRuleSets []string `yaml:"breach_rule_sets,omitempty" json:"breach_rule_sets,omitempty"`
	// Facilitation names the facilitation (便利服务措施, e.g. 容缺受理) the
	// texts grant only to trustworthy subjects and under which a commitment
	// of this kind is made; empty for kinds listed subjects make (repair,
	// exit). ValidateCommitmentCheck holds the check to it.
	Facilitation string `yaml:"facilitation,omitempty" json:"facilitation,omitempty"`
	Source       string `yaml:"source" json:"source"`
}

// DefaultFeedbackWorkingDays applies when the catalogue has no follow_up
// section.
const DefaultFeedbackWorkingDays = 7

// Limits of feedback and commitments.
const (
	MaxFeedbackText     = 500
	MaxFeedbackMeasures = 200
	MaxCommitmentText   = 2000
)

// Errors of feedback and commitments.
var (
	ErrInvalidFeedback   = errors.New("invalid feedback")
	ErrInvalidCommitment = errors.New("invalid commitment")
)

// BusinessDecision is the business decision a partner took after a check.
type BusinessDecision string

// Business decisions.
const (
	DecisionApproved               BusinessDecision = "approved"
	DecisionApprovedWithConditions BusinessDecision = "approved_with_conditions"
	DecisionRefused                BusinessDecision = "refused"
	DecisionWithdrawn              BusinessDecision = "withdrawn"
)

// BusinessDecisions is the fixed set of decisions.
var BusinessDecisions = []BusinessDecision{DecisionApproved, DecisionApprovedWithConditions, DecisionRefused, DecisionWithdrawn}

// Approves reports whether the decision grants what was applied for.
func (d BusinessDecision) Approves() bool {
	return d == DecisionApproved || d == DecisionApprovedWithConditions
}

// NotAppliedReason says why a measure in force was not applied.
type NotAppliedReason string

// Reasons a measure was not applied: the fixed set feedback may give.
const (
	// The subject objected and the information is being verified: measures
	// are suspended meanwhile (篇三(十六), 篇五(二十一)).
	ReasonObjectionPending NotAppliedReason = "objection_pending"
	// The implementing department found the information wrong and told the
	// provider (篇五(二十一) 主动发现…信息不实的,应及时告知信息提供部门核实).
	ReasonInformationIncorrect NotAppliedReason = "information_incorrect"
	// The entry left force (expired, revoked, repaired) before the decision.
	ReasonNoLongerInForce NotAppliedReason = "no_longer_in_force"
	// The measure does not bear on this application (another business, a
	// scope the answer could not know).
	ReasonNotRelevant NotAppliedReason = "not_relevant"
	// A law or regulation provides otherwise (除法律法规另有规定外).
	ReasonLegalExemption NotAppliedReason = "legal_exemption"
	// Anything else; the note must say what.
	ReasonOther NotAppliedReason = "other"
)

// NotAppliedReasons is the fixed set.
var NotAppliedReasons = []NotAppliedReason{ReasonObjectionPending, ReasonInformationIncorrect,
	ReasonNoLongerInForce, ReasonNotRelevant, ReasonLegalExemption, ReasonOther}

// MeasureFeedback is what was done about one measure of an answer.
type MeasureFeedback struct {
	ID      string           `json:"id"`
	Applied bool             `json:"applied"`
	Reason  NotAppliedReason `json:"reason,omitempty"`
	Note    string           `json:"note,omitempty"`
}

// Feedback is a partner's report on one check.
type Feedback struct {
	Decision  BusinessDecision  `json:"decision"`
	Measures  []MeasureFeedback `json:"measures"`
	Document  string            `json:"document"`
	DecidedAt time.Time         `json:"decided_at"`
	Note      string            `json:"note,omitempty"`
}

// AnsweredMeasure is a measure of a check's answer as feedback sees it.
type AnsweredMeasure struct {
	ID        string
	Effect    Effect
	Status    MeasureStatus
	Mandatory bool
	// Standing is the measure's standing at the feedback's decided_at, as
	// credgate knows its entry now (MeasureStandingAt); "" when it was not
	// read (no measure is reported not applied for a reason it bears on)
	// or the measure rests on no entry.
	Standing MeasureStanding
}

// MeasureStanding is whether a measure an answer applied was still in
// force at a later time, from what credgate knows of its entry.
type MeasureStanding string

// Standings of a measure.
const (
	// StandingInForce: the entry (or the measure's own term) was in force.
	StandingInForce MeasureStanding = "in_force"
	// StandingUnderObjection: an objection against the entry was open;
	// its measures were suspended (篇三(十六), 篇五(二十一)).
	StandingUnderObjection MeasureStanding = "under_objection"
	// StandingEnded: the entry was expired, revoked or repaired (and the
	// measure's own term, if any, over), or no longer reaches the subject.
	StandingEnded MeasureStanding = "ended"
)

// MeasureStandingAt is the standing at t of the measure measureID resting
// on entry e (nil: the entry no longer affects the subject), as Decide
// would see it: in force while the entry is active, awaiting exit or (for
// a measure with a term of its own, 篇四 第十四条) expired within the term;
// suspended while under objection; ended otherwise.
func (c *Catalog) MeasureStandingAt(measureID string, e *Entry, t time.Time) MeasureStanding {
	if e == nil {
		return StandingEnded
	}
	var term Validity
	for i := range c.measures {
		if c.measures[i].ID == measureID {
			term = c.measures[i].Term
			break
		}
	}
	if !term.IsZero() && !t.Before(e.PublishedAt.AddDate(term.Years, term.Months, term.Days).Add(c.listByID[e.List].SuspensionExtension(e))) {
		return StandingEnded
	}
	switch e.StatusAt(t) {
	case StatusActive, StatusAwaitingExit:
		return StandingInForce
	case StatusUnderObjection:
		return StandingUnderObjection
	case StatusExpired:
		if !term.IsZero() && c.termLists[e.List] {
			return StandingInForce
		}
	}
	return StandingEnded
}

// NeedsStanding reports whether a reason is checked against the measure's
// standing (AnsweredMeasure.Standing): objection_pending and
// no_longer_in_force state facts credgate knows.
func (r NotAppliedReason) NeedsStanding() bool {
	return r == ReasonObjectionPending || r == ReasonNoLongerInForce
}

// excusesApproval reports whether a reason may leave a mandatory
// prohibiting measure unapplied while the action is approved: a mandatory
// measure is one that must be applied by law (强制性措施,即依法必须联合执行的
// 措施, 篇五(十九); 篇二 (三)), so only what suspends or lifts it does:
// an objection or information found wrong, under verification (联合惩戒措施在
// 信息核实期间暂不执行, 篇三(十六), 篇五(二十一)), the entry no longer in
// force, or a law providing otherwise (除法律法规另有规定外). "It does not
// bear on this application" and "other" do not: the answer named the
// measure for this very action.
func (r NotAppliedReason) excusesApproval() bool {
	switch r {
	case ReasonObjectionPending, ReasonInformationIncorrect, ReasonNoLongerInForce, ReasonLegalExemption:
		return true
	}
	return false
}

// ValidateFeedback checks feedback against the answer it reports on: a
// decision from the fixed set, a document reference, a decision time not
// before the check nor after now, and exactly one report for each measure
// the answer applied (none for others), each not applied with a reason
// from the fixed set (other with a note). Approving while applying a
// prohibiting measure is a contradiction and refused. A reason that states
// a fact credgate knows is held to it (objection_pending: an objection was
// open at decided_at; no_longer_in_force: the measure had ended, by its
// AnsweredMeasure.Standing). Approving while a mandatory prohibiting
// measure is not applied needs a reason that suspends or lifts it
// (excusesApproval).
func ValidateFeedback(f Feedback, answered []AnsweredMeasure, checkedAt, now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidFeedback, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(BusinessDecisions, f.Decision) {
		return bad("decision %q is not one of %s", f.Decision, joinDecisions())
	}
	if err := text("document", f.Document, MaxFeedbackText, true); err != nil {
		return bad("%v", err)
	}
	if err := text("note", f.Note, MaxFeedbackText, false); err != nil {
		return bad("%v", err)
	}
	if f.DecidedAt.IsZero() {
		return bad("decided_at is required")
	}
	if f.DecidedAt.Before(checkedAt.Truncate(time.Second)) {
		return bad("decided_at %s is before the check (%s): feedback reports what was done with its answer",
			f.DecidedAt.UTC().Format(time.RFC3339), checkedAt.UTC().Format(time.RFC3339))
	}
	if f.DecidedAt.After(now.Add(5 * time.Minute)) {
		return bad("decided_at %s is in the future", f.DecidedAt.UTC().Format(time.RFC3339))
	}
	if len(f.Measures) > MaxFeedbackMeasures {
		return bad("more than %d measures", MaxFeedbackMeasures)
	}
	byID := map[string]AnsweredMeasure{}
	for _, m := range answered {
		if m.Status == MeasureApplied {
			byID[m.ID] = m
		}
	}
	seen := map[string]bool{}
	for i, m := range f.Measures {
		am, ok := byID[m.ID]
		e := am.Effect
		if !ok {
			return bad("measures[%d]: %q is not a measure the answer applied", i, m.ID)
		}
		if seen[m.ID] {
			return bad("measures[%d]: %q reported twice", i, m.ID)
		}
		seen[m.ID] = true
		if err := text("note", m.Note, MaxFeedbackText, false); err != nil {
			return bad("measures[%d]: %v", i, err)
		}
		switch {
		case m.Applied && m.Reason != "":
			return bad("measures[%d]: a reason is given only for a measure not applied", i)
		case !m.Applied && !slices.Contains(NotAppliedReasons, m.Reason):
			return bad("measures[%d]: reason %q is not one of %s", i, m.Reason, joinReasons())
		case !m.Applied && m.Reason == ReasonOther && strings.TrimSpace(m.Note) == "":
			return bad("measures[%d]: reason other needs a note saying why", i)
		case m.Applied && e == EffectProhibit && f.Decision.Approves():
			return bad("measures[%d]: %q prohibits the action, yet it is reported applied and the decision is %s", i, m.ID, f.Decision)
		case !m.Applied && m.Reason == ReasonObjectionPending && am.Standing != StandingUnderObjection:
			return bad("measures[%d]: reason objection_pending, but no objection against the entry of %q was open at decided_at", i, m.ID)
		case !m.Applied && m.Reason == ReasonNoLongerInForce && am.Standing != StandingEnded:
			return bad("measures[%d]: reason no_longer_in_force, but %q was still in force at decided_at", i, m.ID)
		case !m.Applied && am.Mandatory && e == EffectProhibit && f.Decision.Approves() && !m.Reason.excusesApproval():
			return bad("measures[%d]: %q is mandatory and prohibits the action; approving without applying it needs reason "+
				"objection_pending, information_incorrect, no_longer_in_force or legal_exemption, not %s", i, m.ID, m.Reason)
		}
	}
	for id := range byID {
		if !seen[id] {
			return bad("the answer applied %q: say whether it was applied", id)
		}
	}
	return nil
}

// Commitment is a credit commitment as recorded.
type Commitment struct {
	Kind    string `json:"kind"`
	Promise string `json:"promise"`
	Due     Date   `json:"due"`
}

// ValidateCommitment checks a commitment against the catalogue: a known
// kind, a promise text, a due date not before today (in the calendar's
// zone).
func (c *Catalog) ValidateCommitment(m Commitment, now time.Time) error {
	if _, ok := c.CommitmentKind(m.Kind); !ok {
		return fmt.Errorf("%w: kind %q is not one of the catalogue's commitment kinds", ErrInvalidCommitment, m.Kind)
	}
	if err := text("promise", m.Promise, MaxCommitmentText, true); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidCommitment, err)
	}
	if m.Due == (Date{}) {
		return fmt.Errorf("%w: due is required", ErrInvalidCommitment)
	}
	if m.Due.String() < dateOf(now.In(c.calendar.Location())).String() {
		return fmt.Errorf("%w: due %s is in the past", ErrInvalidCommitment, m.Due)
	}
	return nil
}

// CommitmentCheck is what a commitment's eligibility is judged on: the
// answer of the check it rests on.
type CommitmentCheck struct {
	Action  string
	Outcome Outcome
	// Applied are the ids of the measures the answer applied.
	Applied []string
	// Lists are the kinds of the lists of the answer's entries that were
	// in force (active, under objection, awaiting exit).
	Lists []ListKind
}

// A commitment kind's Facilitation is one the texts grant only to
// trustworthy subjects: 容缺受理
// "对诚信典型和连续三年无不良信用记录的行政相对人,可根据实际情况实施'绿色通道'
// 和'容缺受理'等便利服务措施…部分申报材料不齐备的,如其书面承诺在规定期限内提供,
// 应先行受理" (篇三 二(一)); "对所认定的诚信企业…对诚信典型和连续三年无不良信用
// 记录的行政相对人,可根据实际情况实施'容缺受理'等便利服务措施" (篇五 二(二)).
// The catalogue says which kinds are made under one (facilitation:).

// ValidateCommitmentCheck checks that a commitment of kind may rest on the
// check ch. A kind made under a facilitation the texts grant only to
// trustworthy subjects (its Facilitation) needs a check whose answer applied
// a catalogue measure granting it for the action (an incentive measure
// whose text names it, e.g. red-p3-01-green-channel); where the catalogue
// has no such measure for the action, a check answered clear or incentive
// with no black or key-attention entry in force. Other kinds (repair,
// exit) are made by listed subjects and need nothing of the check.
func (c *Catalog) ValidateCommitmentCheck(kind string, ch CommitmentCheck) error {
	k, ok := c.CommitmentKind(kind)
	if !ok {
		return fmt.Errorf("%w: kind %q is not one of the catalogue's commitment kinds", ErrInvalidCommitment, kind)
	}
	term := k.Facilitation
	if term == "" {
		return nil
	}
	var granting []string
	for i := range c.measures {
		m := &c.measures[i]
		if m.Effect == EffectIncentive && strings.Contains(m.Text, term) && slices.Contains(m.Actions, ch.Action) {
			granting = append(granting, m.ID)
		}
	}
	if len(granting) > 0 {
		for _, id := range ch.Applied {
			if slices.Contains(granting, id) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is granted to trustworthy subjects only (篇三 二(一)); the check's answer (%s) did not apply %s",
			ErrInvalidCommitment, term, ch.Outcome, strings.Join(granting, " or "))
	}
	if ch.Outcome != OutcomeClear && ch.Outcome != OutcomeIncentive {
		return fmt.Errorf("%w: %s is granted to trustworthy subjects only (篇三 二(一)); the check answered %s", ErrInvalidCommitment, term, ch.Outcome)
	}
	for _, l := range ch.Lists {
		if l == ListBlack || l == ListKeyAttention {
			return fmt.Errorf("%w: %s is granted to trustworthy subjects only (篇三 二(一)); the subject is on a %s list", ErrInvalidCommitment, term, l)
		}
	}
	return nil
}

// CommitmentKind returns a commitment kind by id.
func (c *Catalog) CommitmentKind(id string) (CommitmentKind, bool) {
	for _, k := range c.followUp.CommitmentKinds {
		if k.ID == id {
			return k, true
		}
	}
	return CommitmentKind{}, false
}

// ViolationItem returns a violation item by id.
func (c *Catalog) ViolationItem(id string) (ViolationItem, bool) {
	it, ok := c.itemByID[id]
	if !ok {
		return ViolationItem{}, false
	}
	return *it, true
}

// FollowUp returns the catalogue's follow-up rules.
func (c *Catalog) FollowUp() FollowUpSpec { return c.followUp }

// FeedbackWorkingDays is within how many working days after the day of a
// check feedback on it is expected, for action.
func (c *Catalog) FeedbackWorkingDays(action string) int {
	if a, ok := c.actionByID[action]; ok && a.FeedbackWorkingDays > 0 {
		return a.FeedbackWorkingDays
	}
	return c.followUp.FeedbackWorkingDays
}

// FeedbackDue is when feedback on a check of action made at checkedAt is
// due: the end of the n-th working day after the day of the check.
func (c *Catalog) FeedbackDue(action string, checkedAt time.Time) time.Time {
	return c.calendar.Deadline(checkedAt, c.FeedbackWorkingDays(action))
}

// FeedbackCutoff is the earliest check time whose feedback is not yet
// overdue at now, for checks of an action with n working days: a check made
// before it is overdue without feedback.
func (c *Catalog) FeedbackCutoff(n int, now time.Time) time.Time {
	// Deadline(t, n) <= now ⇔ the day of t is at or before the day that
	// starts n working days before the day of now … counted so that the
	// check of a day whose deadline passed at the last midnight is overdue.
	return c.calendar.WorkingDaysBefore(now, n)
}

func validateFollowUp(f *FollowUpSpec, actions []Action, ruleSets map[string]*RuleSet) error {
	if f.FeedbackWorkingDays == 0 {
		f.FeedbackWorkingDays = DefaultFeedbackWorkingDays
	}
	if f.FeedbackWorkingDays < 1 || f.FeedbackWorkingDays > 60 {
		return fmt.Errorf("follow_up: feedback_working_days %d out of 1..60", f.FeedbackWorkingDays)
	}
	for _, a := range actions {
		if a.FeedbackWorkingDays < 0 || a.FeedbackWorkingDays > 60 {
			return fmt.Errorf("action %q: feedback_working_days %d out of 1..60", a.ID, a.FeedbackWorkingDays)
		}
		if a.FeedbackWorkingDays > 0 && a.FeedbackSource == "" {
			return fmt.Errorf("action %q: feedback_working_days needs feedback_source", a.ID)
		}
	}
	seen := map[string]bool{}
	for _, k := range f.CommitmentKinds {
		if k.ID == "" || k.Name == "" || k.Source == "" {
			return fmt.Errorf("follow_up: commitment kind %q: id, name and source are required", k.ID)
		}
		if seen[k.ID] {
			return fmt.Errorf("follow_up: commitment kind %q defined twice", k.ID)
		}
		seen[k.ID] = true
		for _, rs := range k.BreachRuleSets {
			if _, ok := ruleSets[rs]; !ok {
				return fmt.Errorf("follow_up: commitment kind %q: unknown rule set %q", k.ID, rs)
			}
		}
	}
	return nil
}

// validateFacilitations refuses a commitment kind whose facilitation no
// incentive measure names: misspelt, it would hold every check to the
// fallback (a clear answer) instead of to the measure granting it.
func (c *Catalog) validateFacilitations() error {
	for _, k := range c.followUp.CommitmentKinds {
		if k.Facilitation == "" {
			continue
		}
		named := false
		for i := range c.measures {
			if c.measures[i].Effect == EffectIncentive && strings.Contains(c.measures[i].Text, k.Facilitation) {
				named = true
				break
			}
		}
		if !named {
			return fmt.Errorf("follow_up: commitment kind %q: facilitation %q is named by no incentive measure's text", k.ID, k.Facilitation)
		}
	}
	return nil
}

func text(field, v string, limit int, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return fmt.Errorf("%s is required", field)
	case len(v) > limit:
		return fmt.Errorf("%s longer than %d bytes", field, limit)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s is not UTF-8", field)
	}
	for _, r := range v {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return fmt.Errorf("%s holds a control character", field)
		}
	}
	return nil
}

func joinDecisions() string {
	s := make([]string, len(BusinessDecisions))
	for i, d := range BusinessDecisions {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}

func joinReasons() string {
	s := make([]string, len(NotAppliedReasons))
	for i, r := range NotAppliedReasons {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
