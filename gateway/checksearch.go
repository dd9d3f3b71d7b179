package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/service"
)

// checkSearchAnswer is a page of GET /v1/admin/checks: the period searched
// (defaults filled in) and, when the page is full, the cursor of the next.
type checkSearchAnswer struct {
	From   time.Time            `json:"from"`
	To     time.Time            `json:"to"`
	Checks []service.FoundCheck `json:"checks"`
	Next   string               `json:"next,omitempty"`
}

// searchChecks serves GET /v1/admin/checks?partner=&action=&outcome=&from=&to=&after=&limit=
// to administrators and auditors: the checks of a period, newest first,
// without their subjects (ID numbers are not listed, nor taken in URLs).
func (s *Server) searchChecks(c *gin.Context) {
	r := service.CheckSearch{Partner: c.Query("partner"), Action: c.Query("action"), Outcome: c.Query("outcome"),
		After: c.Query("after"), Limit: service.DefaultCheckPage}
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &r.From}, {"to", &r.To}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		t, err := parseInstant(raw)
		if err != nil {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", q.name+": "+err.Error())
			p.Field = q.name
			fail(c, p)
			return
		}
		*q.dst = t
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > service.MaxPage {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "limit must be 1.."+strconv.Itoa(service.MaxPage))
			p.Field = "limit"
			fail(c, p)
			return
		}
		r.Limit = n
	}
	page, err := s.followUp.stats.FindChecks(c.Request.Context(), r)
	if err != nil {
		var bad *service.CheckSearchError
		if errors.As(err, &bad) {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", bad.Error())
			p.Field = bad.Field
			err = p
		}
		fail(c, err)
		return
	}
	out := checkSearchAnswer{From: page.From, To: page.To, Checks: page.Checks, Next: page.Next}
	if out.Checks == nil {
		out.Checks = []service.FoundCheck{}
	}
	c.JSON(http.StatusOK, out)
}
