package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// TestScreeningResultsCorruptNeverLookWhole: results the job's tree does
// not prove are never served as a whole file. Caught before anything is
// sent, the caller gets 500 evidence_corrupt; caught after part of the body
// is on the wire, the connection is aborted, so the client's download
// fails instead of ending cleanly, shorter.
func TestScreeningResultsCorruptNeverLookWhole(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withScreenings())
	_, bank := h.partner("bank", "bank_credit")
	var file bytes.Buffer
	const n = 900 // past the handler's 256 KiB buffer
	for i := range n {
		fmt.Fprintf(&file, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("91110108MC%07d", i)))
	}
	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file.Bytes())
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for job := res.json(t); job["state"] != "done"; job = h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil).json(t) {
		if time.Now().After(deadline) || job["state"] == "failed" {
			t.Fatalf("job did not finish: %v", job)
		}
		time.Sleep(50 * time.Millisecond)
	}
	path := filepath.Join(h.dir, "screenings", id, "results")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) < 300<<10 {
		t.Fatalf("results of %d bytes do not pass the buffer", len(orig))
	}
	// Every subject is clear; "clear" → "CLEAR" keeps the file's length.
	corrupt := func(line int) {
		t.Helper()
		lines := bytes.SplitAfter(orig, []byte("\n"))
		lines[line-1] = bytes.Replace(bytes.Clone(lines[line-1]), []byte(`"outcome":"clear"`), []byte(`"outcome":"CLEAR"`), 1)
		if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	corrupt(2)
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil), http.StatusInternalServerError, "evidence_corrupt")

	corrupt(n)
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	for _, format := range []string{"ndjson", "csv"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/screenings/"+id+"/results?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+bank)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: the download of corrupt results ended cleanly (%d, %d bytes)", format, resp.StatusCode, len(body))
		}
	}
}
