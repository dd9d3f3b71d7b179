package console

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/credgate/credgate/service"
)

// OverdueReader lists the checks whose execution feedback is overdue, as
// GET /v1/admin/feedback/overdue does. service.Feedback is it.
type OverdueReader interface {
	Overdue(ctx context.Context, partner string, after int64, limit int) ([]service.OverdueView, error)
}

// overdueScan bounds the overdue checks read to count them per partner:
// past it the counts are "at least".
const overdueScan = 5 * service.MaxPage

type overdueData struct {
	Available bool
	Partner   string
	Overdue   []service.OverdueView
	Next      template.URL // the address of the next page; "" when none
	Paged     bool
	// PerPartner counts the overdue checks of each partner, most first,
	// when no partner is chosen; AtLeast that there were more than
	// overdueScan to count.
	PerPartner []partnerOverdue
	AtLeast    bool
	Scanned    int
}

type partnerOverdue struct {
	Partner string
	Count   int
}

// overduePage lists the checks whose partner has not sent execution
// feedback (执行反馈) in time, of one partner or all, with how many
// working days each is overdue; without a partner chosen it counts them
// per partner first, for a supervisor to see who does not report back.
// The list names each check, not its subject: who was checked is on the
// check's page (the evidence page), whose opening is a recorded read of
// that subject's data (check_read), as a list of many is not.
func (c *Console) overduePage(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(r, s, "overdue")
	q := r.URL.Query()
	d := &overdueData{Available: c.deps.Feedback != nil, Scanned: overdueScan, Partner: strings.TrimSpace(q.Get("partner"))}
	p.Data = d
	fail := func(err error) {
		p.Error = c.problem(p.Lang, err)
		c.render(w, p.Error.Status, "overdue", p)
	}
	if !d.Available {
		c.render(w, http.StatusOK, "overdue", p)
		return
	}
	if len(d.Partner) > maxFieldLen {
		fail(invalidInput("partner", errFieldTooLong))
		return
	}
	after, err := readAfter(q)
	if err != nil {
		fail(err)
		return
	}
	d.Paged = after >= 0
	rows, err := c.deps.Feedback.Overdue(r.Context(), d.Partner, after, viewPage)
	if err != nil {
		fail(err)
		return
	}
	d.Overdue = rows
	if len(rows) == viewPage {
		d.Next = nextPage("/console/overdue", url.Values{"partner": {d.Partner}, "after": {strconv.FormatInt(rows[len(rows)-1].LogIndex, 10)}})
	}
	if d.Partner == "" && !d.Paged {
		if d.PerPartner, d.AtLeast, err = c.overdueByPartner(r.Context()); err != nil {
			fail(err)
			return
		}
	}
	c.render(w, http.StatusOK, "overdue", p)
}

// overdueByPartner counts overdue checks per partner over the first
// overdueScan of them.
func (c *Console) overdueByPartner(ctx context.Context) ([]partnerOverdue, bool, error) {
	counts := map[string]int{}
	after, read := int64(-1), 0
	for read < overdueScan {
		rows, err := c.deps.Feedback.Overdue(ctx, "", after, service.MaxPage)
		if err != nil {
			return nil, false, err
		}
		for _, o := range rows {
			counts[o.Partner]++
		}
		read += len(rows)
		if len(rows) < service.MaxPage {
			break
		}
		after = rows[len(rows)-1].LogIndex
	}
	out := make([]partnerOverdue, 0, len(counts))
	for p, n := range counts {
		out = append(out, partnerOverdue{Partner: p, Count: n})
	}
	slices.SortFunc(out, func(a, b partnerOverdue) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Partner, b.Partner)
	})
	return out, read >= overdueScan, nil
}
