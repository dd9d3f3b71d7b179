package console

import (
	"encoding/json"
	"errors"
	"net/http"
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
	Check      *service.CheckAnswer
	Receipt    string // indented JSON, for the verifier and to download
	ReceiptRaw string
}

// evidencePage shows the current signed checkpoint and the log's keys,
// looks a check up by id with its receipt, and hosts the in-browser
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
	status := http.StatusOK
	if d.CheckID != "" {
		if err := c.lookupCheck(r, s, d); err != nil {
			p.Error = c.problem(p.Lang, err)
			status = p.Error.Status
		}
	}
	c.render(w, status, "evidence", p)
}

// lookupCheck reads a check and its receipt as GET /v1/checks/{id} and
// GET /v1/evidence/receipts/{id} do for this caller.
func (c *Console) lookupCheck(r *http.Request, s *session, d *evidenceData) error {
	if len(d.CheckID) > maxFieldLen {
		return invalidInput("check", errFieldTooLong)
	}
	caller, err := c.caller(r, s)
	if err != nil {
		return err
	}
	ans, err := c.deps.Checker.GetCheck(r.Context(), caller, d.CheckID)
	if err != nil {
		return err
	}
	d.Check = &ans
	rc, err := c.deps.Receipts.Receipt(r.Context(), caller, d.CheckID)
	if err != nil {
		return err
	}
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
	rc, err := c.deps.Receipts.Receipt(r.Context(), caller, id)
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
