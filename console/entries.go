package console

import (
	"bufio"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// entriesPage bounds the entries listed on one page.
const entriesPage = 50

// invalidForm is a form field the console could not read (a time it
// cannot parse, a field too long): refused before any service is asked,
// with nothing changed.
func invalidForm(field string, err error) error {
	return &gateway.Problem{Type: "urn:credgate:problem:invalid_form", Title: "Invalid form field", Status: http.StatusBadRequest,
		Code: "invalid_form", Field: field, Detail: err.Error()}
}

// invalidInput is invalidForm for a query parameter.
func invalidInput(field string, err error) error { return invalidForm(field, err) }

// formField reads a single-line form field, trimmed and bounded.
func formField(r *http.Request, name string) (string, error) {
	v := strings.TrimSpace(r.PostFormValue(name))
	if len(v) > maxFieldLen {
		return "", invalidForm(name, errFieldTooLong)
	}
	return v, nil
}

// formList reads a list typed one per line or separated by commas.
func formList(r *http.Request, name string) []string {
	var out []string
	for _, v := range strings.FieldsFunc(r.PostFormValue(name), func(r rune) bool { return r == '\n' || r == ',' || r == '，' }) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

type entriesData struct {
	Subject, List string
	Entries       []policy.Entry
	Next          string
	Lists         []policy.List
	Now           time.Time
	Imported      string
	Form          url.Values // the create form as submitted, to refill it after an error
	// ImportLimit is the largest import file the console takes, as shown,
	// and in bytes (for the form's check before it sends a file).
	ImportLimit      string
	ImportLimitBytes int64
}

// entriesFilter is what the entries list is filtered by.
type entriesFilter struct{ Subject, List, After string }

// entryList is the entries list by the address's filter: a list and a
// page. A subject's ID number is not taken from the address (?subject_id=,
// as the console once sent its filter): it is filtered by in a POST
// (filterEntries), so that it is in no address (see subjectsPath).
func (c *Console) entryList(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := c.newPage(r, s, "entries")
	if q.Has("subject_id") {
		q.Del("subject_id")
		p.Path = entriesPath
		if len(q) > 0 {
			p.Path += "?" + q.Encode()
		}
	}
	c.renderEntriesPage(w, r, p, http.StatusOK, entriesFilter{List: q.Get("list"), After: q.Get("after")}, nil, nil)
}

// entriesPath is the entries list's page.
const entriesPath = "/console/entries"

// filterEntries is the entries list by the posted filter: a subject, a
// list, a page.
func (c *Console) filterEntries(w http.ResponseWriter, r *http.Request, s *session) {
	f := entriesFilter{Subject: strings.TrimSpace(r.PostFormValue("subject_id")), List: r.PostFormValue("list"), After: r.PostFormValue("after")}
	p := c.newPage(r, s, "entries")
	p.Path = entriesPath
	c.renderEntriesPage(w, r, p, http.StatusOK, f, nil, nil)
}

// renderEntries lists every entry, with the create and import forms
// (refilled from form after a refused create).
func (c *Console) renderEntries(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, formErr error) {
	p := c.newPage(r, s, "entries")
	p.Path = entriesPath
	c.renderEntriesPage(w, r, p, status, entriesFilter{}, form, formErr)
}

func (c *Console) renderEntriesPage(w http.ResponseWriter, r *http.Request, p *page, status int, f entriesFilter, form url.Values, formErr error) {
	d := &entriesData{Subject: f.Subject, List: f.List, Lists: c.deps.Checker.Catalog().Lists(),
		Now: c.now(), Form: form, ImportLimit: byteSize(c.importLimit),
		ImportLimitBytes: c.importLimit}
	// ?imported= is from the address bar: only a count is shown, never
	// text someone put in a link.
	if n, err := strconv.ParseUint(r.URL.Query().Get("imported"), 10, 63); err == nil {
		d.Imported = strconv.FormatUint(n, 10)
	}
	if d.Form == nil {
		d.Form = url.Values{}
	}
	p.Data = d
	if len(d.Subject) > maxFieldLen || len(d.List) > maxFieldLen || len(f.After) > maxFieldLen {
		formErr = invalidInput("subject_id", errFieldTooLong)
	} else {
		// Recorded as entries_listed, as GET /v1/admin/entries is.
		es, err := c.deps.Entries.ReadList(readContext(r), service.EntryFilter{Subject: d.Subject, List: d.List, After: f.After, Limit: entriesPage})
		if err != nil && formErr == nil {
			formErr = err
		}
		d.Entries = es
		if len(es) == entriesPage {
			d.Next = es[len(es)-1].ID
		}
	}
	if formErr != nil {
		p.Error = c.problem(p.Lang, formErr)
		if status == http.StatusOK {
			status = p.Error.Status
		}
	}
	c.render(w, status, "entries", p)
}

// createEntry is POST /v1/admin/entries from a form.
func (c *Console) createEntry(w http.ResponseWriter, r *http.Request, s *session) {
	in, err := c.entryInput(r)
	if err == nil {
		var e policy.Entry
		if e, err = c.deps.Entries.Create(r.Context(), in); err == nil {
			http.Redirect(w, r, "/console/entries/"+url.PathEscape(e.ID)+"?done=created", http.StatusSeeOther)
			return
		}
	}
	c.renderEntries(w, r, s, gateway.ProblemFor(err).Status, r.PostForm, err)
}

func (c *Console) entryInput(r *http.Request) (service.EntryInput, error) {
	var in service.EntryInput
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"subject_id", &in.Subject}, {"list", &in.List}, {"originating_department", &in.OriginatingDepartment},
		{"reason", &in.Reason}, {"legal_basis", &in.LegalBasis}} {
		if *f.dst, err = formField(r, f.name); err != nil {
			return in, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"decided_at", &in.DecidedAt}, {"published_at", &in.PublishedAt}} {
		t, err := c.localTime(r.PostFormValue(f.name))
		if err != nil {
			return in, invalidForm(f.name, err)
		}
		if t != nil {
			*f.dst = *t
		}
	}
	in.EvidenceRefs = formList(r, "evidence_refs")
	in.ParticularlySerious = r.PostFormValue("particularly_serious") == "on"
	return in, nil
}

// importEntries is POST /v1/admin/entries:import from a file upload: the
// same streamed, all-or-nothing import (service.Entries.ImportFile), so the
// same validation and the same act in the evidence log.
func (c *Console) importEntries(w http.ResponseWriter, r *http.Request, s *session) {
	f, hdr, err := r.FormFile("file")
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			c.renderEntries(w, r, s, http.StatusRequestEntityTooLarge, nil, &gateway.Problem{Type: "urn:credgate:problem:body_too_large",
				Title: "Request body too large", Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Field: "file",
				Detail: c.msgs.text(language(r), "entries.import_too_large", byteSize(c.importLimit))})
			return
		}
		c.renderEntries(w, r, s, http.StatusBadRequest, nil, invalidForm("file", errors.New("choose a CSV or NDJSON file")))
		return
	}
	defer f.Close()
	format := service.FormatNDJSON
	if strings.EqualFold(path.Ext(hdr.Filename), ".csv") || hdr.Header.Get("Content-Type") == "text/csv" {
		format = service.FormatCSV
	}
	res, err := c.deps.Entries.ImportFile(r.Context(), bufio.NewReaderSize(f, 64<<10), format, nil)
	if err != nil {
		c.renderEntries(w, r, s, gateway.ProblemFor(err).Status, nil, err)
		return
	}
	http.Redirect(w, r, "/console/entries?imported="+strconv.FormatInt(res.Count, 10), http.StatusSeeOther)
}

type entryData struct {
	Entry policy.Entry
	List  policy.List
	Now   time.Time
	Done  string
	// CanRepair and CanExit: the list's rules provide a repair or an exit
	// application for this entry at all, so the forms are offered (the
	// service still decides the rest: locks, deadlines).
	CanRepair, CanExit bool
	// Open proceedings, for the forms that decide them.
	OpenObjection *policy.Objection
	OpenRepair    *policy.Repair
	OpenExit      *policy.ExitApplication
}

func (c *Console) entryPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderEntry(w, r, s, r.PathValue("id"), http.StatusOK, nil)
}

func (c *Console) renderEntry(w http.ResponseWriter, r *http.Request, s *session, id string, status int, actErr error) {
	// Recorded as entry_read, as GET /v1/admin/entries/{id} is.
	e, err := c.deps.Entries.Read(readContext(r), id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := c.newPage(r, s, "entries")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p.Path = "/console/entries/" + url.PathEscape(e.ID)
	}
	d := &entryData{Entry: e, Now: c.now(), Done: r.URL.Query().Get("done"), OpenObjection: e.OpenObjection()}
	for _, l := range c.deps.Checker.Catalog().Lists() {
		if l.ID == e.List {
			d.List = l
		}
	}
	d.CanRepair = d.List.Repair != nil && !(d.List.Repair.NeverIfParticularlySerious && e.ParticularlySerious)
	d.CanExit = d.List.Exit != nil && e.ValidUntil != nil
	for i := range e.Repairs {
		if st := e.Repairs[i].State; st == policy.StateApplied || st == policy.StateReviewed {
			d.OpenRepair = &e.Repairs[i]
		}
	}
	for i := range e.Exits {
		if e.Exits[i].State == policy.StateApplied {
			d.OpenExit = &e.Exits[i]
		}
	}
	if !strings.HasPrefix(d.Done, "partner_") { // a partner's notices belong on its page
		p.Notice = p.notice(d.Done)
	}
	if actErr != nil {
		p.Error = c.problem(p.Lang, actErr)
	}
	p.Data = d
	c.render(w, status, "entry", p)
}

// acted ends an act on an entry: back to the entry with a notice, or the
// entry page again with the API's problem and nothing changed.
func (c *Console) acted(w http.ResponseWriter, r *http.Request, s *session, entryID, done string, err error) {
	if err != nil {
		if entryID == "" {
			c.fail(w, r, s, err)
			return
		}
		c.renderEntry(w, r, s, entryID, gateway.ProblemFor(err).Status, err)
		return
	}
	http.Redirect(w, r, "/console/entries/"+url.PathEscape(entryID)+"?done="+done, http.StatusSeeOther)
}

func (c *Console) revokeEntry(w http.ResponseWriter, r *http.Request, s *session) {
	reason, err := formField(r, "reason")
	if err == nil {
		_, err = c.deps.Entries.Revoke(r.Context(), r.PathValue("id"), reason)
	}
	c.acted(w, r, s, r.PathValue("id"), "revoked", err)
}

func (c *Console) fileObjection(w http.ResponseWriter, r *http.Request, s *session) {
	in := service.ObjectionInput{FiledBy: r.PostFormValue("filed_by"), Grounds: r.PostFormValue("grounds"), EvidenceRefs: formList(r, "evidence_refs")}
	_, _, err := c.deps.Lifecycle.FileObjection(r.Context(), r.PathValue("id"), in)
	c.acted(w, r, s, r.PathValue("id"), "objection_filed", err)
}

// entryOf finds the entry a proceeding belongs to, for the page to go
// back to; the form names it (the service checks the proceeding belongs).
func entryOf(r *http.Request) string {
	id := r.PostFormValue("entry_id")
	if len(id) > maxFieldLen {
		return ""
	}
	return id
}

func (c *Console) decideObjection(w http.ResponseWriter, r *http.Request, s *session) {
	in := service.ObjectionDecisionInput{Decision: r.PostFormValue("decision"), Remedy: r.PostFormValue("remedy"), Note: r.PostFormValue("note")}
	e, _, err := c.deps.Lifecycle.DecideObjection(r.Context(), r.PathValue("id"), in)
	id := e.ID
	if err != nil {
		id = entryOf(r)
	}
	c.acted(w, r, s, id, "objection_decided", err)
}

func (c *Console) applyRepair(w http.ResponseWriter, r *http.Request, s *session) {
	_, _, err := c.deps.Lifecycle.ApplyRepair(r.Context(), r.PathValue("id"), c.application(r))
	c.acted(w, r, s, r.PathValue("id"), "repair_applied", err)
}

func (c *Console) applyExit(w http.ResponseWriter, r *http.Request, s *session) {
	_, _, err := c.deps.Lifecycle.ApplyExit(r.Context(), r.PathValue("id"), c.application(r))
	c.acted(w, r, s, r.PathValue("id"), "exit_applied", err)
}

func (c *Console) application(r *http.Request) service.ApplicationRequest {
	return service.ApplicationRequest{Grounds: r.PostFormValue("grounds"), EvidenceRefs: formList(r, "evidence_refs")}
}

func (c *Console) reviewRepair(w http.ResponseWriter, r *http.Request, s *session) {
	in := service.RepairReviewInput{Finding: r.PostFormValue("finding"), Recommendation: r.PostFormValue("recommendation")}
	e, _, err := c.deps.Lifecycle.ReviewRepair(r.Context(), r.PathValue("id"), in)
	c.proceedingActed(w, r, s, e, "repair_reviewed", err)
}

func (c *Console) decideRepair(w http.ResponseWriter, r *http.Request, s *session) {
	e, _, err := c.deps.Lifecycle.DecideRepair(r.Context(), r.PathValue("id"), c.decision(r))
	c.proceedingActed(w, r, s, e, "repair_decided", err)
}

func (c *Console) decideExit(w http.ResponseWriter, r *http.Request, s *session) {
	e, _, err := c.deps.Lifecycle.DecideExit(r.Context(), r.PathValue("id"), c.decision(r))
	c.proceedingActed(w, r, s, e, "exit_decided", err)
}

func (c *Console) decision(r *http.Request) service.DecisionInput {
	return service.DecisionInput{Decision: r.PostFormValue("decision"), Note: r.PostFormValue("note")}
}

func (c *Console) proceedingActed(w http.ResponseWriter, r *http.Request, s *session, e policy.Entry, done string, err error) {
	id := e.ID
	if err != nil {
		id = entryOf(r)
	}
	c.acted(w, r, s, id, done, err)
}

// proceedingRow is an open proceeding with its deadline.
type proceedingRow struct {
	service.Proceeding
	Overdue            bool
	WorkingDaysOverdue int
}

type proceedingsData struct {
	Kind, State string
	Rows        []proceedingRow
	Next        string
	AsOf        time.Time
}

// proceedings lists open objections, repairs or exits, overdue ones on
// request, with their working-day deadlines (GET /v1/admin/objections…).
func (c *Console) proceedings(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(r, s, "proceedings")
	q := r.URL.Query()
	d := &proceedingsData{Kind: q.Get("kind"), State: q.Get("state")}
	switch service.ProceedingKind(d.Kind) {
	case service.ProceedingObjection, service.ProceedingRepair, service.ProceedingExit:
	default:
		d.Kind = string(service.ProceedingObjection)
	}
	p.Data = d
	after := q.Get("after")
	if len(after) > maxFieldLen {
		c.fail(w, r, s, invalidInput("after", errFieldTooLong))
		return
	}
	// Recorded as proceedings_listed, as GET /v1/admin/objections… are.
	ps, now, err := c.deps.Lifecycle.ReadProceedings(readContext(r), service.ProceedingKind(d.Kind), d.State, after, entriesPage)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.AsOf = now
	for _, pr := range ps {
		row := proceedingRow{Proceeding: pr}
		if pr.DueAt != nil && !now.Before(*pr.DueAt) {
			row.Overdue, row.WorkingDaysOverdue = true, c.deps.Lifecycle.WorkingDaysOverdue(pr.DueAt, now)
		}
		d.Rows = append(d.Rows, row)
	}
	if len(ps) == entriesPage {
		d.Next = ps[len(ps)-1].ID
	}
	c.render(w, http.StatusOK, "proceedings", p)
}

// byteSize is a limit in the largest binary unit that divides it (64
// MiB), as forms state it.
func byteSize(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}
