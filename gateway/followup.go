package gateway

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/service"
)

// What follows a check: execution feedback and overdue feedback, tracking
// statistics and the monthly report, coverage of approvals (应查必查), and
// credit commitments.

// MaxCoverageBody caps an approvals file: about 3 million rows of a USCC,
// an action, a time and a short reference.
const MaxCoverageBody = 256 << 20

// followUpAPI holds the follow-up use cases.
type followUpAPI struct {
	feedback    *service.Feedback
	stats       *service.Stats
	coverage    *service.Coverage
	commitments *service.Commitments
}

// WithFollowUp serves feedback, statistics, coverage and commitments.
func WithFollowUp(f *service.Feedback, st *service.Stats, cov *service.Coverage, cm *service.Commitments) Option {
	return func(s *Server) {
		s.followUp = &followUpAPI{feedback: f, stats: st, coverage: cov, commitments: cm}
	}
}

// mountFollowUp mounts the routes whether or not WithFollowUp was given,
// so that the route table is the same in every configuration; without it
// they answer 503 follow_up_unavailable.
func (s *Server) mountFollowUp(authed *gin.RouterGroup) {
	need := s.needFollowUp
	g := authed.Group("", need, s.asActor)
	g.POST("/checks/:id/feedback", limitBody(MaxJSONBody), s.submitFeedback)
	g.GET("/checks/:id/feedback", s.checkFeedback)
	g.GET("/feedback", s.listFeedback)
	g.GET("/feedback/pending", s.pendingFeedback)
	g.POST("/coverage", limitBody(MaxCoverageBody), s.runCoverage)
	g.POST("/commitments", limitBody(MaxJSONBody), s.recordCommitment)
	g.GET("/commitments", s.listCommitments)
	g.GET("/commitments/:id", s.getCommitment)
	g.POST("/commitments/:id/fulfil", limitBody(MaxJSONBody), s.changeCommitment(service.CommitmentFulfilled))
	g.POST("/commitments/:id/breach", limitBody(MaxJSONBody), s.changeCommitment(service.CommitmentBreached))
	office := authed.Group("/admin", require(service.RoleAdmin, service.RoleAuditor), need, s.asActor)
	office.GET("/feedback/overdue", s.overdueFeedback)
	office.GET("/stats", s.statistics)
	office.GET("/reports/monthly", s.monthlyReport)
}

func (s *Server) needFollowUp(c *gin.Context) {
	if s.followUp == nil {
		fail(c, problem(http.StatusServiceUnavailable, "follow_up_unavailable", "Follow-up unavailable",
			"this server is not configured for feedback, statistics, coverage and commitments"))
		return
	}
	c.Next()
}

// page reads after (a log index, or -1) and limit (default 100).
func page(c *gin.Context) (after int64, limit int, ok bool) {
	after = -1
	if limit, ok = queryLimit(c); !ok {
		return 0, 0, false
	}
	if a := c.Query("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "after must be a log index (next of the previous page)")
			p.Field = "after"
			fail(c, p)
			return 0, 0, false
		}
		after = n
	}
	return after, limit, true
}

func (s *Server) submitFeedback(c *gin.Context) {
	var in service.FeedbackInput
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	v, err := s.followUp.feedback.Submit(c.Request.Context(), callerOf(c), c.Param("id"), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, v)
}

func (s *Server) checkFeedback(c *gin.Context) {
	out, err := s.followUp.feedback.OfCheck(readContext(c), callerOf(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"feedback": out})
}

func (s *Server) listFeedback(c *gin.Context) {
	after, limit, ok := page(c)
	if !ok {
		return
	}
	out, err := s.followUp.feedback.List(readContext(c), callerOf(c), c.Query("partner"), after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listing("feedback", out, out, limit, func(f service.FeedbackView) string { return strconv.FormatUint(f.Receipt.LogIndex, 10) }))
}

// pendingFeedback lists the checks awaiting the caller's feedback (staff:
// any partner's, recorded as a read act) and when each is due.
func (s *Server) pendingFeedback(c *gin.Context) {
	after, limit, ok := page(c)
	if !ok {
		return
	}
	out, err := s.followUp.feedback.Pending(readContext(c), callerOf(c), c.Query("partner"), after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listing("pending", out, out, limit, func(p service.PendingView) string { return strconv.FormatInt(p.LogIndex, 10) }))
}

func (s *Server) overdueFeedback(c *gin.Context) {
	after, limit, ok := page(c)
	if !ok {
		return
	}
	out, err := s.followUp.feedback.ReadOverdue(readContext(c), callerOf(c), c.Query("partner"), after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listing("overdue", out, out, limit, func(o service.OverdueView) string { return strconv.FormatInt(o.LogIndex, 10) }))
}

func (s *Server) statistics(c *gin.Context) {
	var r service.StatsRequest
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &r.From}, {"to", &r.To}} {
		t, err := parseInstant(c.Query(q.name))
		if err != nil {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", q.name+": "+err.Error())
			p.Field = q.name
			fail(c, p)
			return
		}
		*q.dst = t
	}
	by, err := service.ParseStatsBy(c.Query("by"))
	if err != nil {
		fail(c, err)
		return
	}
	switch c.Query("period") {
	case "":
	case "month":
		r.Month = true
	default:
		p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "period is month or absent")
		p.Field = "period"
		fail(c, p)
		return
	}
	r.By, r.Partner = by, c.Query("partner")
	rep, err := s.followUp.stats.Compute(c.Request.Context(), r)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (s *Server) monthlyReport(c *gin.Context) {
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "format is json or csv")
		p.Field = "format"
		fail(c, p)
		return
	}
	rep, err := s.followUp.stats.Monthly(c.Request.Context(), c.Query("month"))
	if err != nil {
		fail(c, err)
		return
	}
	if format == "json" {
		c.JSON(http.StatusOK, rep)
		return
	}
	b, err := rep.CSV()
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="credgate-`+rep.Month+`.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b)
}

func (s *Server) runCoverage(c *gin.Context) {
	if ct := c.ContentType(); ct != "text/csv" {
		fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type", "send the approvals as text/csv"))
		return
	}
	caller := callerOf(c)
	partner := c.Query("partner")
	if caller.Role != service.RoleAdmin && caller.Role != service.RoleAuditor {
		// A partner's approvals are compared with its own checks only.
		partner = caller.ClientID
	}
	window := 0
	if w := c.Query("window_days"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil {
			p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "window_days must be a number of days")
			p.Field = "window_days"
			fail(c, p)
			return
		}
		if n < 1 {
			// 0 would mean "the default" to Run: a caller who asked for 0
			// days must not be answered over 30.
			fail(c, streamError(fmt.Errorf("%w: window_days %d out of 1..366", service.ErrInvalidCoverage, n)))
			return
		}
		window = n
	}
	// A file of up to MaxCoverageBody streams in for as long as it takes,
	// past the server's read timeout (for ordinary requests' slow
	// clients), as an import's does; the answer follows it.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	rep, err := s.followUp.coverage.Run(c.Request.Context(), bufio.NewReaderSize(c.Request.Body, 64<<10), partner, window)
	if err != nil {
		fail(c, streamError(err))
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (s *Server) recordCommitment(c *gin.Context) {
	var in service.CommitmentInput
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	v, err := s.followUp.commitments.Record(c.Request.Context(), callerOf(c), in)
	if err != nil {
		fail(c, entryError(err))
		return
	}
	c.JSON(http.StatusCreated, v)
}

func (s *Server) listCommitments(c *gin.Context) {
	limit, ok := queryLimit(c)
	if !ok {
		return
	}
	f := service.CommitmentFilter{Partner: c.Query("partner"), Subject: c.Query("subject_id"), State: c.Query("state"),
		After: c.Query("after"), Limit: limit}
	out, err := s.followUp.commitments.List(readContext(c), callerOf(c), f)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listing("commitments", out, out, limit, func(v service.CommitmentView) string { return v.ID }))
}

func (s *Server) getCommitment(c *gin.Context) {
	v, err := s.followUp.commitments.Get(c.Request.Context(), callerOf(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) changeCommitment(op string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in service.CommitmentChange
		if c.Request.ContentLength != 0 {
			if err := decodeJSON(c.Request.Body, &in); err != nil {
				fail(c, err)
				return
			}
		}
		v, err := s.followUp.commitments.Change(c.Request.Context(), callerOf(c), c.Param("id"), op, in)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}
