package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func withScreenings() harnessOption { return func(c *harnessConfig) { c.screenings = true } }

// TestScreeningJob screens a file through the API: the listed subject is
// found, a bad identifier is that subject's error, every answer's proof
// verifies under the root the evidence log records, and another partner
// cannot see the job.
func TestScreeningJob(t *testing.T) {
	h := newHarness(t, withScreenings())
	listed := testenv.USCC(t, "91110108MB9999999")
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	imp := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv",
		[]byte(header+listed+",court_dishonest_debtor,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02\n"))
	if imp.Status != http.StatusCreated {
		t.Fatalf("import: %d %s", imp.Status, imp.Body)
	}
	_, bank := h.partner("bank", "bank_credit")
	_, other := h.partner("other bank", "bank_credit")

	var file bytes.Buffer
	const n = 50
	for i := range n - 2 {
		fmt.Fprintf(&file, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("91110108MB%07d", i)))
	}
	fmt.Fprintf(&file, "{\"id\":%q}\n{\"id\":\"91110000MA0000000X\"}\n", listed)

	problemCode(t, h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "text/plain", file.Bytes()),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
	problemCode(t, h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", []byte("{\"id\":1}\nnot json\n")),
		http.StatusUnprocessableEntity, "screening_rejected")
	problemCode(t, h.do(http.MethodPost, "/v1/screenings?action=no_such_action", bank, "application/x-ndjson", file.Bytes()),
		http.StatusBadRequest, "unknown_action")

	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file.Bytes())
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	job := res.json(t)
	id := job["id"].(string)
	if job["state"] != "queued" || job["total"].(float64) != n {
		t.Fatalf("job %v", job)
	}
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id, other, "", nil), http.StatusNotFound, "not_found")

	deadline := time.Now().Add(30 * time.Second)
	for job["state"] != "done" {
		if time.Now().After(deadline) || job["state"] == "failed" {
			t.Fatalf("job did not finish: %v", job)
		}
		time.Sleep(50 * time.Millisecond)
		job = h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil).json(t)
	}
	counts := job["counts"].(map[string]any)
	if counts["invalid"].(float64) != 1 || job["tree_size"].(float64) != n-1 {
		t.Fatalf("done job %v", job)
	}
	root := job["root"].(string)

	// The root is one record of the evidence log, with a receipt.
	if r := h.do(http.MethodGet, "/v1/evidence/receipts/"+id, bank, "", nil); r.Status != http.StatusOK {
		t.Fatalf("receipt of the job's record: %d %s", r.Status, r.Body)
	}

	ev := h.do(http.MethodGet, "/v1/screenings/"+id+"/events", bank, "", nil)
	if ev.Status != http.StatusOK || !bytes.Contains(ev.Body, []byte("event:progress")) || !bytes.Contains(ev.Body, []byte(`"state":"done"`)) {
		t.Fatalf("events: %d %s", ev.Status, ev.Body)
	}

	out := h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil)
	if out.Status != http.StatusOK {
		t.Fatalf("results: %d %s", out.Status, out.Body)
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Body))
	sc.Buffer(nil, 1<<20)
	lines, hits := 0, 0
	for sc.Scan() {
		lines++
		var a service.ScreenedAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if a.Error != nil {
			if a.Line != n || a.Error.Code != "invalid_subject_id" {
				t.Fatalf("error line %+v", a)
			}
			continue
		}
		if err := service.VerifyScreenedAnswer(a.Answer, *a.LeafIndex, uint64(n-1), a.Proof, root); err != nil {
			t.Fatalf("line %d: %v", a.Line, err)
		}
		if a.SubjectID == listed {
			hits++
			if a.Outcome == "clear" {
				t.Fatalf("the listed subject is clear: %s", a.Answer)
			}
		} else if a.Outcome != "clear" {
			t.Fatalf("line %d: %s", a.Line, a.Outcome)
		}
	}
	if lines != n || hits != 1 {
		t.Fatalf("%d result lines, %d hits", lines, hits)
	}

	c := h.do(http.MethodGet, "/v1/screenings/"+id+"/results?format=csv", bank, "", nil)
	rows, err := csv.NewReader(bytes.NewReader(c.Body)).ReadAll()
	if err != nil || len(rows) != n+1 || rows[0][0] != "line" {
		t.Fatalf("csv: %d rows, %v", len(rows), err)
	}
	// The invalid subject's row says why, as its NDJSON line does.
	if last := rows[n]; rows[0][9] != "error_detail" || last[5] != "invalid_subject_id" || last[9] == "" {
		t.Fatalf("csv header %v, invalid subject's row %v", rows[0], last)
	}
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results?format=xml", bank, "", nil), http.StatusBadRequest, "invalid_format")
	if !strings.HasPrefix(res.Header.Get("Location"), "/v1/screenings/") {
		t.Fatalf("location %q", res.Header.Get("Location"))
	}
}

// TestScreeningRetention: a finished job's files are deleted once its
// retention has passed (Run sweeps them), after which its results are 410
// screening_expired; the job and its evidence record stay.
func TestScreeningRetention(t *testing.T) {
	sc := newRetainedScreening(t, "91110108MC", 5)
	h, bank, id, offset := sc.h, sc.bank, sc.id, sc.offset
	if r := h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil); r.Status != http.StatusOK {
		t.Fatalf("results: %d", r.Status)
	}
	// Within its retention, the sweeps leave it.
	offset.Store(int64(90 * time.Minute))
	time.Sleep(1500 * time.Millisecond)
	if r := h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil); r.Status != http.StatusOK {
		t.Fatalf("results within the retention: %d", r.Status)
	}
	offset.Store(int64(3 * time.Hour))
	waitFor(t, "the results expired", func() bool {
		return h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil).Status == http.StatusGone
	})
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil), http.StatusGone, "screening_expired")
	if _, err := os.Stat(filepath.Join(h.dir, "screenings", id)); !os.IsNotExist(err) {
		t.Fatalf("the job's files are left: %v", err)
	}
	if r := h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil); r.Status != http.StatusOK || r.json(t)["state"] != "done" {
		t.Fatalf("the job after its files expired: %d %s", r.Status, r.Body)
	}
	if r := h.do(http.MethodGet, "/v1/evidence/receipts/"+id, bank, "", nil); r.Status != http.StatusOK {
		t.Fatalf("the job's record after its files expired: %d", r.Status)
	}
}
