package gateway_test

import (
	"net/http"
	"testing"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// namedSpool is spoolReporter naming its log, so that the gateway can
// tell the records waiting in the spool.
type namedSpool struct{ spoolReporter }

func (r namedSpool) SpoolingLog() *service.SpoolingLog { return *r.sl }

// TestReceiptPending: the receipt (and the check) of an answer whose
// record waits in this replica's spool is 404 receipt_pending with
// Retry-After, not not_found, to its partner and to staff; another
// partner, and an id nobody answered, still get not_found; once the spool
// is integrated the receipt is served.
func TestReceiptPending(t *testing.T) {
	h, down, spool := spoolingHarness(t, testenv.Signer(t, testEvidenceOrigin), func(r spoolReporter) gateway.SpoolReporter { return namedSpool{r} })
	_, tok := h.partner("bank", "bank_credit")
	_, other := h.partner("other", "bank_credit")
	down.Store(true)
	id := h.check(tok, testenv.USCC(t, "91110000MA0000401"), "bank_credit")["check_id"].(string)
	down.Store(false)

	for _, path := range []string{"/v1/evidence/receipts/" + id, "/v1/checks/" + id} {
		res := h.doJSON(http.MethodGet, path, tok, nil)
		problemCode(t, res, http.StatusNotFound, "receipt_pending")
		if res.Header.Get("Retry-After") != "1" {
			t.Fatalf("%s: Retry-After %q", path, res.Header.Get("Retry-After"))
		}
		// Another partner is not told the record exists.
		res = h.doJSON(http.MethodGet, path, other, nil)
		problemCode(t, res, http.StatusNotFound, "not_found")
		if res.Header.Get("Retry-After") != "" {
			t.Fatalf("%s: not_found with Retry-After %q", path, res.Header.Get("Retry-After"))
		}
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+id, h.adminTok, nil), http.StatusNotFound, "receipt_pending")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/receipts/0190c4a4-0000-7000-8000-000000000000", tok, nil), http.StatusNotFound, "not_found")

	if n, err := spool().IntegrateOnce(t.Context()); err != nil || n != 1 {
		t.Fatalf("integrate: %d %v", n, err)
	}
	if _, err := h.evidence.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+id, tok, nil); res.Status != http.StatusOK {
		t.Fatalf("receipt after integration: %d %s", res.Status, res.Body)
	}
}
