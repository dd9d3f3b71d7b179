package console

import (
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// The acts page reads what GET /v1/admin/acts reads (service.Acts over
// the evidence log's index of administrative records), in log order, and
// filters by kind, actor, target and period here: the API pages the log
// without filters, so the console reads it in batches and keeps what
// matches. One page reads at most actsScan records: when that many match
// nothing, the page says how far it read and offers to read on, so that a
// filter that matches rarely never makes a request read the whole log.
const (
	actsBatch = 500
	actsScan  = 5000
	// actDetailsShown bounds the details shown in a row (an import names
	// its entries, a publication its events): the whole record is on the
	// evidence page the row links to.
	actDetailsShown = 240
)

// actKinds are the acts the filter offers, in the order of the menu; a
// kind not among them (one added later) can still be typed into the
// address and is shown as it is.
var actKinds = []service.Act{
	service.ActPartnerCreated, service.ActPartnerUpdated, service.ActCredentialRotated, service.ActPartnerRevoked,
	service.ActEntryCreated, service.ActEntryPatched, service.ActEntryRevoked, service.ActEntriesImported,
	service.ActObjectionFiled, service.ActObjectionDecided, service.ActRepairApplied, service.ActRepairReviewed,
	service.ActRepairDecided, service.ActExitApplied, service.ActExitDecided, service.ActViolationRecorded,
	service.ActWebhookSet, service.ActWebhookRemoved, service.ActWebhookDelivered, service.ActWebhookDeadLetter,
	service.ActWebhookSkipped, service.ActWebhookReplayed, service.ActWatchlistChanged, service.ActAuthoritiesSet,
	service.ActEventsPublished, service.ActChecksSearched, service.ActStatsComputed, service.ActMonthlyReported,
	service.ActCoverageComputed, service.ActCheckRead, service.ActReceiptRead, service.ActEntryRead, service.ActEntriesListed,
	service.ActProceedingsListed, service.ActViolationsRead, service.ActCatalogInUse, service.ActCatalogLoaded, service.ActFailed,
}

// actsFilter is the acts page's form as filled in.
type actsFilter struct {
	Kind, Actor, Target string
	From, To            string // dates as typed, YYYY-MM-DD
	from, to            time.Time
}

// selects reports whether the filter selects anything (rather than all).
func (f actsFilter) selects() bool {
	return f.Kind != "" || f.Actor != "" || f.Target != "" || !f.from.IsZero() || !f.to.IsZero()
}

// match reports whether the act is one the filter selects. An act whose
// record's body is erased or altered has no kind, actor or time to
// match: it is listed only when nothing is filtered, where it shows as
// what it is.
func (f actsFilter) match(a service.ActView) bool {
	if !f.selects() {
		return true
	}
	b := a.Body
	if b == nil {
		return false
	}
	return (f.Kind == "" || string(b.Act) == f.Kind) && (f.Actor == "" || b.Actor == f.Actor) &&
		(f.Target == "" || b.Target == f.Target) && (f.from.IsZero() || !b.At.Before(f.from)) &&
		(f.to.IsZero() || b.At.Before(f.to))
}

// actRow is one act as the page shows it.
type actRow struct {
	LogIndex   uint64
	ID         string
	RecordHash string
	Status     evidence.BodyStatus
	Act        string
	Actor      string
	ActorRole  string
	Target     string
	At         *time.Time
	Details    string
}

type actsData struct {
	Filter actsFilter
	Kinds  []service.Act
	Acts   []actRow
	// Next is the address of the next page ("" when none); Scanned that
	// the page stopped after reading actsScan records, at log index
	// ScannedTo, before it had a page of matches.
	Next      template.URL
	Scanned   bool
	ScannedTo int64
	Paged     bool
}

// actsPage lists the administrative acts, viewPage at a time.
func (c *Console) actsPage(w http.ResponseWriter, r *http.Request, s *session) {
	p := c.newPage(r, s, "acts")
	q := r.URL.Query()
	f := actsFilter{Kind: strings.TrimSpace(q.Get("kind")), Actor: strings.TrimSpace(q.Get("actor")),
		Target: strings.TrimSpace(q.Get("target")), From: q.Get("from"), To: q.Get("to")}
	d := &actsData{Filter: f, Kinds: actKinds}
	p.Data = d
	for name, v := range map[string]string{"kind": f.Kind, "actor": f.Actor, "target": f.Target} {
		if len(v) > maxFieldLen {
			c.renderActs(w, p, invalidInput(name, errFieldTooLong))
			return
		}
	}
	var err error
	if f.from, f.to, err = c.period(f.From, f.To); err != nil {
		c.renderActs(w, p, err)
		return
	}
	d.Filter = f
	after, err := readAfter(q)
	if err != nil {
		c.renderActs(w, p, err)
		return
	}
	d.Paged = after >= 0
	rows, next, err := c.findActs(r, f, after)
	if err != nil {
		c.renderActs(w, p, err)
		return
	}
	d.Acts = rows
	if next >= 0 {
		d.Next = nextPage("/console/acts", url.Values{"kind": {f.Kind}, "actor": {f.Actor}, "target": {f.Target}, "from": {f.From}, "to": {f.To},
			"after": {strconv.FormatInt(next, 10)}})
		d.Scanned, d.ScannedTo = len(rows) < viewPage, next
	}
	c.renderActs(w, p, nil)
}

// findActs reads acts after the log index after until it has a page of
// matches, the log ends, or it has read actsScan records; next is the log
// index to read on after (-1: the log ends here).
func (c *Console) findActs(r *http.Request, f actsFilter, after int64) (rows []actRow, next int64, err error) {
	batch := actsBatch
	if !f.selects() {
		batch = viewPage // every act matches: read no more than a page
	}
	for read := 0; read < actsScan; {
		acts, err := c.acts.List(r.Context(), after, batch)
		if err != nil {
			return nil, 0, err
		}
		read += len(acts)
		for _, a := range acts {
			after = int64(a.LogIndex)
			if !f.match(a) {
				continue
			}
			rows = append(rows, viewAct(a))
			if len(rows) == viewPage {
				return rows, after, nil
			}
		}
		if len(acts) < batch {
			return rows, -1, nil
		}
	}
	return rows, after, nil
}

// viewAct is an act as a row: its details as JSON (without the actor's
// role, shown beside the actor), cut to actDetailsShown.
func viewAct(a service.ActView) actRow {
	row := actRow{LogIndex: a.LogIndex, ID: a.ID, RecordHash: hex.EncodeToString(a.RecordHash[:]), Status: a.Status}
	b := a.Body
	if b == nil {
		return row
	}
	at := b.At
	row.Act, row.Actor, row.Target, row.At = string(b.Act), b.Actor, b.Target, &at
	details := map[string]any{}
	for k, v := range b.Details {
		if k == "actor_role" {
			row.ActorRole, _ = v.(string)
			continue
		}
		details[k] = v
	}
	details, _ = withoutSubjects(details).(map[string]any)
	if len(details) > 0 {
		out, _ := json.Marshal(details) // decoded from JSON: it encodes
		row.Details = string(out)
		if len(row.Details) > actDetailsShown {
			cut := actDetailsShown
			for cut > 0 && !utf8RuneStart(row.Details[cut]) {
				cut--
			}
			row.Details = row.Details[:cut] + "…"
		}
	}
	return row
}

// subjectMask stands for a subject's ID number in an act's details.
const subjectMask = "…"

// withoutSubjects is a detail with the subjects' ID numbers it holds (an
// entry's, a lookup's: "subject_id" at any depth) masked. A list of acts
// is no read of subjects' data: the number is in the act's evidence
// record, whose opening is itself a recorded read (receipt_read).
func withoutSubjects(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "subject_id" || k == "subject" {
				out[k] = subjectMask
				continue
			}
			out[k] = withoutSubjects(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutSubjects(e)
		}
		return out
	}
	return v
}

// utf8RuneStart reports whether b starts a character (cutting there
// leaves valid UTF-8).
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func (c *Console) renderActs(w http.ResponseWriter, p *page, err error) {
	status := http.StatusOK
	if err != nil {
		p.Error = c.problem(p.Lang, err)
		status = p.Error.Status
	}
	c.render(w, status, "acts", p)
}

// IsKind reports whether the filter's kind is k (for the menu).
func (f actsFilter) IsKind(k service.Act) bool { return f.Kind == string(k) }

// KnownKind reports whether the filter's kind is one the menu offers.
func (f actsFilter) KnownKind() bool {
	return f.Kind == "" || slices.Contains(actKinds, service.Act(f.Kind))
}
