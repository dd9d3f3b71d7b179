package service

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
)

// An auditor's search of past checks (GET /v1/admin/checks): which checks a
// partner made, for which action, in which period, with which outcome. It
// reads the check index the stores derive from the evidence log; the
// subject's identifier is neither a filter nor in the answer (personal
// data in a listing): the auditor opens a check by its id for that.

// Check search limits. Every search reads a bounded period, so that a page
// costs at most the index entries of that period matching the filter (the
// stores seek the partner's or action's entries of the period and read
// them newest first): 30 days back from to when from is absent, a year at
// most when both are given ("last March", a year's review).
const (
	DefaultCheckWindow = 30 * 24 * time.Hour
	MaxCheckWindow     = 366 * 24 * time.Hour
	DefaultCheckPage   = 50
)

// ActChecksSearched is the act recording that a search's answer left
// credgate, with its filter (no subject data is in either).
const ActChecksSearched Act = "checks_searched"

// ErrInvalidCheckSearch: a search's filter or cursor is malformed.
var ErrInvalidCheckSearch = errors.New("invalid check search")

// CheckSearchError is an ErrInvalidCheckSearch naming the parameter.
type CheckSearchError struct {
	Field  string
	Reason string
}

func (e *CheckSearchError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes it an ErrInvalidCheckSearch.
func (e *CheckSearchError) Unwrap() error { return ErrInvalidCheckSearch }

// CheckCursor is the position of the last check of a page: the next page
// holds the checks strictly older, by (CheckedAt, Index) descending.
type CheckCursor struct {
	CheckedAt time.Time
	Index     int64
}

// String is the cursor as given to callers: opaque, URL-safe.
func (c CheckCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CheckedAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.Index, 10)))
}

// ParseCheckCursor reads a cursor String made.
func ParseCheckCursor(s string) (CheckCursor, error) {
	bad := &CheckSearchError{Field: "after", Reason: "not a cursor of this listing (next of the previous page)"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return CheckCursor{}, bad
	}
	at, idx, ok := strings.Cut(string(b), ".")
	if !ok {
		return CheckCursor{}, bad
	}
	us, err1 := strconv.ParseInt(at, 10, 64)
	i, err2 := strconv.ParseInt(idx, 10, 64)
	if err1 != nil || err2 != nil || i < 0 {
		return CheckCursor{}, bad
	}
	return CheckCursor{CheckedAt: time.UnixMicro(us).UTC(), Index: i}, nil
}

// CheckQuery is a search as the store runs it: every field set but the
// optional filters (empty: any) and After.
type CheckQuery struct {
	Partner, Action, Outcome string
	From, To                 time.Time // checked_at in [From, To)
	After                    *CheckCursor
	Limit                    int
}

// FoundCheck is one check of a search: where it is in the log and what
// was answered, without the subject.
type FoundCheck struct {
	CheckID   string    `json:"check_id"`
	LogIndex  int64     `json:"log_index"`
	Partner   string    `json:"partner"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"`
	Region    string    `json:"region"`
	CheckedAt time.Time `json:"checked_at"`
}

// CheckFinder searches the check index, newest first.
type CheckFinder interface {
	FindChecks(ctx context.Context, q CheckQuery) ([]FoundCheck, error)
}

// CheckSearch is a search as asked: zero times and limit take defaults.
type CheckSearch struct {
	Partner, Action, Outcome string
	From, To                 time.Time
	After                    string // cursor; "" for the first page
	Limit                    int
}

// CheckPage is a page of a search and the period it covered.
type CheckPage struct {
	From, To time.Time
	Checks   []FoundCheck
	// Next is the cursor of the next page when this one is full.
	Next string
}

// FindChecks answers a search to an administrator or auditor (the gateway
// and console authorise), newest first, and records that it did.
func (s *Stats) FindChecks(ctx context.Context, r CheckSearch) (CheckPage, error) {
	q, err := s.checkQuery(r)
	if err != nil {
		return CheckPage{}, err
	}
	found, err := s.store.FindChecks(ctx, q)
	if err != nil {
		return CheckPage{}, fmt.Errorf("search checks: %w", err)
	}
	page := CheckPage{From: q.From, To: q.To, Checks: found}
	if len(found) == q.Limit {
		last := found[len(found)-1]
		page.Next = CheckCursor{CheckedAt: last.CheckedAt, Index: last.LogIndex}.String()
	}
	err = s.record(ctx, ActChecksSearched, "", map[string]any{"partner": r.Partner, "action": r.Action,
		"outcome": r.Outcome, "from": q.From, "to": q.To, "checks": len(found)})
	return page, err
}

func (s *Stats) checkQuery(r CheckSearch) (CheckQuery, error) {
	q := CheckQuery{Partner: r.Partner, Action: r.Action, Outcome: r.Outcome, From: r.From.UTC(), To: r.To.UTC(), Limit: r.Limit}
	if q.Limit == 0 {
		q.Limit = DefaultCheckPage
	}
	if q.Limit < 0 || q.Limit > MaxPage {
		return q, &CheckSearchError{Field: "limit", Reason: "must be 1.." + strconv.Itoa(MaxPage)}
	}
	if q.Outcome != "" && !knownOutcome(policy.Outcome(q.Outcome)) {
		return q, &CheckSearchError{Field: "outcome", Reason: "not an outcome credgate answers"}
	}
	for _, f := range []struct{ name, v string }{{"partner", q.Partner}, {"action", q.Action}} {
		if len(f.v) > 256 {
			return q, &CheckSearchError{Field: f.name, Reason: "longer than 256 bytes"}
		}
	}
	if q.To.IsZero() {
		q.To = s.now().UTC()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultCheckWindow)
	}
	if !q.From.Before(q.To) {
		return q, &CheckSearchError{Field: "from", Reason: "must be before to"}
	}
	if q.To.Sub(q.From) > MaxCheckWindow {
		return q, &CheckSearchError{Field: "from", Reason: "the period from..to is at most 366 days"}
	}
	if r.After != "" {
		c, err := ParseCheckCursor(r.After)
		if err != nil {
			return q, err
		}
		q.After = &c
	}
	return q, nil
}

func knownOutcome(o policy.Outcome) bool {
	switch o {
	case policy.OutcomeProhibit, policy.OutcomeRestrict, policy.OutcomeStrictReview, policy.OutcomeReference,
		policy.OutcomeIncentive, policy.OutcomeClear, policy.OutcomeUnverifiable:
		return true
	}
	return false
}
