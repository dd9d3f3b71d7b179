package service

import (
	"context"
	"time"
)

// What follows a check is read from tables the stores derive from the
// evidence log (migration 0010): the index of checks, the feedback records
// and the commitments with their state. They are written by the log's
// appends only, so this interface has no writes: feedback and commitments
// are recorded by appending evidence.

// IndexedCheck is a check as the index holds it.
type IndexedCheck struct {
	CheckID   string
	Index     int64 // log index of the check's record
	Partner   string
	Subject   string
	Action    string
	Outcome   string
	Region    string
	CheckedAt time.Time
}

// FeedbackRow is one feedback record as the index holds it; its body is
// the evidence record of the same id.
type FeedbackRow struct {
	ID         string
	Index      int64
	CheckID    string
	Partner    string
	Decision   string
	Applied    int
	NotApplied int
	RecordedAt time.Time
	// Late says whether the feedback came after its due time, as its body
	// recorded when it was accepted; nil when the body does not say.
	Late *bool
}

// FeedbackFilter selects feedback records in log order.
type FeedbackFilter struct {
	Partner string // "": every partner
	After   int64  // log index; -1: from the start
	Limit   int    // capped at MaxPage
}

// ActionCutoff is a group of actions sharing a feedback deadline: checks of
// them made before Before are overdue without feedback.
type ActionCutoff struct {
	Actions []string
	Before  time.Time
}

// OverdueFilter selects the checks whose feedback is overdue: checks whose
// answer applied measures (outcome neither clear nor unverifiable), with
// no feedback, made by a partner (not an administrator or auditor) before
// their action's cutoff; in log order. Cutoffs no check time reaches
// select every check awaiting feedback, due or not (Feedback.Pending).
type OverdueFilter struct {
	Cutoffs []ActionCutoff
	Partner string
	After   int64 // log index; -1: from the start
	Limit   int
}

// StatsBy is the dimension statistics are grouped by.
type StatsBy string

// Dimensions of statistics.
const (
	StatsTotal   StatsBy = ""
	StatsPartner StatsBy = "partner"
	StatsAction  StatsBy = "action"
	StatsList    StatsBy = "list"
	StatsRegion  StatsBy = "region"
)

// StatsQuery selects checks made in [From, To), of one partner or all,
// grouped by a dimension.
type StatsQuery struct {
	From, To time.Time
	Partner  string
	By       StatsBy
}

// StatsRow is the checks of one group and outcome, with their current
// feedback: how many have one, the measures it reports applied and not,
// and how many report an approval (approved or approved with conditions).
type StatsRow struct {
	Key          string
	Outcome      string
	Checks       int64
	WithFeedback int64
	Applied      int64
	NotApplied   int64
	Approved     int64
	// Staff counts the checks made by administrators and auditors, of
	// whom no feedback is expected.
	Staff int64
	// Late counts the checks, not Staff, whose first feedback came after
	// its due time (FeedbackRow.Late true; unknown counts neither way).
	Late int64
}

// CheckProbe asks for the last check of a subject for an action made in
// (Since, At].
type CheckProbe struct {
	Subject, Action string
	Since, At       time.Time
}

// ProbeHit is the answer to a probe: the check found (nil: none), with the
// decision of its current feedback ("" without feedback).
type ProbeHit struct {
	Check    *IndexedCheck
	Decision string
}

// MaxProbes caps the probes of one LastChecks call.
const MaxProbes = 250

// CommitmentRow is a commitment and its state.
type CommitmentRow struct {
	ID           string
	Index        int64
	Partner      string
	Subject      string
	Kind         string
	CheckID      string
	ProceedingID string
	Due          string // YYYY-MM-DD
	State        string // open, fulfilled, breached
	StateRecord  string
	StateAt      *time.Time
	RecordedAt   time.Time
}

// CommitmentFilter selects commitments by id.
type CommitmentFilter struct {
	Partner string
	Subject string
	State   string
	// DueBefore ("YYYY-MM-DD"): only those due before that day.
	DueBefore string
	After     string
	Limit     int
}

// FollowUpStore reads what the stores derive from the evidence log for
// feedback, statistics, coverage and commitments. Both adapters pass the
// conformance suite's follow-up tests (adapters/storetest).
type FollowUpStore interface {
	// IndexedCheck returns one check; ErrNotFound when not indexed.
	IndexedCheck(ctx context.Context, checkID string) (IndexedCheck, error)
	// FeedbackOf returns a check's feedback records in log order.
	FeedbackOf(ctx context.Context, checkID string) ([]FeedbackRow, error)
	ListFeedback(ctx context.Context, f FeedbackFilter) ([]FeedbackRow, error)
	OverdueChecks(ctx context.Context, f OverdueFilter) ([]IndexedCheck, error)
	// CheckStats counts checks by group and outcome.
	CheckStats(ctx context.Context, q StatsQuery) ([]StatsRow, error)
	// OverdueCounts counts, by group, the checks of q that are overdue by
	// cutoffs (OverdueFilter).
	OverdueCounts(ctx context.Context, q StatsQuery, cutoffs []ActionCutoff) (map[string]int64, error)
	// LastChecks answers up to MaxProbes probes, in order, over the checks
	// of partner ("": every partner).
	LastChecks(ctx context.Context, partner string, probes []CheckProbe) ([]ProbeHit, error)
	// Commitment returns ErrNotFound when there is no such commitment.
	Commitment(ctx context.Context, id string) (CommitmentRow, error)
	ListCommitments(ctx context.Context, f CommitmentFilter) ([]CommitmentRow, error)
	// CheckFinder is the auditor's search of checks (checksearch.go).
	CheckFinder
}
