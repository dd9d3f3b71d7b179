package console

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// CheckSearcher finds checks by partner, action, outcome and period
// (service.Stats, as GET /v1/admin/checks), recording each answer.
type CheckSearcher interface {
	FindChecks(ctx context.Context, r service.CheckSearch) (service.CheckPage, error)
}

// checkSearchView is the evidence page's search of checks: the form as
// filled in, and the page found. The form is a GET: it names no subject,
// so nothing in its address is personal data.
type checkSearchView struct {
	Available                bool
	Partner, Action, Outcome string
	From, To                 string // dates as typed, YYYY-MM-DD
	Outcomes                 []policy.Outcome
	Ran                      bool
	Period                   service.CheckPage // From, To: the period searched
	Checks                   []service.FoundCheck
	Older                    template.URL // the address of the next page; "" when none
}

var errSearchDate = errors.New("want a date, YYYY-MM-DD")

// searchChecks fills d.Search from the page's query; it searches only when
// the form was sent (search=1), so that opening the evidence page is not a
// search recorded in the log.
func (c *Console) searchChecks(r *http.Request, d *evidenceData) error {
	q := r.URL.Query()
	v := &checkSearchView{Available: c.deps.Checks != nil,
		Partner: strings.TrimSpace(q.Get("partner")), Action: strings.TrimSpace(q.Get("action")),
		Outcome: q.Get("outcome"), From: q.Get("from"), To: q.Get("to"),
		Outcomes: []policy.Outcome{policy.OutcomeProhibit, policy.OutcomeRestrict, policy.OutcomeStrictReview,
			policy.OutcomeReference, policy.OutcomeIncentive, policy.OutcomeClear, policy.OutcomeUnverifiable}}
	d.Search = v
	if q.Get("search") != "1" || !v.Available {
		return nil
	}
	for name, s := range map[string]string{"partner": v.Partner, "action": v.Action, "after": q.Get("after")} {
		if len(s) > maxFieldLen {
			return invalidInput(name, errFieldTooLong)
		}
	}
	// The console searches whole days of its zone: by default the 30
	// days up to today, shown in the form, so that the next page searches
	// the same period.
	today := c.now().In(c.zone).Format(time.DateOnly)
	if v.To == "" {
		v.To = today
	}
	if v.From == "" {
		if t, err := time.ParseInLocation(time.DateOnly, v.To, c.zone); err == nil {
			v.From = t.AddDate(0, 0, -29).Format(time.DateOnly)
		}
	}
	req := service.CheckSearch{Partner: v.Partner, Action: v.Action, Outcome: v.Outcome, After: q.Get("after"),
		Limit: service.DefaultCheckPage}
	// Dates are days of the console's zone; the last day is included, so
	// the period ends at the start of the day after it.
	for _, f := range []struct {
		name, raw string
		dst       *time.Time
		days      int
	}{{"from", v.From, &req.From, 0}, {"to", v.To, &req.To, 1}} {
		if f.raw == "" {
			continue // only when to is not a date, which is refused below
		}
		t, err := time.ParseInLocation(time.DateOnly, f.raw, c.zone)
		if err != nil {
			return invalidInput(f.name, errSearchDate)
		}
		*f.dst = t.AddDate(0, 0, f.days)
	}
	page, err := c.deps.Checks.FindChecks(r.Context(), req)
	if err != nil {
		var bad *service.CheckSearchError
		if errors.As(err, &bad) {
			return invalidInput(bad.Field, err)
		}
		return err
	}
	v.Ran, v.Period, v.Checks = true, page, page.Checks
	if page.Next != "" {
		// A template.URL: a plain string after "?" in href would be
		// query-escaped again, its = and & made %3d and %26.
		v.Older = nextPage("/console/evidence", url.Values{"search": {"1"}, "partner": {v.Partner}, "action": {v.Action},
			"outcome": {v.Outcome}, "from": {v.From}, "to": {v.To}, "after": {page.Next}})
	}
	return nil
}
