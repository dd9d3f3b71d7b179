package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The lifecycle endpoints: objections, repairs and exit applications of
// entries, violation records, and the status of a subject as of a time.

// WithLifecycle serves the lifecycle endpoints from l.
func WithLifecycle(l *service.Lifecycle) Option { return func(s *Server) { s.lifecycle = l } }

// mountLifecycle mounts the routes whether or not WithLifecycle was given,
// so that the route table is the same in every configuration; without it
// they answer 503 lifecycle_unavailable. admin is the administrators'
// group, audit the group administrators and auditors share.
func (s *Server) mountLifecycle(authed, admin, audit *gin.RouterGroup) {
	type L = service.Lifecycle
	created, decided := http.StatusCreated, http.StatusOK
	// gin allows these beside POST /entries/:id (the :verb route): a static
	// segment after the same parameter.
	admin.POST("/entries/:id/objections", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, created, (*L).FileObjection, nil))
	admin.POST("/entries/:id/repairs", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, created, (*L).ApplyRepair, nil))
	admin.POST("/entries/:id/exits", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, created, (*L).ApplyExit, nil))
	admin.POST("/objections/:id/decision", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, decided, (*L).DecideObjection, entryError))
	admin.POST("/repairs/:id/review", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, decided, (*L).ReviewRepair, nil))
	admin.POST("/repairs/:id/decision", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, decided, (*L).DecideRepair, nil))
	admin.POST("/exits/:id/decision", limitBody(MaxJSONBody), s.needLifecycle, proceed(s, decided, (*L).DecideExit, nil))
	admin.POST("/violations", limitBody(MaxJSONBody), s.needLifecycle, s.recordViolation)
	audit.GET("/objections", s.needLifecycle, s.listProceedings(service.ProceedingObjection, "objections"))
	audit.GET("/repairs", s.needLifecycle, s.listProceedings(service.ProceedingRepair, "repairs"))
	audit.GET("/exits", s.needLifecycle, s.listProceedings(service.ProceedingExit, "exits"))
	audit.GET("/violations", s.needLifecycle, s.listViolations)
	authed.GET("/subjects/:id/status", require(service.RoleAdmin, service.RoleAuditor), s.subjectStatus)
}

func (s *Server) needLifecycle(c *gin.Context) {
	if s.lifecycle == nil {
		fail(c, service.ErrLifecycleUnsupported)
		return
	}
	c.Next()
}

// lifecycleAnswer is an entry and the proceeding a request created or
// decided.
type lifecycleAnswer struct {
	Objection *policy.Objection       `json:"objection,omitempty"`
	Repair    *policy.Repair          `json:"repair,omitempty"`
	Exit      *policy.ExitApplication `json:"exit,omitempty"`
	Entry     entryView               `json:"entry"`
}

// proceeding is what a lifecycle request creates or decides.
type proceeding interface {
	policy.Objection | policy.Repair | policy.ExitApplication
}

// proceed is the handler of a lifecycle request on the entry or
// proceeding at :id: it decodes the body into In, runs op on s's lifecycle
// and answers status with the entry and the proceeding op returns.
// mapErr, when not nil, rewrites op's error before it is answered.
func proceed[In any, P proceeding](s *Server, status int, op func(*service.Lifecycle, context.Context, string, In) (policy.Entry, P, error), mapErr func(error) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in In
		if err := decodeJSON(c.Request.Body, &in); err != nil {
			fail(c, err)
			return
		}
		e, p, err := op(s.lifecycle, c.Request.Context(), c.Param("id"), in)
		if err != nil {
			if mapErr != nil {
				err = mapErr(err)
			}
			fail(c, err)
			return
		}
		out := lifecycleAnswer{Entry: viewEntry(e, time.Now())}
		switch p := any(&p).(type) {
		case *policy.Objection:
			out.Objection = p
		case *policy.Repair:
			out.Repair = p
		case *policy.ExitApplication:
			out.Exit = p
		}
		c.JSON(status, out)
	}
}

// proceedingView is an open proceeding in a listing.
type proceedingView struct {
	ID          string             `json:"id"`
	EntryID     string             `json:"entry_id"`
	SubjectID   string             `json:"subject_id"`
	List        string             `json:"list"`
	EntryStatus policy.EntryStatus `json:"entry_status"`
	DueAt       *time.Time         `json:"due_at,omitempty"`
	// DueProvisional: the deadline runs into a year the calendar did not
	// cover when it was computed.
	DueProvisional     bool `json:"due_provisional,omitempty"`
	Overdue            bool `json:"overdue"`
	WorkingDaysOverdue int  `json:"working_days_overdue"`
	// Exactly one of these, by kind.
	Objection *policy.Objection       `json:"objection,omitempty"`
	Repair    *policy.Repair          `json:"repair,omitempty"`
	Exit      *policy.ExitApplication `json:"exit,omitempty"`
}

// listProceedings serves GET /v1/admin/{objections,repairs,exits}:
// undecided ones, ?state=overdue for those past their deadline.
func (s *Server) listProceedings(kind service.ProceedingKind, field string) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, ok := queryLimit(c)
		if !ok {
			return
		}
		ps, now, err := s.lifecycle.ReadProceedings(readContext(c), kind, c.Query("state"), c.Query("after"), limit)
		if err != nil {
			fail(c, err)
			return
		}
		out := make([]proceedingView, 0, len(ps))
		for _, p := range ps {
			v := proceedingView{ID: p.ID, EntryID: p.Entry.ID, SubjectID: p.Entry.Subject.Value, List: p.Entry.List,
				EntryStatus: p.Entry.StatusAt(now), DueAt: p.DueAt}
			if p.DueAt != nil && !now.Before(*p.DueAt) {
				v.Overdue, v.WorkingDaysOverdue = true, s.lifecycle.WorkingDaysOverdue(p.DueAt, now)
			}
			for i := range p.Entry.Objections {
				if p.Entry.Objections[i].ID == p.ID {
					v.Objection = &p.Entry.Objections[i]
					v.DueProvisional = v.Objection.DueProvisional
				}
			}
			for i := range p.Entry.Repairs {
				if p.Entry.Repairs[i].ID == p.ID {
					v.Repair = &p.Entry.Repairs[i]
					v.DueProvisional = v.Repair.DueProvisional
				}
			}
			for i := range p.Entry.Exits {
				if p.Entry.Exits[i].ID == p.ID {
					v.Exit = &p.Entry.Exits[i]
				}
			}
			out = append(out, v)
		}
		resp := listing(field, out, ps, limit, func(p service.Proceeding) string { return p.ID })
		resp["as_of"] = now
		c.JSON(http.StatusOK, resp)
	}
}

// listing is a page of a listing as answered: items under key and, when
// the page is full (limit rows were read, so more may follow), the cursor
// of the next page, taken from the last row read.
func listing[T any](key string, items any, rows []T, limit int, cursor func(T) string) gin.H {
	resp := gin.H{key: items}
	if len(rows) == limit {
		resp["next"] = cursor(rows[len(rows)-1])
	}
	return resp
}

// queryLimit reads ?limit= (default 100, at most MaxPage); on a bad value
// it answers 400 and reports false.
func queryLimit(c *gin.Context) (int, bool) {
	l := c.Query("limit")
	if l == "" {
		return 100, true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > service.MaxPage {
		p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "limit must be 1.."+strconv.Itoa(service.MaxPage))
		p.Field = "limit"
		fail(c, p)
		return 0, false
	}
	return n, true
}

// violationAnswer is what recording a violation did.
type violationAnswer struct {
	Record        violationView   `json:"record"`
	Standing      policy.Standing `json:"standing"`
	DerivedEntry  *entryView      `json:"derived_entry,omitempty"`
	ClosedEntries []entryView     `json:"closed_entries"`
}

// violationView is a violation record with its subject.
type violationView struct {
	policy.ViolationRecord
	SubjectID   string             `json:"subject_id"`
	SubjectKind policy.SubjectKind `json:"subject_kind"`
}

func viewViolation(r policy.ViolationRecord) violationView {
	v := violationView{ViolationRecord: r, SubjectID: r.Subject.Value, SubjectKind: r.Subject.Kind}
	if v.EvidenceRefs == nil {
		v.EvidenceRefs = []string{}
	}
	return v
}

func (s *Server) recordViolation(c *gin.Context) {
	var in service.ViolationInput
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	res, err := s.lifecycle.RecordViolation(c.Request.Context(), in)
	if err != nil {
		fail(c, entryError(err))
		return
	}
	now := time.Now()
	out := violationAnswer{Record: viewViolation(res.Record), Standing: res.Standing, ClosedEntries: []entryView{}}
	if res.Derived != nil {
		v := viewEntry(*res.Derived, now)
		out.DerivedEntry = &v
	}
	for _, e := range res.Closed {
		out.ClosedEntries = append(out.ClosedEntries, viewEntry(e, now))
	}
	c.JSON(http.StatusCreated, out)
}

func (s *Server) listViolations(c *gin.Context) {
	if c.Query("subject_id") == "" {
		p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "subject_id is required")
		p.Field = "subject_id"
		fail(c, p)
		return
	}
	subject, records, standings, err := s.lifecycle.ReadSubjectViolations(readContext(c), c.Query("subject_id"))
	if err != nil {
		fail(c, entryError(err))
		return
	}
	out := make([]violationView, len(records))
	for i, r := range records {
		out[i] = viewViolation(r)
	}
	if standings == nil {
		standings = []policy.Standing{}
	}
	c.JSON(http.StatusOK, gin.H{"subject": service.SubjectView{ID: subject.Value, Kind: subject.Kind}, "records": out, "points": standings})
}

// subjectStatus serves GET /v1/subjects/{id}/status?at=&valid_at=&region=
// &industry=&subject_type=&employer_type=: the entries as known at `at`,
// their standing at `valid_at`, measures matched against the context.
func (s *Server) subjectStatus(c *gin.Context) {
	var q service.StatusQuery
	for _, v := range []struct {
		name string
		dst  **time.Time
		code string
	}{{"at", &q.At, "invalid_as_of"}, {"valid_at", &q.ValidAt, "invalid_valid_at"}} {
		raw, ok := c.GetQuery(v.name)
		if !ok {
			continue
		}
		t, err := parseInstant(raw)
		if err != nil {
			p := problem(http.StatusBadRequest, v.code, "Invalid time", err.Error())
			p.Field = v.name
			fail(c, p)
			return
		}
		*v.dst = &t
	}
	q.Context = policy.CheckContext{Region: c.Query("region"), Industry: c.Query("industry"),
		SubjectType: c.Query("subject_type"), EmployerType: c.Query("employer_type")}
	st, err := s.checker.SubjectStatusOf(c.Request.Context(), callerOf(c), c.Param("id"), q)
	if err != nil {
		if r := identifierReason(err); r != "" {
			p := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier", err.Error())
			p.Field, p.Reason = "id", r
			err = p
		}
		if p := scopeProblem(err); p != nil {
			// The context comes as query parameters here.
			p.Field = strings.TrimPrefix(p.Field, "context.")
			err = p
		}
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// maxInstantLen bounds a time in a query: RFC 3339 with nanoseconds and
// an offset is 35 bytes.
const maxInstantLen = 40

// parseInstant parses an RFC 3339 time from a query parameter (with an
// offset or Z: a time without a zone would be ambiguous) and returns the
// instant in UTC. time.Parse is lenient at the edges (a one-digit hour, an
// offset of +24:60), so the instant must also fall in years 1–9999, where
// it can be written back as RFC 3339.
func parseInstant(raw string) (time.Time, error) {
	if len(raw) <= maxInstantLen {
		if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
			if u := t.UTC(); u.Year() >= 1 && u.Year() <= 9999 {
				return u, nil
			}
		}
	}
	return time.Time{}, errors.New("want an RFC 3339 time with an offset, e.g. 2026-03-01T09:00:00+08:00")
}
