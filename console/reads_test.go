package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// readActs returns the acts of kind act, in log order.
func (h *harness) readActs(act service.Act) []service.AuditBody {
	h.t.Helper()
	acts, err := h.acts.List(context.Background(), -1, service.MaxPage)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []service.AuditBody
	for _, a := range acts {
		if a.Body != nil && a.Body.Act == act {
			out = append(out, *a.Body)
		}
	}
	return out
}

// TestConsoleReadsRecorded: the console's pages that show a subject's
// data record the read as the API does — the entry page (entry_read), the
// entries list and its filter by subject (entries_listed), a record
// looked up on the evidence page (one check_read for the check and its
// receipt) and a receipt downloaded (receipt_read) — with the signed-in
// user as the actor and the console route it came by.
func TestConsoleReadsRecorded(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	org := testenv.USCC(t, "91110000MA0078001")
	entryID := h.entryOn("urban_management_black", org, nil)
	partnerID, _ := h.newPartner(service.RolePartner)
	ans, err := h.checker.Check(ctx, service.Caller{ClientID: partnerID, Role: service.RolePartner, Actions: []string{"government_procurement"}},
		service.CheckRequest{Subject: org, Action: "government_procurement"})
	if err != nil {
		t.Fatal(err)
	}
	audID, audSecret := h.newPartner(service.RoleAuditor)
	b, token := h.signedIn(audID, audSecret)

	if p := b.get("/console/entries/" + entryID); p.status != http.StatusOK {
		t.Fatalf("entry page: %d", p.status)
	}
	acts := h.readActs(service.ActEntryRead)
	if len(acts) != 1 || acts[0].Target != entryID || acts[0].Actor != audID || acts[0].Details["via"] != "console GET /console/entries/{id}" {
		t.Fatalf("entry_read acts: %+v", acts)
	}
	if p := b.post("/console/entries/filter", url.Values{"csrf": {token}, "subject_id": {org}}); p.status != http.StatusOK {
		t.Fatalf("entries filtered by subject: %d", p.status)
	}
	acts = h.readActs(service.ActEntriesListed)
	if len(acts) != 1 || acts[0].Details["subject_id"] != org || acts[0].Actor != audID || acts[0].Details["via"] != "console POST /console/entries/filter" {
		t.Fatalf("entries_listed acts: %+v", acts)
	}

	if p := b.get("/console/evidence?check=" + url.QueryEscape(ans.CheckID)); p.status != http.StatusOK {
		t.Fatalf("evidence page: %d", p.status)
	}
	acts = h.readActs(service.ActCheckRead)
	if len(acts) != 1 || acts[0].Target != ans.CheckID || acts[0].Details["receipt"] != true || acts[0].Details["via"] != "console GET /console/evidence" {
		t.Fatalf("check_read acts: %+v", acts)
	}
	if n := len(h.readActs(service.ActReceiptRead)); n != 0 {
		t.Fatalf("the evidence page recorded %d receipt reads beside its check read", n)
	}
	if p := b.get("/console/evidence/receipts/" + ans.CheckID); p.status != http.StatusOK {
		t.Fatalf("receipt download: %d", p.status)
	}
	if acts = h.readActs(service.ActReceiptRead); len(acts) != 1 || acts[0].Target != ans.CheckID || acts[0].Actor != audID {
		t.Fatalf("receipt_read acts: %+v", acts)
	}
}
