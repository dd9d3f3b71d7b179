package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

var errOverlap = errors.New("overlap_hours must be a whole number of hours from 0 to 720")

type evidenceData struct {
	Origin     string
	Checkpoint *evidence.StoredCheckpoint
	Keys       []evidence.KeyInfo
	PinnedKey  string
	CheckID    string
	// Record is the record looked up, of any kind (a check, a subject
	// lookup, an act); Check is its answer when it is a check.
	Record     *evidence.ReceiptRecord
	Check      *service.CheckAnswer
	Receipt    string // indented JSON, for the verifier and to download
	ReceiptRaw string
	// History is a page of the stored checkpoints, newest first, each
	// verified on the server; Older is the size below which the next
	// page starts (0: none), Paged that this is not the first page.
	History []historyRow
	Older   uint64
	Paged   bool
	// Search is the search of checks by partner, action, outcome and
	// period (checksearch.go).
	Search *checkSearchView
}

// historyPage is how many checkpoints one page of the history shows:
// what fits beside the rest of the screen.
const historyPage = 10

// historyRow is one checkpoint of the history as shown.
type historyRow struct {
	evidence.HistoryEntry
	Root string // base64, as in the note
}

var errHistoryBefore = errors.New("history_before must be a tree size (a whole number)")

// evidencePage shows the current signed checkpoint and the log's keys,
// the consistency history of the stored checkpoints, looks a check up by
// id with its receipt, and hosts the in-browser
// verifier (static/verify.js), which checks a receipt against a key the
// auditor pins (filled in with the log's current key, to replace with the
// one kept out of band).
func (c *Console) evidencePage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	p := c.newPage(r, s, "evidence")
	d := &evidenceData{Origin: c.deps.Evidence.Origin(), CheckID: strings.TrimSpace(r.URL.Query().Get("check"))}
	p.Data = d
	keys, err := c.deps.Evidence.Keys(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Keys = keys
	for _, k := range keys {
		if k.Current {
			d.PinnedKey = k.Key
		}
	}
	if cp, err := c.deps.Evidence.Checkpoint(ctx); err == nil {
		d.Checkpoint = &cp
	} else if !errors.Is(err, evidence.ErrNoCheckpoint) {
		c.fail(w, r, s, err)
		return
	}
	if err := c.history(r, d); err != nil {
		c.fail(w, r, s, err)
		return
	}
	status := http.StatusOK
	if err := c.searchChecks(r, d); err != nil {
		p.Error = c.problem(p.Lang, err)
		status = p.Error.Status
	}
	if d.CheckID != "" {
		if err := c.lookupCheck(r, s, d); err != nil {
			p.Error = c.problem(p.Lang, err)
			status = p.Error.Status
		}
	}
	c.render(w, status, "evidence", p)
}

// history reads a page of the consistency history through the evidence
// log, which verifies each checkpoint's signature and the consistency
// proof from the one before it: the page shows the results, it does not
// compute them. history_before pages back by tree size.
func (c *Console) history(r *http.Request, d *evidenceData) error {
	var below uint64
	if raw := r.URL.Query().Get("history_before"); raw != "" {
		v, err := strconv.ParseUint(raw, 10, 64)
		if err != nil || v == 0 {
			return invalidInput("history_before", errHistoryBefore)
		}
		below, d.Paged = v, true
	}
	entries, err := c.deps.Evidence.History(r.Context(), below, historyPage)
	if err != nil {
		return err
	}
	d.History = make([]historyRow, len(entries))
	for i, e := range entries {
		d.History[i] = historyRow{HistoryEntry: e, Root: base64.StdEncoding.EncodeToString(e.Root[:])}
	}
	if n := len(entries); n == historyPage && entries[n-1].HasOlder {
		d.Older = entries[n-1].Size
	}
	return nil
}

// lookupCheck reads a record of the evidence log by id, with its receipt,
// as GET /v1/evidence/receipts/{id} does for this caller: any record the
// console names (a check, the record of a subject lookup, an act), not
// only checks. A check's answer is shown too, as GET /v1/checks/{id}. The
// read is recorded as one act (check_read, or receipt_read for another
// record) before the page shows it.
func (c *Console) lookupCheck(r *http.Request, s *session, d *evidenceData) error {
	if len(d.CheckID) > maxFieldLen {
		return invalidInput("check", errFieldTooLong)
	}
	caller, err := c.caller(r, s)
	if err != nil {
		return err
	}
	rc, ans, err := c.deps.Checker.ShowRecord(readContext(r), c.deps.Receipts, caller, d.CheckID)
	if err != nil {
		return err
	}
	d.Record = &rc.Record
	d.Check = ans
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return err
	}
	d.Receipt = string(b)
	return nil
}

// receiptDownload serves a check's receipt as a file to keep.
func (c *Console) receiptDownload(w http.ResponseWriter, r *http.Request, s *session) {
	caller, err := c.caller(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	id := r.PathValue("id")
	// Recorded as receipt_read, as GET /v1/evidence/receipts/{id} is.
	rc, err := c.deps.Checker.ReadReceipt(readContext(r), c.deps.Receipts, caller, id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="receipt.json"`)
	_, _ = w.Write(b)
}

// readContext is the request's context naming the console route it came
// by, which the acts recording staff reads name (service.WithReadRoute).
func readContext(r *http.Request) context.Context {
	return service.WithReadRoute(r.Context(), "console "+r.Pattern) // the pattern starts with the method
}
