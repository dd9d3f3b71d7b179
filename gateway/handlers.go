package gateway

import (
	"bufio"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

type catalogView struct {
	Revision string           `json:"revision"`
	Actions  []policy.Action  `json:"actions"`
	Lists    []policy.List    `json:"lists"`
	Measures []policy.Measure `json:"measures"`
	// The lifecycle's data: working-day calendar, points rule sets and
	// their violation items.
	Calendar       policy.CalendarSpec    `json:"calendar"`
	RuleSets       []policy.RuleSet       `json:"rule_sets"`
	ViolationItems []policy.ViolationItem `json:"violation_items"`
	// The scope vocabularies: the regions measures are scoped to, and
	// the industries, subject types and employer types a check's context
	// may name.
	Regions       []policy.Region `json:"regions"`
	Industries    []policy.Term   `json:"industries"`
	SubjectTypes  []policy.Term   `json:"subject_types"`
	EmployerTypes []policy.Term   `json:"employer_types"`
}

func (s *Server) catalog(c *gin.Context) {
	cat := s.checker.Catalog()
	c.JSON(http.StatusOK, catalogView{Revision: cat.Revision(), Actions: cat.Actions(), Lists: cat.Lists(), Measures: cat.Measures(),
		Calendar: cat.CalendarSpec(), RuleSets: nonNilSlice(cat.RuleSets()), ViolationItems: nonNilSlice(cat.ViolationItems()),
		Regions: nonNilSlice(cat.Regions()), Industries: nonNilSlice(cat.Industries()), SubjectTypes: nonNilSlice(cat.SubjectTypes()),
		EmployerTypes: nonNilSlice(cat.EmployerTypes())})
}

// nonNilSlice makes an empty slice encode as [] rather than null.
func nonNilSlice[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) check(c *gin.Context) {
	// One reused buffer per check: the body is read into it and decoded
	// (every value copied out), then the answer is written from it.
	buf := s.answers.get()
	defer s.answers.put(buf)
	raw, err := readBody(c.Request.Body, buf.b[:0])
	buf.b = raw
	if err != nil {
		fail(c, decodeProblem(err))
		return
	}
	req, err := decodeCheckBody(raw)
	if err != nil {
		fail(c, err)
		return
	}
	key, keyed, err := idempotencyKey(c.Request.Header)
	if err != nil {
		fail(c, err)
		return
	}
	ans, err := s.checker.Check(c.Request.Context(), callerOf(c), service.CheckRequest{
		Subject: req.Subject.ID, Action: req.Action, Reference: req.Reference, AsOf: req.AsOf,
		ValidAt: req.ValidAt, Context: req.Context.policy(), IdempotencyKey: key,
	})
	if err != nil {
		if keyed && errors.Is(err, service.ErrStoreUnavailable) {
			// The key could not be looked up or the check not recorded:
			// retrying with it later replays or records, once.
			c.Header("Retry-After", "1")
		}
		fail(c, err)
		return
	}
	if ans.Replayed() {
		c.Header(idempotentReplayedHeader, "true")
	} else {
		s.checks.WithLabelValues(ans.Action, string(ans.Outcome)).Inc()
	}
	b, err := ans.AppendJSON(buf.b[:0])
	if err != nil {
		fail(c, err)
		return
	}
	buf.b = b
	// The writer copies the answer into its own buffer (net/http's bufio)
	// before Data returns; nothing keeps b after.
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

type batchResult struct {
	Index   int                  `json:"index"`
	Check   *service.CheckAnswer `json:"check,omitempty"`
	Problem *Problem             `json:"problem,omitempty"`
}

func (s *Server) checkBatch(c *gin.Context) {
	var req batchRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		fail(c, err)
		return
	}
	key, keyed, err := idempotencyKey(c.Request.Header)
	if err != nil {
		fail(c, err)
		return
	}
	if !s.chargeBatch(c, len(req.Subjects)) {
		return
	}
	subjects := make([]string, len(req.Subjects))
	for i, sub := range req.Subjects {
		subjects[i] = sub.ID
	}
	items, err := s.checker.CheckBatch(c.Request.Context(), callerOf(c), service.BatchRequest{
		Subjects: subjects, Action: req.Action, Reference: req.Reference, ValidAt: req.ValidAt, Context: req.Context.policy(),
		IdempotencyKey: key,
	})
	if err != nil {
		if keyed && errors.Is(err, service.ErrStoreUnavailable) {
			// As for a keyed check: retrying with the key replays or
			// records, once.
			c.Header("Retry-After", "1")
		}
		fail(c, err)
		return
	}
	out := make([]batchResult, len(items))
	replayed := false
	for i, it := range items {
		out[i] = batchResult{Index: i, Check: it.Answer}
		if it.Err != nil {
			p := problemFor(it.Err)
			p.Field = "subjects[" + strconv.Itoa(i) + "].id"
			out[i].Problem = p
			continue
		}
		if it.Answer.Replayed() {
			replayed = true
			continue
		}
		s.checks.WithLabelValues(it.Answer.Action, string(it.Answer.Outcome)).Inc()
	}
	if keyed {
		// Written from the recorded bodies (idempotency.go), so that a
		// replay is the first answer byte for byte.
		s.keyedBatchAnswer(c, req.Action, out, replayed)
		return
	}
	c.JSON(http.StatusOK, gin.H{"action": req.Action, "results": out})
}

// getCheck serves GET /v1/checks/{id}: a partner's own check, or any to
// administrators and auditors, whose read is recorded (check_read).
func (s *Server) getCheck(c *gin.Context) {
	caller := callerOf(c)
	ans, err := s.checker.GetCheck(readContext(c), caller, c.Param("id"))
	if err != nil {
		fail(c, s.pendingRecord(caller, c.Param("id"), err))
		return
	}
	c.JSON(http.StatusOK, ans)
}

// entryView is an entry as the admin API shows it, with its status now.
type entryView struct {
	ID                    string                     `json:"id"`
	SubjectID             string                     `json:"subject_id"`
	SubjectKind           policy.SubjectKind         `json:"subject_kind"`
	List                  string                     `json:"list"`
	Status                policy.EntryStatus         `json:"status"`
	OriginatingDepartment string                     `json:"originating_department"`
	Reason                string                     `json:"reason"`
	LegalBasis            string                     `json:"legal_basis"`
	EvidenceRefs          []string                   `json:"evidence_refs"`
	DecidedAt             time.Time                  `json:"decided_at"`
	PublishedAt           time.Time                  `json:"published_at"`
	ValidUntil            *time.Time                 `json:"valid_until"`
	RevokedAt             *time.Time                 `json:"revoked_at,omitempty"`
	RevocationReason      string                     `json:"revocation_reason,omitempty"`
	ResponsiblePersons    []policy.ResponsiblePerson `json:"responsible_persons"`
	Objections            []policy.Objection         `json:"objections"`
	CreatedAt             time.Time                  `json:"created_at"`
	UpdatedAt             time.Time                  `json:"updated_at"`
	Version               int64                      `json:"version"`
	// The lifecycle (gateway/lifecycle.go).
	ParticularlySerious bool                     `json:"particularly_serious,omitempty"`
	ExitByApplication   bool                     `json:"exit_by_application,omitempty"`
	Repairs             []policy.Repair          `json:"repairs"`
	Exits               []policy.ExitApplication `json:"exits"`
	Derivation          *policy.Derivation       `json:"derivation,omitempty"`
	RevocationCause     *policy.Cause            `json:"revocation_cause,omitempty"`
}

func viewEntry(e policy.Entry, now time.Time) entryView {
	v := entryView{
		ID: e.ID, SubjectID: e.Subject.Value, SubjectKind: e.Subject.Kind, List: e.List, Status: e.StatusAt(now),
		OriginatingDepartment: e.OriginatingDepartment, Reason: e.Reason, LegalBasis: e.LegalBasis,
		EvidenceRefs: e.EvidenceRefs, DecidedAt: e.DecidedAt, PublishedAt: e.PublishedAt, ValidUntil: e.ValidUntil,
		RevokedAt: e.RevokedAt, RevocationReason: e.RevocationReason, ResponsiblePersons: e.ResponsiblePersons,
		Objections: e.Objections, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Version: e.Version,
		ParticularlySerious: e.ParticularlySerious, ExitByApplication: e.ExitByApplication,
		Repairs: nonNilSlice(e.Repairs), Exits: nonNilSlice(e.Exits), Derivation: e.Derivation, RevocationCause: e.RevocationCause,
	}
	if v.EvidenceRefs == nil {
		v.EvidenceRefs = []string{}
	}
	if v.ResponsiblePersons == nil {
		v.ResponsiblePersons = []policy.ResponsiblePerson{}
	}
	if v.Objections == nil {
		v.Objections = []policy.Objection{}
	}
	return v
}

func (s *Server) createEntry(c *gin.Context) {
	var in service.EntryInput
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	e, err := s.entries.Create(c.Request.Context(), in)
	if err != nil {
		fail(c, entryError(err))
		return
	}
	c.Header("Location", "/v1/admin/entries/"+e.ID)
	c.JSON(http.StatusCreated, viewEntry(e, time.Now()))
}

// entryError points identifier errors of entries at the right field.
func entryError(err error) error {
	if r := identifierReason(err); r != "" && !errors.Is(err, policy.ErrInvalidResponsible) {
		p := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier", err.Error())
		p.Field, p.Reason = "subject_id", r
		return p
	}
	return err
}

func (s *Server) importEntries(c *gin.Context) {
	format := service.FormatNDJSON
	ct, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	// A charset other than UTF-8's (GBK, as Excel saves CSV on Chinese
	// Windows) would be stored as mojibake: refused, as for JSON bodies.
	cs, hasCharset := params["charset"]
	switch {
	case hasCharset && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8"):
		fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"send the file as UTF-8 (charset=utf-8, or no charset), never another encoding"))
		return
	case ct == "text/csv":
		format = service.FormatCSV
	case ct == "application/x-ndjson" || ct == "application/jsonl":
	default:
		fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"send text/csv or application/x-ndjson"))
		return
	}
	// A file of any size streams in: past the server's read timeout too,
	// and the answer is written after it, past the write timeout.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	res, err := s.entries.ImportFile(c.Request.Context(), bufio.NewReaderSize(c.Request.Body, 64<<10), format, nil)
	if err != nil {
		fail(c, streamError(err))
		return
	}
	out := gin.H{"imported": res.Count}
	if res.IDs != nil {
		out["ids"] = res.IDs
	} else {
		out["first_id"], out["last_id"], out["ids_sha256"] = res.FirstID, res.LastID, res.IDsSHA256
	}
	c.JSON(http.StatusCreated, out)
}

func (s *Server) listEntries(c *gin.Context) {
	limit, ok := queryLimit(c)
	if !ok {
		return
	}
	// Recorded as entries_listed (the filter and the entries shown).
	entries, err := s.entries.ReadList(readContext(c), service.EntryFilter{
		Subject: c.Query("subject_id"), List: c.Query("list"), After: c.Query("after"), Limit: limit,
	})
	if err != nil {
		if identifierReason(err) != "" {
			p := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier", err.Error())
			p.Field, p.Reason = "subject_id", identifierReason(err)
			err = p
		}
		fail(c, err)
		return
	}
	now := time.Now()
	out := make([]entryView, len(entries))
	for i, e := range entries {
		out[i] = viewEntry(e, now)
	}
	c.JSON(http.StatusOK, listing("entries", out, entries, limit, func(e policy.Entry) string { return e.ID }))
}

func (s *Server) getEntry(c *gin.Context) {
	// Recorded as entry_read.
	e, err := s.entries.Read(readContext(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", entryETag(e.Version))
	c.JSON(http.StatusOK, viewEntry(e, time.Now()))
}

// entryETag is an entry's version as a strong entity tag, for If-Match.
func entryETag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// ifMatchVersion reads If-Match for a change of one entry: 0 when absent or
// "*" (any version), else the version it names; a tag that is not one of
// ours (a weak one, a list, garbage) matches no version (RFC 9110 §13.1.1:
// If-Match compares strongly) and is answered 412 by the version check.
func ifMatchVersion(c *gin.Context) int64 {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" || h == "*" {
		return 0
	}
	if v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64); err == nil && v > 0 && h == entryETag(v) {
		return v
	}
	return -1
}

func (s *Server) patchEntry(c *gin.Context) {
	var p service.EntryPatch
	if err := decodeJSON(c.Request.Body, &p); err != nil {
		fail(c, err)
		return
	}
	e, err := s.entries.Patch(c.Request.Context(), c.Param("id"), p, ifMatchVersion(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", entryETag(e.Version))
	c.JSON(http.StatusOK, viewEntry(e, time.Now()))
}

// entryVerb serves POST /v1/admin/entries/{id}:verb.
func (s *Server) entryVerb(c *gin.Context) {
	id, verb, _ := strings.Cut(c.Param("id"), ":")
	switch verb {
	case "revoke":
		var body struct {
			Reason string `json:"reason"`
		}
		if err := decodeJSON(c.Request.Body, &body); err != nil {
			fail(c, err)
			return
		}
		e, err := s.entries.Revoke(c.Request.Context(), id, body.Reason)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, viewEntry(e, time.Now()))
	default:
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "no such endpoint"))
	}
}
