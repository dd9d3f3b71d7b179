package gateway

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/service"
)

// MaxScreeningBody caps a screening file: ten million subjects of an
// NDJSON line each, with room to spare.
const MaxScreeningBody = 1 << 30

// WithScreenings serves screening jobs (POST /v1/screenings and its reads).
func WithScreenings(sc *service.Screenings) Option { return func(s *Server) { s.screenings = sc } }

// mountScreenings adds the screening routes when the service is set.
func (s *Server) mountScreenings(authed *gin.RouterGroup) {
	if s.screenings == nil {
		return
	}
	authed.POST("/screenings", limitBody(MaxScreeningBody), s.submitScreening)
	authed.GET("/screenings/:id", s.getScreening)
	authed.GET("/screenings/:id/events", s.screeningEvents)
	authed.GET("/screenings/:id/results", s.screeningResults)
}

// screeningView is a job as the API shows it.
type screeningView struct {
	ID        string           `json:"id"`
	Action    string           `json:"action"`
	State     string           `json:"state"`
	Total     int64            `json:"total"`
	Done      int64            `json:"done"`
	Counts    map[string]int64 `json:"counts"`
	TreeSize  *uint64          `json:"tree_size,omitempty"`
	Root      string           `json:"root,omitempty"`
	RecordID  string           `json:"record_id,omitempty"`
	Error     string           `json:"error,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

func viewScreening(j service.ScreeningJob) screeningView {
	v := screeningView{ID: j.ID, Action: j.Action, State: string(j.State), Total: j.Total, Done: j.Done,
		Counts: j.Counts, Root: j.Root, RecordID: j.RecordID, Error: j.Error, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	if v.Counts == nil {
		v.Counts = map[string]int64{}
	}
	if j.State == service.ScreeningDone {
		size := j.TreeSize
		v.TreeSize = &size
	}
	return v
}

func (s *Server) submitScreening(c *gin.Context) {
	var format service.ImportFormat
	switch c.ContentType() {
	case "text/csv":
		format = service.FormatCSV
	case "application/x-ndjson", "application/jsonl":
		format = service.FormatNDJSON
	default:
		fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"send text/csv (a header with an id column) or application/x-ndjson ({\"id\": \"…\"} a line)"))
		return
	}
	// A file of millions streams in: past the server's read timeout too.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	// The quota is charged once the file is on disk and counted, before
	// the job is stored: refused, nothing of it is kept.
	admit := func(subjects int64) error {
		if !s.chargeScreening(c, subjects) {
			return errQuotaAnswered
		}
		return nil
	}
	j, err := s.screenings.SubmitAdmitted(c.Request.Context(), callerOf(c), c.Query("action"), format,
		bufio.NewReaderSize(c.Request.Body, 64<<10), admit)
	if errors.Is(err, errQuotaAnswered) {
		return
	}
	if err != nil {
		fail(c, streamError(err))
		return
	}
	c.Header("Location", "/v1/screenings/"+j.ID)
	c.JSON(http.StatusAccepted, viewScreening(j))
}

// errQuotaAnswered: the quota refused the screening and answered (429).
var errQuotaAnswered = errors.New("answered")

// chargeScreening takes the rest of a screening's subjects from the quota
// (the middleware took one), as chargeBatch does a batch's: a file of n
// subjects costs n checks, however large (chargeBatch leaves a batch past
// service.MaxBatch to its 413, which a file never gets). Past the quota it
// answers 429 rate_limited as a batch over it gets, and the middleware
// gives back its one unit.
//
// A file of more subjects than the quota's whole window (the limit, not
// what remains of it) could never pass, however long the client waited: it
// is answered 422 screening_exceeds_quota, without Retry-After, and the
// middleware's one unit is given back (a refusal on the request's face).
func (s *Server) chargeScreening(c *gin.Context, subjects int64) bool {
	if subjects <= 1 {
		return true
	}
	if p := partnerOf(c); !exempt(p) {
		if rate := s.limits.rateFor(p.RateLimit).rate; subjects > rate.Limit {
			if v, ok := c.Get(ctxCharge); ok {
				if charge, _ := v.(*quotaCharge); charge != nil && charge.units > 0 {
					if time.Now().Unix() < charge.window {
						s.limits.quota.refund(p.ClientID, rate, charge.units, charge.window)
					}
					charge.units = 0
				}
			}
			fail(c, &ScreeningQuotaError{Subjects: subjects, Limit: rate.Limit, Period: rate.Period})
			return false
		}
	}
	return s.chargeMore(c, subjects-1)
}

// ErrScreeningExceedsQuota: a screening file has more subjects than its
// partner's quota allows in a whole window; no wait lets it through.
var ErrScreeningExceedsQuota = errors.New("screening exceeds quota")

// ScreeningQuotaError is ErrScreeningExceedsQuota with the counts.
type ScreeningQuotaError struct {
	Subjects int64
	Limit    int64
	Period   time.Duration
}

func (e *ScreeningQuotaError) Error() string {
	return fmt.Sprintf("the file has %d subjects; this credential's quota is %d %s: ask the administrator for a quota of at least %d per window, or split the file",
		e.Subjects, e.Limit, perPeriod(e.Period), e.Subjects)
}

// Is makes the error ErrScreeningExceedsQuota.
func (e *ScreeningQuotaError) Is(target error) bool { return target == ErrScreeningExceedsQuota }

// perPeriod names a quota's window: "a minute", "an hour", "per 30s".
func perPeriod(d time.Duration) string {
	switch d {
	case time.Second:
		return "a second"
	case time.Minute:
		return "a minute"
	case time.Hour:
		return "an hour"
	case 24 * time.Hour:
		return "a day"
	}
	return "per " + d.String()
}

func (s *Server) getScreening(c *gin.Context) {
	j, err := s.screenings.Read(readContext(c), callerOf(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewScreening(j))
}

// screeningEvents streams the job's progress as server-sent events
// ("progress", the job) until it is done or failed.
func (s *Server) screeningEvents(c *gin.Context) {
	ctx := c.Request.Context()
	// Read (and, for staff, recorded) once; then polled.
	j, err := s.screenings.Read(readContext(c), callerOf(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	c.Header("Cache-Control", "no-cache")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := time.Time{}
	for {
		if !j.UpdatedAt.Equal(last) {
			last = j.UpdatedAt
			c.SSEvent("progress", viewScreening(j))
			c.Writer.Flush()
		}
		if j.State == service.ScreeningDone || j.State == service.ScreeningFailed {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if j, err = s.screenings.Get(ctx, callerOf(c), j.ID); err != nil {
			return
		}
	}
}

// screeningResults streams every subject's result with its proof, as
// NDJSON or (format=csv) CSV.
func (s *Server) screeningResults(c *gin.Context) {
	format := c.DefaultQuery("format", "ndjson")
	if format != "ndjson" && format != "csv" {
		fail(c, problem(http.StatusBadRequest, "invalid_format", "Invalid format", "format is ndjson or csv"))
		return
	}
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	w := bufio.NewWriterSize(c.Writer, 256<<10)
	var cw *csv.Writer
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		if format == "csv" {
			c.Header("Content-Type", "text/csv; charset=utf-8")
			cw = csv.NewWriter(w)
			_ = cw.Write([]string{"line", "subject_id", "outcome", "measures", "entries", "error", "leaf_index", "proof", "answer", "error_detail"})
		} else {
			c.Header("Content-Type", "application/x-ndjson")
		}
		c.Status(http.StatusOK)
	}
	var err error
	if format == "ndjson" {
		// The stored lines, completed with their proofs: no answer is
		// decoded and encoded again.
		_, err = s.screenings.ResultsNDJSON(readContext(c), callerOf(c), c.Param("id"), startWriter{w: w, start: start})
	} else {
		_, err = s.screenings.Results(readContext(c), callerOf(c), c.Param("id"), func(a service.ScreenedAnswer) error {
			start()
			return cw.Write(csvResult(a))
		})
	}
	if err != nil && !c.Writer.Written() {
		// Nothing has reached the wire (the first lines wait in the
		// buffer): the caller gets the problem, not a short 200.
		c.Writer.Header().Del("Content-Type")
		fail(c, err)
		return
	}
	if err != nil {
		// Part of the body is sent. A chunked body that ends cleanly looks
		// whole, so the connection is aborted instead: every client sees
		// the download fail, not a shorter file.
		s.logger.Error("screening results", "screening", c.Param("id"), "error", err)
		panic(http.ErrAbortHandler)
	}
	if cw != nil {
		cw.Flush()
	}
	_ = w.Flush()
}

// startWriter sends the answer's headers at its first write.
type startWriter struct {
	w     io.Writer
	start func()
}

func (s startWriter) Write(b []byte) (int, error) {
	s.start()
	return s.w.Write(b)
}

// csvResult is one result as a CSV row: measures as code;code, entries as
// id;id, the proof as hex;hex, the answer's exact JSON (what the proof
// covers), and last (a column added after the others, so readers by
// position keep theirs) why a subject has no answer, as NDJSON's
// error.detail says it.
func csvResult(a service.ScreenedAnswer) []string {
	row := []string{strconv.FormatInt(a.Line, 10), a.SubjectID, string(a.Outcome), "", "", "", "", strings.Join(a.Proof, ";"), string(a.Answer), ""}
	if a.Error != nil {
		row[5], row[9] = a.Error.Code, a.Error.Detail
	}
	if a.LeafIndex != nil {
		row[6] = strconv.FormatUint(*a.LeafIndex, 10)
	}
	if a.Answer != nil {
		if ms, es, err := a.ListColumns(); err == nil {
			row[3], row[4] = ms, es
		}
	}
	return row
}
