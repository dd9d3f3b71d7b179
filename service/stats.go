package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/credgate/credgate/policy"
)

// Tracking statistics (跟踪问效, 篇三(二十), 篇五(二十二)) for the credit
// office and auditors: checks, outcomes, feedback and overdue feedback, by
// partner, action, list, region and period, and the monthly report the
// texts ask for by the 3rd and the 10th (篇十一, 篇十二 第四条).

// ErrInvalidStatsQuery: a period, grouping or month that is not accepted.
var ErrInvalidStatsQuery = errors.New("invalid statistics query")

// MaxStatsPeriods caps the periods of one statistics request.
const MaxStatsPeriods = 36

// Outcomes in the order statistics list them.
var statsOutcomes = []policy.Outcome{policy.OutcomeProhibit, policy.OutcomeRestrict, policy.OutcomeStrictReview,
	policy.OutcomeReference, policy.OutcomeIncentive, policy.OutcomeClear, policy.OutcomeUnverifiable}

// StatsGroup is the figures of one group of checks.
type StatsGroup struct {
	Key    string `json:"key"`
	Period string `json:"period,omitempty"`
	Checks int64  `json:"checks"`
	// Outcomes counts the checks by outcome.
	Outcomes map[string]int64 `json:"outcomes"`
	// FeedbackExpected counts the checks whose answer applied measures,
	// made by partners (administrators and auditors report no feedback);
	// WithFeedback those of them with feedback; FeedbackRate the ratio.
	FeedbackExpected int64   `json:"feedback_expected"`
	WithFeedback     int64   `json:"with_feedback"`
	FeedbackRate     float64 `json:"feedback_rate"`
	// FeedbackLate counts those of WithFeedback whose first feedback came
	// after its due time (a later correction's time does not count).
	// Feedback whose lateness the index does not know (its body, erased,
	// no longer says) counts neither late nor in time.
	FeedbackLate int64 `json:"feedback_late"`
	// MeasuresApplied and MeasuresNotApplied sum the current feedback;
	// AppliedPerFeedback is applied measures per feedback.
	MeasuresApplied    int64   `json:"measures_applied"`
	MeasuresNotApplied int64   `json:"measures_not_applied"`
	AppliedPerFeedback float64 `json:"applied_per_feedback"`
	// Overdue counts the checks whose feedback is overdue now.
	Overdue int64 `json:"overdue"`
	// ApprovedAfterProhibit and ApprovedAfterRestrict count the checks
	// answered prohibit (restrict) whose current feedback reports an
	// approval: what was granted although credgate answered that the
	// action was prohibited (restricted) for the subject.
	ApprovedAfterProhibit int64 `json:"approved_after_prohibit"`
	ApprovedAfterRestrict int64 `json:"approved_after_restrict"`

	// staff counts the group's checks made by administrators and
	// auditors: a partner group of staff only is left out of the monthly
	// report's partner section.
	staff int64
}

// StatsRequest asks for the statistics of checks made in [From, To).
type StatsRequest struct {
	From, To time.Time
	By       StatsBy
	Partner  string
	// Month splits the range into calendar months (in the catalogue's
	// zone), each a period of its own.
	Month bool
}

// StatsReport is the answer to a statistics request.
type StatsReport struct {
	From        time.Time    `json:"from"`
	To          time.Time    `json:"to"`
	By          string       `json:"by,omitempty"`
	Partner     string       `json:"partner,omitempty"`
	GeneratedAt time.Time    `json:"generated_at"`
	Groups      []StatsGroup `json:"groups"`
}

// Stats computes tracking statistics over the check index.
type Stats struct {
	catalog *policy.Catalog
	store   FollowUpStore
	now     func() time.Time
	// audit records every answer that leaves (nil: none, for tests of
	// other concerns).
	audit *Audit
}

// Acts of statistics: figures that left credgate.
const (
	ActStatsComputed   Act = "statistics_computed"
	ActMonthlyReported Act = "monthly_report_generated"
)

// WithStatsAudit records each answer in the evidence log.
func WithStatsAudit(a *Audit) StatsOption { return func(s *Stats) { s.audit = a } }

func (s *Stats) record(ctx context.Context, act Act, target string, details map[string]any) error {
	if s.audit == nil {
		return nil
	}
	_, err := s.audit.Record(ctx, act, target, details)
	return err
}

// StatsOption configures Stats.
type StatsOption func(*Stats)

// WithStatsClock sets the clock (tests).
func WithStatsClock(now func() time.Time) StatsOption { return func(s *Stats) { s.now = now } }

// NewStats returns the statistics use case.
func NewStats(cat *policy.Catalog, store FollowUpStore, opts ...StatsOption) *Stats {
	s := &Stats{catalog: cat, store: store, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ParseStatsBy reads a grouping ("" or total, partner, action, list, region).
func ParseStatsBy(s string) (StatsBy, error) {
	switch StatsBy(s) {
	case StatsTotal, "total":
		return StatsTotal, nil
	case StatsPartner, StatsAction, StatsList, StatsRegion:
		return StatsBy(s), nil
	}
	return "", fmt.Errorf("%w: by %q is not one of total, partner, action, list, region", ErrInvalidStatsQuery, s)
}

// Compute answers a statistics request, recorded as an act.
func (s *Stats) Compute(ctx context.Context, r StatsRequest) (StatsReport, error) {
	rep, err := s.compute(ctx, r)
	if err != nil {
		return StatsReport{}, err
	}
	err = s.record(ctx, ActStatsComputed, "", map[string]any{"from": rep.From, "to": rep.To, "by": rep.By,
		"partner": r.Partner, "month": r.Month, "groups": len(rep.Groups)})
	return rep, err
}

func (s *Stats) compute(ctx context.Context, r StatsRequest) (StatsReport, error) {
	if !r.From.Before(r.To) {
		return StatsReport{}, fmt.Errorf("%w: from must be before to", ErrInvalidStatsQuery)
	}
	periods := [][2]time.Time{{r.From, r.To}}
	if r.Month {
		periods = s.months(r.From, r.To)
		if len(periods) > MaxStatsPeriods {
			return StatsReport{}, fmt.Errorf("%w: more than %d months", ErrInvalidStatsQuery, MaxStatsPeriods)
		}
	}
	now := s.now().UTC()
	cutoffs := Cutoffs(s.catalog, now)
	rep := StatsReport{From: r.From.UTC(), To: r.To.UTC(), By: string(r.By), Partner: r.Partner, GeneratedAt: now, Groups: []StatsGroup{}}
	for _, p := range periods {
		q := StatsQuery{From: p[0], To: p[1], Partner: r.Partner, By: r.By}
		groups, err := s.groups(ctx, q, cutoffs)
		if err != nil {
			return StatsReport{}, err
		}
		for i := range groups {
			if r.Month {
				groups[i].Period = p[0].In(s.catalog.Calendar().Location()).Format("2006-01")
			}
		}
		rep.Groups = append(rep.Groups, groups...)
	}
	return rep, nil
}

// months splits [from, to) at the starts of calendar months.
func (s *Stats) months(from, to time.Time) [][2]time.Time {
	loc := s.catalog.Calendar().Location()
	var out [][2]time.Time
	f := from.In(loc)
	start := from
	for next := time.Date(f.Year(), f.Month()+1, 1, 0, 0, 0, 0, loc); ; next = next.AddDate(0, 1, 0) {
		if !next.Before(to) {
			return append(out, [2]time.Time{start, to})
		}
		out = append(out, [2]time.Time{start, next})
		start = next
		if len(out) > MaxStatsPeriods {
			return out
		}
	}
}

func (s *Stats) groups(ctx context.Context, q StatsQuery, cutoffs []ActionCutoff) ([]StatsGroup, error) {
	rows, err := s.store.CheckStats(ctx, q)
	if err != nil {
		return nil, err
	}
	overdue, err := s.store.OverdueCounts(ctx, q, cutoffs)
	if err != nil {
		return nil, err
	}
	var out []StatsGroup
	at := map[string]int{}
	group := func(key string) *StatsGroup {
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, StatsGroup{Key: key, Outcomes: map[string]int64{}})
		}
		return &out[i]
	}
	for _, r := range rows {
		g := group(r.Key)
		g.Checks += r.Checks
		g.Outcomes[r.Outcome] += r.Checks
		g.staff += r.Staff
		if r.Outcome != string(policy.OutcomeClear) && r.Outcome != string(policy.OutcomeUnverifiable) {
			g.FeedbackExpected += r.Checks - r.Staff
			g.WithFeedback += r.WithFeedback
			if g.WithFeedback > g.FeedbackExpected {
				g.WithFeedback = g.FeedbackExpected // a staff check's feedback, were there one, is not expected
			}
			g.FeedbackLate += r.Late // the store leaves staff checks out of it
		}
		g.MeasuresApplied += r.Applied
		g.MeasuresNotApplied += r.NotApplied
		switch policy.Outcome(r.Outcome) {
		case policy.OutcomeProhibit:
			g.ApprovedAfterProhibit += r.Approved
		case policy.OutcomeRestrict:
			g.ApprovedAfterRestrict += r.Approved
		}
	}
	for key, n := range overdue {
		group(key).Overdue = n
	}
	if q.By == StatsTotal && len(out) == 0 {
		group("")
	}
	for i := range out {
		g := &out[i]
		if g.FeedbackExpected > 0 {
			g.FeedbackRate = ratio(g.WithFeedback, g.FeedbackExpected)
		}
		if g.WithFeedback > 0 {
			g.AppliedPerFeedback = ratio(g.MeasuresApplied, g.WithFeedback)
		}
	}
	return out, nil
}

func ratio(a, b int64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(a)/float64(b), 'f', 4, 64), 64)
	return v
}

// MonthlyReport is the month's figures in every grouping, as the credit
// office reports them.
type MonthlyReport struct {
	Month       string       `json:"month"`
	From        time.Time    `json:"from"`
	To          time.Time    `json:"to"`
	GeneratedAt time.Time    `json:"generated_at"`
	Total       StatsGroup   `json:"total"`
	ByPartner   []StatsGroup `json:"by_partner"`
	ByAction    []StatsGroup `json:"by_action"`
	ByList      []StatsGroup `json:"by_list"`
	ByRegion    []StatsGroup `json:"by_region"`
	// ReportSHA256 is the hex SHA-256 of the report's CSV (CSV), which
	// holds every figure: the act monthly_report_generated records it,
	// so that a report handed on can be matched with the act.
	ReportSHA256 string `json:"report_sha256"`
	// RecordID is the evidence record of the act.
	RecordID string `json:"record_id,omitempty"`
}

// ParseMonth reads YYYY-MM as the month's range in the calendar's zone.
func (s *Stats) ParseMonth(month string) (from, to time.Time, err error) {
	t, err := time.ParseInLocation("2006-01", month, s.catalog.Calendar().Location())
	if err != nil || len(month) != 7 {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: month %q is not YYYY-MM", ErrInvalidStatsQuery, month)
	}
	return t, t.AddDate(0, 1, 0), nil
}

// Monthly computes the report of a month (YYYY-MM).
func (s *Stats) Monthly(ctx context.Context, month string) (MonthlyReport, error) {
	from, to, err := s.ParseMonth(month)
	if err != nil {
		return MonthlyReport{}, err
	}
	if from.After(s.now()) {
		return MonthlyReport{}, fmt.Errorf("%w: month %s has not begun", ErrInvalidStatsQuery, month)
	}
	rep := MonthlyReport{Month: month, From: from.UTC(), To: to.UTC()}
	for _, part := range []struct {
		by  StatsBy
		out *[]StatsGroup
	}{{StatsTotal, nil}, {StatsPartner, &rep.ByPartner}, {StatsAction, &rep.ByAction}, {StatsList, &rep.ByList}, {StatsRegion, &rep.ByRegion}} {
		r, err := s.compute(ctx, StatsRequest{From: from, To: to, By: part.by})
		if err != nil {
			return MonthlyReport{}, err
		}
		rep.GeneratedAt = r.GeneratedAt
		if part.out == nil {
			rep.Total = r.Groups[0]
			continue
		}
		if part.by == StatsPartner {
			// Administrators' and auditors' own checks are not a platform's.
			r.Groups = slices.DeleteFunc(r.Groups, func(g StatsGroup) bool { return g.Checks > 0 && g.staff == g.Checks })
		}
		*part.out = r.Groups
	}
	table, err := rep.CSV()
	if err != nil {
		return MonthlyReport{}, fmt.Errorf("monthly report: %w", err)
	}
	sum := sha256.Sum256(table)
	rep.ReportSHA256 = hex.EncodeToString(sum[:])
	if s.audit != nil {
		rec, err := s.audit.Record(ctx, ActMonthlyReported, month, map[string]any{"checks": rep.Total.Checks,
			"with_feedback": rep.Total.WithFeedback, "feedback_late": rep.Total.FeedbackLate, "overdue": rep.Total.Overdue, "report_sha256": rep.ReportSHA256})
		if err != nil {
			return MonthlyReport{}, err
		}
		rep.RecordID = rec.ID
	}
	return rep, nil
}

// CSV renders the report as one table: a row per group, the section
// (total, partner, action, list, region) first. It is the canonical form
// of the report's figures (ReportSHA256).
func (m MonthlyReport) CSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"month", "section", "key", "checks"}
	for _, o := range statsOutcomes {
		head = append(head, string(o))
	}
	head = append(head, "feedback_expected", "with_feedback", "feedback_rate", "feedback_late", "measures_applied", "measures_not_applied",
		"applied_per_feedback", "overdue", "approved_after_prohibit", "approved_after_restrict")
	_ = w.Write(head)
	row := func(section string, g StatsGroup) {
		r := []string{m.Month, section, g.Key, strconv.FormatInt(g.Checks, 10)}
		for _, o := range statsOutcomes {
			r = append(r, strconv.FormatInt(g.Outcomes[string(o)], 10))
		}
		r = append(r, strconv.FormatInt(g.FeedbackExpected, 10), strconv.FormatInt(g.WithFeedback, 10),
			strconv.FormatFloat(g.FeedbackRate, 'f', -1, 64), strconv.FormatInt(g.FeedbackLate, 10), strconv.FormatInt(g.MeasuresApplied, 10),
			strconv.FormatInt(g.MeasuresNotApplied, 10), strconv.FormatFloat(g.AppliedPerFeedback, 'f', -1, 64),
			strconv.FormatInt(g.Overdue, 10), strconv.FormatInt(g.ApprovedAfterProhibit, 10), strconv.FormatInt(g.ApprovedAfterRestrict, 10))
		_ = w.Write(r)
	}
	row("total", m.Total)
	for _, s := range []struct {
		name   string
		groups []StatsGroup
	}{{"partner", m.ByPartner}, {"action", m.ByAction}, {"list", m.ByList}, {"region", m.ByRegion}} {
		for _, g := range s.groups {
			row(s.name, g)
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}
