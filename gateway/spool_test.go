package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// commitsFail is the harness's store whose evidence commits fail while
// down is set: the log's database is away for writes.
type commitsFail struct {
	service.Store
	down *atomic.Bool
}

func (c commitsFail) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	if c.down.Load() {
		return 0, errors.New("connection refused")
	}
	return c.Store.AppendBatch(ctx, recs)
}

// TestSpooledAnswers: with evidence commits failing, a check and a batch
// are answered with spooled receipts (validated against openapi.yaml, as
// every exchange here), /readyz stays ready and shows the spool, /metrics
// counts it; once integrated, the full receipt is served and verifies.
func TestSpooledAnswers(t *testing.T) {
	signer := testenv.Signer(t, testEvidenceOrigin)
	h, down, spool := spoolingHarness(t, signer, func(r spoolReporter) gateway.SpoolReporter { return r })
	_, tok := h.partner("bank", "bank_credit")
	down.Store(true)

	subject := testenv.USCC(t, "91110000MA0000301")
	res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(subject, "bank_credit"))
	if res.Status != http.StatusOK {
		t.Fatalf("check with commits failing: %d %s", res.Status, res.Body)
	}
	var ans struct {
		CheckID string              `json:"check_id"`
		Receipt service.ReceiptView `json:"receipt"`
	}
	if err := json.Unmarshal(res.Body, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Receipt.State != service.ReceiptSpooled || ans.Receipt.Promise == nil || strings.Contains(string(res.Body), `"log_index"`) {
		t.Fatalf("spooled answer: %s", res.Body)
	}
	vs, err := evidence.Verifiers(signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyPromise(*ans.Receipt.Promise, vs); err != nil {
		t.Fatalf("the answer's promise: %v", err)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit",
		"subjects": []map[string]string{{"id": testenv.USCC(t, "91110000MA0000302")}, {"id": "bad"}}})
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"state":"spooled"`) {
		t.Fatalf("batch with commits failing: %d %s", res.Status, res.Body)
	}
	// Not in the log yet: no receipt.
	problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+ans.CheckID, tok, nil), http.StatusNotFound, "not_found")

	res = h.doJSON(http.MethodGet, "/readyz", "", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"state":"integrating"`) || !strings.Contains(string(res.Body), `"pending":2`) {
		t.Fatalf("readyz with a spool waiting: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodGet, "/metrics", "", nil)
	for _, m := range []string{"credgate_spool_pending 2", "credgate_spool_appended_total 2", "credgate_spool_integrated_total 0"} {
		if !strings.Contains(string(res.Body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}

	down.Store(false)
	if n, err := spool().IntegrateOnce(t.Context()); err != nil || n != 2 {
		t.Fatalf("integrate: %d %v", n, err)
	}
	if _, err := h.evidence.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	res = h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+ans.CheckID, tok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("receipt after integration: %d %s", res.Status, res.Body)
	}
	r, err := evidence.ParseReceipt(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.RecordHash != ans.Receipt.RecordHash {
		t.Fatal("the integrated record is not the promised one")
	}
	res = h.doJSON(http.MethodGet, "/readyz", "", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"state":"empty"`) {
		t.Fatalf("readyz after integration: %d %s", res.Status, res.Body)
	}
}

// spoolReporter reads the spooling log the harness builds after the
// gateway options are given.
// spoolingHarness is a harness whose checks go through a spooling log,
// with evidence commits failing while down is set; report gives the
// gateway its view of the spool, and signer signs its promises. spool
// returns the log once built.
func spoolingHarness(t *testing.T, signer *evidence.Signer, report func(spoolReporter) gateway.SpoolReporter) (h *harness, down *atomic.Bool, spool func() *service.SpoolingLog) {
	t.Helper()
	down = new(atomic.Bool)
	sp, err := evidence.OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	var sl *service.SpoolingLog
	h = newHarness(t, func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return commitsFail{Store: st, down: down} }
		hc.checkLog = func(app *evidence.Appender, st service.Store) service.EvidenceLog {
			sl = service.NewSpoolingLog(app, sp, signer, st)
			return sl
		}
		hc.gateway = append(hc.gateway, gateway.WithSpool(report(spoolReporter{&sl}), "sqlite"))
	})
	return h, down, func() *service.SpoolingLog { return sl }
}

type spoolReporter struct{ sl **service.SpoolingLog }

func (r spoolReporter) SpoolStatus() service.SpoolStatus { return (*r.sl).SpoolStatus() }

// fixedSpool reports one spool status.
type fixedSpool service.SpoolStatus

func (f fixedSpool) SpoolStatus() service.SpoolStatus { return service.SpoolStatus(f) }

// TestSpoolQuarantineMetric: /metrics shows how many spooled records the
// log's database refused and the spool set aside, so that an alert can
// send an operator to the quarantine directory.
func TestSpoolQuarantineMetric(t *testing.T) {
	h := newHarness(t, func(hc *harnessConfig) {
		hc.gateway = append(hc.gateway, gateway.WithSpool(fixedSpool{State: service.SpoolIntegrating, Quarantined: 3}, "sqlite"))
	})
	res := h.doJSON(http.MethodGet, "/metrics", "", nil)
	if !strings.Contains(string(res.Body), "\ncredgate_spool_quarantined 3\n") {
		t.Errorf("/metrics lacks credgate_spool_quarantined 3:\n%s", res.Body)
	}
}
