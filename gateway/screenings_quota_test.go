package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// screeningFile is an NDJSON file of n valid organisations, distinct per
// prefix (two letters).
func screeningFile(t *testing.T, prefix string, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("91110108%s%07d", prefix, i)))
	}
	return b.Bytes()
}

// jobDirs lists the screening job directories under dir.
func jobDirs(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "scr_") {
			out = append(out, de.Name())
		}
	}
	return out
}

// TestScreeningChargesEverySubject: a screening costs one unit of the
// partner's quota a subject, as a batch does. A file larger than the
// quota's whole window could never pass: it is 422 screening_exceeds_quota,
// without Retry-After, naming both counts. A file larger than what remains
// is 429 rate_limited, as a batch over the quota is. Either leaves nothing:
// no job, no file, no unit used.
func TestScreeningChargesEverySubject(t *testing.T) {
	h := newHarness(t, withLimiter(t, "1000-M"), withScreenings())
	bank := h.createPartner(map[string]any{"name": "筛查银行", "actions": []string{"bank_credit"}, "rate_limit": "5-M"})
	tok := h.token(bank["client_id"].(string), bank["client_secret"].(string))
	dir := filepath.Join(h.dir, "screenings")
	nothingKept := func(when string) {
		t.Helper()
		if dirs := jobDirs(t, dir); len(dirs) != 0 {
			t.Fatalf("%s: a refused screening left %v", when, dirs)
		}
		if un, err := h.store.UnfinishedScreenings(context.Background(), 10); err != nil || len(un) != 0 {
			t.Fatalf("%s: a refused screening was stored: %v %v", when, un, err)
		}
	}

	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", screeningFile(t, "MF", 6))
	m := problemCode(t, res, http.StatusUnprocessableEntity, "screening_exceeds_quota")
	if res.Header.Get("Retry-After") != "" {
		t.Fatalf("no wait lets the file through, yet Retry-After: %q", res.Header.Get("Retry-After"))
	}
	if d, _ := m["detail"].(string); !strings.Contains(d, "6 subjects") || !strings.Contains(d, "quota is 5 a minute") {
		t.Fatalf("detail %q does not name the subjects and the quota", d)
	}
	nothingKept("over the whole quota")

	// The refusal cost nothing: three subjects take three of the five.
	res = h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", screeningFile(t, "MF", 3))
	if res.Status != http.StatusAccepted || res.Header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("a screening within the quota: %d %v %s", res.Status, res.Header, res.Body)
	}
	res = h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", screeningFile(t, "ML", 3))
	m = problemCode(t, res, http.StatusTooManyRequests, "rate_limited")
	// The bank is told what it needs, what is left and until when.
	if d, _ := m["detail"].(string); !strings.Contains(d, "needs 3 units") || !strings.Contains(d, "2 of 5 a minute are left until 20") {
		t.Fatalf("detail %q does not say what the file needs and what is left", d)
	}
	if res.Header.Get("Retry-After") == "" || res.Header.Get("RateLimit-Limit") != "5" {
		t.Fatalf("429 headers: %v", res.Header)
	}
	clean := testenv.USCC(t, "91110000MA0000005")
	three := []map[string]string{{"id": clean}, {"id": clean}, {"id": clean}}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": three}),
		http.StatusTooManyRequests, "rate_limited")
	if res := h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": three[:2]}); res.Status != http.StatusOK ||
		res.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("the rest of the quota: %d %v", res.Status, res.Header)
	}
	problemCode(t, h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", screeningFile(t, "MG", 1)),
		http.StatusTooManyRequests, "rate_limited")
	if dirs := jobDirs(t, dir); len(dirs) != 1 {
		t.Fatalf("job directories %v, want the one accepted", dirs)
	}
}

// screeningsUnrun serves screenings whose jobs run only once the test
// calls the function it returns: they stay queued until then.
func screeningsUnrun(t *testing.T, opts ...service.ScreeningsOption) (harnessOption, *string, func()) {
	t.Helper()
	var sc *service.Screenings
	dir := t.TempDir()
	start := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sc.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return func(hc *harnessConfig) {
		hc.services = func(raw service.Store, cat *policy.Catalog, _ *service.Audit) []gateway.Option {
			app := evidence.NewAppender(raw)
			t.Cleanup(app.Close)
			checker := service.NewChecker(cat, raw, app, raw)
			sc = service.NewScreenings(checker, raw, dir, opts...)
			return []gateway.Option{gateway.WithScreenings(sc)}
		}
	}, &dir, start
}

// TestScreeningUnfinishedCap: a partner has at most two jobs unfinished;
// a third is 429 too_many_screenings, saying how many, before its file is
// kept. Other partners are not affected, and once a job ends the partner
// may submit again.
func TestScreeningUnfinishedCap(t *testing.T) {
	opt, dir, _ := screeningsUnrun(t)
	h := newHarness(t, withLimiter(t, "1000-M"), opt)
	_, bank := h.partner("一家银行", "bank_credit")
	_, other := h.partner("另一家银行", "bank_credit")
	file := screeningFile(t, "MH", 3)

	var ids []string
	for i := range 2 {
		res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file)
		if res.Status != http.StatusAccepted {
			t.Fatalf("job %d: %d %s", i, res.Status, res.Body)
		}
		ids = append(ids, res.json(t)["id"].(string))
	}
	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file)
	m := problemCode(t, res, http.StatusTooManyRequests, "too_many_screenings")
	if d, _ := m["detail"].(string); !strings.Contains(d, "2 screening jobs") {
		t.Fatalf("detail %q does not say how many are unfinished", d)
	}
	if dirs := jobDirs(t, *dir); len(dirs) != 2 {
		t.Fatalf("job directories %v, want the two accepted", dirs)
	}
	if res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", other, "application/x-ndjson", file); res.Status != http.StatusAccepted {
		t.Fatalf("another partner's job: %d %s", res.Status, res.Body)
	}

	// One job ends: there is room again.
	ctx := context.Background()
	j, err := h.store.GetScreening(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	j.State, j.Error, j.UpdatedAt = service.ScreeningFailed, "ended by the test", time.Now().UTC()
	if err := h.store.UpdateScreening(ctx, j); err != nil {
		t.Fatal(err)
	}
	if res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file); res.Status != http.StatusAccepted {
		t.Fatalf("a job once another ended: %d %s", res.Status, res.Body)
	}
}

// TestScreeningOfRevokedPartner: a job queued when its partner is revoked
// never runs: it ends failed saying why, records nothing in the evidence
// log and has no results; another partner's job runs as before.
func TestScreeningOfRevokedPartner(t *testing.T) {
	opt, dir, start := screeningsUnrun(t)
	h := newHarness(t, opt)
	revoked, bank := h.partner("将被撤销的银行", "bank_credit")
	_, other := h.partner("另一家银行", "bank_credit")
	submit := func(tok string) string {
		t.Helper()
		res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", screeningFile(t, "MJ", 4))
		if res.Status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", res.Status, res.Body)
		}
		return res.json(t)["id"].(string)
	}
	gone, kept := submit(bank), submit(other)
	if res := h.doJSON(http.MethodPost, "/v1/admin/partners/"+revoked+":revoke", h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	start()

	wait := func(id string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			job := h.do(http.MethodGet, "/v1/screenings/"+id, h.adminTok, "", nil).json(t)
			if job["state"] == "done" || job["state"] == "failed" {
				return job
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not end: %v", id, job)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if job := wait(kept); job["state"] != "done" {
		t.Fatalf("the other partner's job: %v", job)
	}
	job := wait(gone)
	if job["state"] != "failed" || !strings.Contains(job["error"].(string), "revoked") || job["done"].(float64) != 0 {
		t.Fatalf("the revoked partner's job: %v", job)
	}
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+gone+"/results", h.adminTok, "", nil), http.StatusConflict, "screening_not_done")
	problemCode(t, h.do(http.MethodGet, "/v1/evidence/receipts/"+gone, h.adminTok, "", nil), http.StatusNotFound, "not_found")
	if _, err := os.Stat(filepath.Join(*dir, gone)); !os.IsNotExist(err) {
		t.Fatalf("the revoked partner's job files are left: %v", err)
	}
}
