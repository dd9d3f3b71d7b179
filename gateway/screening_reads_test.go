package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// newScreeningReadsHarness is the harness with screenings and the
// deliveries log, whose administrative acts fail while down is set.
func newScreeningReadsHarness(t *testing.T, down *atomic.Bool) *harness {
	return newHarness(t, withScreenings(), func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return adminCommitsFail{Store: st, down: down} }
		hc.services = func(raw service.Store, cat *policy.Catalog, audit *service.Audit) []gateway.Option {
			ps := raw.(service.PushStore)
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			allow, err := webhook.ParseAllow([]string{"127.0.0.0/8"})
			if err != nil {
				t.Fatal(err)
			}
			d := service.NewDeliverer(ps, service.NewWebhookSigner(key), webhook.NewSender(webhook.WithAllow(allow)), service.WithDeliveryAudit(audit))
			return []gateway.Option{gateway.WithPush(service.NewEvents(ps, raw, raw, cat, service.WithEventsAudit(audit)),
				service.NewWatchlists(ps, service.WithWatchlistsAudit(audit)), d)}
		}
	})
}

// doneScreening submits a file of a person and an organisation for tok
// and waits, polling as tok, until the job is done; it returns its id.
func doneScreening(t *testing.T, h *harness, tok string) string {
	t.Helper()
	file := fmt.Sprintf("{\"id\":%q}\n{\"id\":%q}\n", readsPerson, testenv.USCC(t, "91110108MD0000001"))
	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", tok, "application/x-ndjson", []byte(file))
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	job := res.json(t)
	id := job["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for job["state"] != "done" {
		if time.Now().After(deadline) || job["state"] == "failed" {
			t.Fatalf("job did not finish: %v", job)
		}
		time.Sleep(20 * time.Millisecond)
		job = h.do(http.MethodGet, "/v1/screenings/"+id, tok, "", nil).json(t)
	}
	return id
}

// TestStaffScreeningReadsRecorded: an auditor's or administrator's read
// of a partner's screening job (its state and counts, its events), of
// its results (NDJSON or CSV: each subject's answer) and of the webhook
// delivery log is recorded as one act per request, naming the job or the
// filter, the reader and the route, never a subject's ID number. The
// partner's reads of its own job and deliveries are not recorded.
func TestStaffScreeningReadsRecorded(t *testing.T) {
	var down atomic.Bool
	h := newScreeningReadsHarness(t, &down)
	bankID, bank := h.partner("某银行", "bank_credit")
	id := doneScreening(t, h, bank)
	for _, path := range []string{"/v1/screenings/" + id, "/v1/screenings/" + id + "/events", "/v1/screenings/" + id + "/results",
		"/v1/screenings/" + id + "/results?format=csv", "/v1/webhook/deliveries"} {
		if res := h.do(http.MethodGet, path, bank, "", nil); res.Status != http.StatusOK {
			t.Fatalf("partner %s: %d %s", path, res.Status, res.Body)
		}
	}
	for _, act := range []service.Act{service.ActScreeningRead, service.ActScreeningResultsRead, service.ActDeliveriesListed} {
		if n := len(h.readActs(act)); n != 0 {
			t.Fatalf("a partner's read of its own job or deliveries was recorded: %d %s", n, act)
		}
	}

	aud := h.auditor()
	if res := h.do(http.MethodGet, "/v1/screenings/"+id, aud, "", nil); res.Status != http.StatusOK {
		t.Fatalf("auditor job: %d %s", res.Status, res.Body)
	}
	acts := h.readActs(service.ActScreeningRead)
	if len(acts) != 1 || acts[0].Target != id || acts[0].Details["screening_id"] != id || acts[0].Details["partner"] != bankID ||
		acts[0].Details["via"] != "GET /v1/screenings/:id" || acts[0].Details["actor_role"] != "auditor" {
		t.Fatalf("screening_read acts: %+v", acts)
	}
	if res := h.do(http.MethodGet, "/v1/screenings/"+id+"/events", aud, "", nil); res.Status != http.StatusOK {
		t.Fatalf("auditor events: %d %s", res.Status, res.Body)
	}
	if acts := h.readActs(service.ActScreeningRead); len(acts) != 2 || acts[1].Details["via"] != "GET /v1/screenings/:id/events" {
		t.Fatalf("screening_read acts after the events: %+v", acts)
	}

	for i, q := range []string{"", "?format=csv"} {
		res := h.do(http.MethodGet, "/v1/screenings/"+id+"/results"+q, h.adminTok, "", nil)
		if res.Status != http.StatusOK || !strings.Contains(string(res.Body), readsPerson) {
			t.Fatalf("admin results%s: %d %s", q, res.Status, res.Body)
		}
		acts := h.readActs(service.ActScreeningResultsRead)
		if len(acts) != i+1 || acts[i].Target != id || acts[i].Actor != adminID || acts[i].Details["partner"] != bankID ||
			acts[i].Details["record_id"] != id || acts[i].Details["via"] != "GET /v1/screenings/:id/results" {
			t.Fatalf("screening_results_read acts after results%s: %+v", q, acts)
		}
	}

	if res := h.doJSON(http.MethodGet, "/v1/admin/deliveries?partner="+bankID+"&state=dead", aud, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor deliveries: %d %s", res.Status, res.Body)
	}
	acts = h.readActs(service.ActDeliveriesListed)
	if len(acts) != 1 || acts[0].Details["partner"] != bankID || acts[0].Details["state"] != "dead" || acts[0].Details["count"] != float64(0) ||
		acts[0].Details["via"] != "GET /v1/admin/deliveries" || acts[0].Details["actor_role"] != "auditor" {
		t.Fatalf("deliveries_listed acts: %+v", acts)
	}

	// No act names a subject of the file.
	for _, act := range []service.Act{service.ActScreeningRead, service.ActScreeningResultsRead, service.ActDeliveriesListed} {
		for _, a := range h.readActs(act) {
			if strings.Contains(a.Target, readsPerson) || strings.Contains(strings.Join(detailStrings(a.Details), " "), readsPerson) {
				t.Fatalf("%s names a subject's ID number: %+v", act, a)
			}
		}
	}
}

// TestStaffScreeningReadFailsClosed: a staff read of a partner's job, its
// results or the delivery log whose act cannot be recorded is 503
// audit_unavailable, with nothing of the job's results; the partner's own
// reads, which record nothing, are answered.
func TestStaffScreeningReadFailsClosed(t *testing.T) {
	var down atomic.Bool
	h := newScreeningReadsHarness(t, &down)
	_, bank := h.partner("某银行", "bank_credit")
	id := doneScreening(t, h, bank)
	aud := h.auditor()
	down.Store(true)
	for _, r := range []struct{ tok, path string }{
		{aud, "/v1/screenings/" + id},
		{aud, "/v1/screenings/" + id + "/events"},
		{aud, "/v1/screenings/" + id + "/results"},
		{h.adminTok, "/v1/screenings/" + id + "/results?format=csv"},
		{h.adminTok, "/v1/admin/deliveries"},
		{aud, "/v1/admin/deliveries?state=dead"},
	} {
		res := h.do(http.MethodGet, r.path, r.tok, "", nil)
		problemCode(t, res, http.StatusServiceUnavailable, "audit_unavailable")
		if strings.Contains(string(res.Body), readsPerson) || strings.Contains(string(res.Body), `"counts"`) {
			t.Fatalf("%s: the refusal shows the job: %s", r.path, res.Body)
		}
	}
	for _, path := range []string{"/v1/screenings/" + id, "/v1/screenings/" + id + "/results", "/v1/webhook/deliveries"} {
		if res := h.do(http.MethodGet, path, bank, "", nil); res.Status != http.StatusOK {
			t.Fatalf("partner %s with acts failing: %d %s", path, res.Status, res.Body)
		}
	}
	down.Store(false)
	if res := h.do(http.MethodGet, "/v1/screenings/"+id+"/results", aud, "", nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), readsPerson) {
		t.Fatalf("auditor results once the log is back: %d %s", res.Status, res.Body)
	}
}
