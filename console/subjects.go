package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/credgate/credgate/service"
)

// maxFieldLen bounds a single-line form field the console reads (an id, a
// time, a name); longer values are refused before any service is asked.
const maxFieldLen = 512

var errFieldTooLong = errors.New("a field is longer than 512 bytes")

// localTime reads a time from a datetime-local field, which carries no
// zone: it is the offices' time (UTC+8). An RFC 3339 time is read as such.
func (c *Console) localTime(v string) (*time.Time, error) { return parseLocalTime(v, c.zone) }

func parseLocalTime(v string, zone *time.Location) (*time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if len(v) > 40 {
		return nil, errFieldTooLong
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return &t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return &t, nil
		}
	}
	return nil, errors.New("want a date and time, e.g. 2026-03-01T09:00")
}

type subjectsData struct {
	ID, At, ValidAt string
	Status          *service.SubjectStatus
}

// subjectsPath is the subject lookup's page. The lookup is sent by POST,
// and its answer is that request's page: a subject's ID number (personal
// information under the PIPL) is never in an address, which proxies log
// (nginx's error log writes a failed request's path and query), browsers
// keep in their history and people bookmark or paste.
const subjectsPath = "/console/subjects"

// subjectsForm is the lookup's form, empty. An ID number in the address
// (?id=, as the console once sent the form) is not looked up, shown or
// carried on into the page's links (the language switch's way back).
func (c *Console) subjectsForm(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(r, s, "subjects")
	p.Path = subjectsPath
	p.Data = &subjectsData{}
	c.render(w, http.StatusOK, "subjects", p)
}

// subjects looks up the subject of the posted form: its entries as known
// at a time, their standing, the measures per action, points and
// proceedings. The lookup is the API's subject status (GET
// /v1/subjects/{id}/status), recorded as evidence like it; sending the
// form again (a reload) is another lookup, recorded again.
func (c *Console) subjects(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(r, s, "subjects")
	p.Path = subjectsPath
	d := subjectsData{ID: strings.TrimSpace(r.PostFormValue("id")), At: r.PostFormValue("at"), ValidAt: r.PostFormValue("valid_at")}
	p.Data = &d
	if d.ID == "" {
		c.render(w, http.StatusOK, "subjects", p)
		return
	}
	status := http.StatusOK
	st, err := c.lookup(r, s, d)
	if err != nil {
		p.Error = c.problem(p.Lang, err)
		status = p.Error.Status
		if p.Error.Field == "as_of" { // the API's name for this form's "at"
			p.Error.Field = "at"
		}
	} else {
		d.Status = &st
	}
	c.render(w, status, "subjects", p)
}

func (c *Console) lookup(r *http.Request, s *session, d subjectsData) (service.SubjectStatus, error) {
	if len(d.ID) > maxFieldLen {
		return service.SubjectStatus{}, invalidInput("id", errFieldTooLong)
	}
	at, err := c.localTime(d.At)
	if err != nil {
		return service.SubjectStatus{}, invalidInput("at", err)
	}
	validAt, err := c.localTime(d.ValidAt)
	if err != nil {
		return service.SubjectStatus{}, invalidInput("valid_at", err)
	}
	caller, err := c.caller(r, s)
	if err != nil {
		return service.SubjectStatus{}, err
	}
	return c.deps.Checker.SubjectStatusOf(r.Context(), caller, d.ID, service.StatusQuery{At: at, ValidAt: validAt})
}
