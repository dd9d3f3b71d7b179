package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// What follows a check: feedback, overdue feedback, statistics, the monthly
// report and coverage. Answers are kept verbatim (json.RawMessage) besides
// the fields the command line prints.

// SubmitFeedback reports what was done with a check's answer (feedback is
// the JSON body of POST /v1/checks/{id}/feedback) and returns the feedback
// as recorded.
func (c *Client) SubmitFeedback(ctx context.Context, checkID string, feedback json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.Do(ctx, http.MethodPost, "/v1/checks/"+url.PathEscape(checkID)+"/feedback", feedback, "", &out)
	return out, err
}

// CheckFeedback returns every feedback on a check ({"feedback": […]}).
func (c *Client) CheckFeedback(ctx context.Context, checkID string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.Do(ctx, http.MethodGet, "/v1/checks/"+url.PathEscape(checkID)+"/feedback", nil, "", &out)
	return out, err
}

// OverdueCheck is a check whose feedback is overdue.
type OverdueCheck struct {
	CheckID            string    `json:"check_id"`
	LogIndex           int64     `json:"log_index"`
	Partner            string    `json:"partner"`
	Subject            string    `json:"subject_id"`
	Action             string    `json:"action"`
	Outcome            string    `json:"outcome"`
	CheckedAt          time.Time `json:"checked_at"`
	DueAt              time.Time `json:"due_at"`
	WorkingDaysOverdue int       `json:"working_days_overdue"`
}

// OverduePage is one page of overdue checks.
type OverduePage struct {
	Overdue []OverdueCheck `json:"overdue"`
	Next    string         `json:"next"`
}

// OverdueFeedback reads one page of checks whose feedback is overdue
// (administrators and auditors); partner "" for all.
func (c *Client) OverdueFeedback(ctx context.Context, partner, after string, limit int) (OverduePage, error) {
	var out OverduePage
	err := c.Do(ctx, http.MethodGet, "/v1/admin/feedback/overdue"+partnerPage(partner, after, limit), nil, "", &out)
	return out, err
}

// partnerPage is the query of a page of a partner's (or, with partner "",
// every partner's) follow-up listing.
func partnerPage(partner, after string, limit int) string {
	v := url.Values{}
	if partner != "" {
		v.Set("partner", partner)
	}
	if after != "" {
		v.Set("after", after)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return query(v)
}

// PendingCheck is a check awaiting feedback, with when it is due.
// WorkingDaysLeft counts the working days after today up to the day it is
// due (0: due by the end of today, or overdue); WorkingDaysOverdue the
// working days since it was due (0 when not overdue).
type PendingCheck struct {
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

// PendingPage is one page of checks awaiting feedback; Next is the after
// of the following page ("" on the last).
type PendingPage struct {
	Pending []PendingCheck `json:"pending"`
	Next    string         `json:"next"`
}

// PendingFeedback reads one page of the checks awaiting feedback (GET
// /v1/feedback/pending): a partner's own; for administrators and auditors
// partner's, or every partner's when partner is "" (each page recorded as
// a read act). after is the previous page's Next ("" for the first).
func (c *Client) PendingFeedback(ctx context.Context, partner, after string, limit int) (PendingPage, error) {
	var out PendingPage
	err := c.Do(ctx, http.MethodGet, "/v1/feedback/pending"+partnerPage(partner, after, limit), nil, "", &out)
	return out, err
}

// StatsGroup is the figures of one group of checks.
type StatsGroup struct {
	Key                string           `json:"key"`
	Period             string           `json:"period"`
	Checks             int64            `json:"checks"`
	Outcomes           map[string]int64 `json:"outcomes"`
	FeedbackExpected   int64            `json:"feedback_expected"`
	WithFeedback       int64            `json:"with_feedback"`
	FeedbackRate       float64          `json:"feedback_rate"`
	FeedbackLate       int64            `json:"feedback_late"`
	MeasuresApplied    int64            `json:"measures_applied"`
	MeasuresNotApplied int64            `json:"measures_not_applied"`
	AppliedPerFeedback float64          `json:"applied_per_feedback"`
	Overdue            int64            `json:"overdue"`
}

// StatsReport is GET /v1/admin/stats's answer.
type StatsReport struct {
	Groups []StatsGroup    `json:"groups"`
	Raw    json.RawMessage `json:"-"`
}

// StatsQuery asks for statistics of the checks made in [From, To).
type StatsQuery struct {
	From, To time.Time
	By       string // total, partner, action, list, region
	Partner  string
	Monthly  bool
}

// Stats reads tracking statistics (administrators and auditors).
func (c *Client) Stats(ctx context.Context, q StatsQuery) (StatsReport, error) {
	v := url.Values{"from": {q.From.Format(time.RFC3339)}, "to": {q.To.Format(time.RFC3339)}}
	if q.By != "" {
		v.Set("by", q.By)
	}
	if q.Partner != "" {
		v.Set("partner", q.Partner)
	}
	if q.Monthly {
		v.Set("period", "month")
	}
	var out StatsReport
	err := c.Do(ctx, http.MethodGet, "/v1/admin/stats"+query(v), nil, "", &out.Raw)
	if err == nil {
		err = json.Unmarshal(out.Raw, &out)
	}
	return out, err
}

// MonthlyReport returns the report of a month (YYYY-MM) as format (json
// or csv), verbatim.
func (c *Client) MonthlyReport(ctx context.Context, month, format string) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/v1/admin/reports/monthly"+query(url.Values{"month": {month}, "format": {format}}), nil, "", &out)
	return out, err
}

// CoverageReport is POST /v1/coverage's answer.
type CoverageReport struct {
	Rows         int64   `json:"rows"`
	Checked      int64   `json:"checked"`
	NoCheck      int64   `json:"no_check"`
	Unexplained  int64   `json:"unexplained_approvals"`
	Invalid      int64   `json:"invalid_rows"`
	CoverageRate float64 `json:"coverage_rate"`
	FileSHA256   string  `json:"file_sha256"`
	Findings     []struct {
		Line     int    `json:"line"`
		Finding  string `json:"finding"`
		Subject  string `json:"subject_id"`
		Action   string `json:"action"`
		CheckID  string `json:"check_id"`
		Outcome  string `json:"outcome"`
		Decision string `json:"feedback_decision"`
		Detail   string `json:"detail"`
	} `json:"findings"`
	FindingsTruncated bool            `json:"findings_truncated"`
	RecordID          string          `json:"record_id"`
	Raw               json.RawMessage `json:"-"`
}

// Coverage sends an approvals file (CSV, subject_id,action,approved_at
// [,reference]) as a stream and returns which approvals had no check in
// the windowDays before (0: the server's default), of partner's checks
// ("" for the caller's own, or every partner's for administrators and
// auditors). The file is never held in memory; the call is not retried.
func (c *Client) Coverage(ctx context.Context, file io.Reader, windowDays int, partner string) (CoverageReport, error) {
	v := url.Values{}
	if windowDays > 0 {
		v.Set("window_days", strconv.Itoa(windowDays))
	}
	if partner != "" {
		v.Set("partner", partner)
	}
	raw, err := c.postStream(ctx, "/v1/coverage"+query(v), "text/csv", file, -1)
	if err != nil {
		return CoverageReport{}, err
	}
	out := CoverageReport{Raw: raw}
	if err := json.Unmarshal(raw, &out); err != nil {
		return CoverageReport{}, fmt.Errorf("%w: POST /v1/coverage: %w", ErrResponse, err)
	}
	return out, nil
}
