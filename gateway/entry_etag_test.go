package gateway_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// patchIfMatch is PATCH /v1/admin/entries/{id} with an If-Match header,
// validated against the contract like every exchange of the harness.
func (h *harness) patchIfMatch(id, ifMatch, body string) response {
	h.t.Helper()
	path := "/v1/admin/entries/" + id
	req := httptest.NewRequest(http.MethodPatch, path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+h.adminTok)
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	return h.send(req, []byte(body))
}

// TestPatchEntryIfMatch: two clerks read version 1 and both change the
// entry's evidence list; with If-Match the second is told the entry
// changed (412) instead of replacing the first one's list.
func TestPatchEntryIfMatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org := testenv.USCC(t, "91110000MA0000077")
	id := h.entry(org, "safety_production_blacklist", time.Now().Add(-48*time.Hour), map[string]any{"evidence_refs": []string{"x"}})["id"].(string)

	read := h.doJSON(http.MethodGet, "/v1/admin/entries/"+id, h.adminTok, nil)
	etag := read.Header.Get("ETag")
	if read.Status != http.StatusOK || etag != `"1"` {
		t.Fatalf("read: %d ETag %q", read.Status, etag)
	}
	first := h.patchIfMatch(id, etag, `{"evidence_refs":["x","a"]}`)
	if first.Status != http.StatusOK || first.Header.Get("ETag") != `"2"` {
		t.Fatalf("first clerk: %d ETag %q %s", first.Status, first.Header.Get("ETag"), first.Body)
	}
	problemCode(t, h.patchIfMatch(id, etag, `{"evidence_refs":["x","b"]}`), http.StatusPreconditionFailed, "precondition_failed")
	for _, tag := range []string{`W/"2"`, `2`, `"2", "3"`, `"0"`, `"abc"`} {
		problemCode(t, h.patchIfMatch(id, tag, `{"evidence_refs":["x","c"]}`), http.StatusPreconditionFailed, "precondition_failed")
	}
	got := h.doJSON(http.MethodGet, "/v1/admin/entries/"+id, h.adminTok, nil).json(t)
	if refs := got["evidence_refs"].([]any); len(refs) != 2 || refs[1] != "a" || got["version"] != float64(2) {
		t.Fatalf("after the refused patches: %v version %v", refs, got["version"])
	}
	// The current tag, or "*", or none: applied.
	if res := h.patchIfMatch(id, `"2"`, `{"evidence_refs":["x","a","b"]}`); res.Status != http.StatusOK {
		t.Fatalf("current tag: %d %s", res.Status, res.Body)
	}
	if res := h.patchIfMatch(id, `*`, `{"reason":"核实"}`); res.Status != http.StatusOK {
		t.Fatalf("If-Match *: %d %s", res.Status, res.Body)
	}
	if res := h.patchIfMatch(id, ``, `{"reason":"再核实"}`); res.Status != http.StatusOK || res.Header.Get("ETag") != `"5"` {
		t.Fatalf("no If-Match: %d %q %s", res.Status, res.Header.Get("ETag"), res.Body)
	}
}
