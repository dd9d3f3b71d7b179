package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// readsPerson is a resident ID number (personal data) a partner checks.
const readsPerson = "11010519491231002X"

// readsOnBothStores runs test over the gateway on SQLite and PostgreSQL.
func readsOnBothStores(t *testing.T, test func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, newHarness(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(t.Context(), testenv.FreshDatabase(t, "reads_acts"))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newHarness(t, func(c *harnessConfig) { c.store = st }))
	})
}

// readActs returns the acts of kind act in the log, in log order.
func (h *harness) readActs(act service.Act) []service.AuditBody {
	h.t.Helper()
	var out []service.AuditBody
	for _, a := range h.adminActs() {
		if a.Act == act {
			out = append(out, a)
		}
	}
	return out
}

// TestStaffReadsRecorded: an auditor's or administrator's read of a
// subject's data — a check, a receipt, an entry, a page of entries — is
// recorded as one act naming the reader, the records and the route, and
// shown by GET /v1/admin/acts; the acts name checks by id, never by the
// subject's ID number. A partner's read of its own check or receipt is not
// recorded, nor an administrator's of its own check.
func TestStaffReadsRecorded(t *testing.T) {
	readsOnBothStores(t, testStaffReadsRecorded)
}

func testStaffReadsRecorded(t *testing.T, h *harness) {
	_, bank := h.partner("某银行", "bank_credit")
	checkID := h.check(bank, readsPerson, "bank_credit")["check_id"].(string)
	if _, err := h.evidence.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	aud := h.auditor()

	// The partner's own reads leave no act.
	for _, path := range []string{"/v1/checks/" + checkID, "/v1/evidence/receipts/" + checkID} {
		if res := h.doJSON(http.MethodGet, path, bank, nil); res.Status != http.StatusOK {
			t.Fatalf("partner %s: %d %s", path, res.Status, res.Body)
		}
	}
	if n := len(h.readActs(service.ActCheckRead)) + len(h.readActs(service.ActReceiptRead)); n != 0 {
		t.Fatalf("a partner's read of its own check was recorded: %d acts", n)
	}

	// The auditor's read of the check: one check_read act.
	if res := h.doJSON(http.MethodGet, "/v1/checks/"+checkID, aud, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor check: %d %s", res.Status, res.Body)
	}
	acts := h.readActs(service.ActCheckRead)
	if len(acts) != 1 {
		t.Fatalf("check_read acts: %+v", acts)
	}
	a := acts[0]
	if a.Target != checkID || a.Details["check_id"] != checkID || a.Details["via"] != "GET /v1/checks/:id" ||
		a.Details["actor_role"] != "auditor" || a.Actor == "" || a.Actor == service.SystemActorID || a.At.IsZero() {
		t.Fatalf("check_read act: %+v", a)
	}
	auditorID := a.Actor

	// The administrator's read of the receipt: receipt_read.
	if res := h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+checkID, h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("admin receipt: %d %s", res.Status, res.Body)
	}
	acts = h.readActs(service.ActReceiptRead)
	if len(acts) != 1 || acts[0].Target != checkID || acts[0].Actor != adminID || acts[0].Details["kind"] != "check" ||
		acts[0].Details["via"] != "GET /v1/evidence/receipts/:id" {
		t.Fatalf("receipt_read acts: %+v", acts)
	}

	// Entries: by id and by subject.
	org := testenv.USCC(t, "91110000MA0077001")
	e := h.entry(org, "safety_production_blacklist", time.Now().AddDate(0, -1, 0), nil)
	entryID := e["id"].(string)
	if res := h.doJSON(http.MethodGet, "/v1/admin/entries/"+entryID, h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("entry: %d %s", res.Status, res.Body)
	}
	acts = h.readActs(service.ActEntryRead)
	if len(acts) != 1 || acts[0].Target != entryID || acts[0].Details["via"] != "GET /v1/admin/entries/:id" || acts[0].Actor != adminID {
		t.Fatalf("entry_read acts: %+v", acts)
	}
	if res := h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+org, h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("entries by subject: %d %s", res.Status, res.Body)
	}
	acts = h.readActs(service.ActEntriesListed)
	if len(acts) != 1 || acts[0].Details["subject_id"] != org || acts[0].Details["count"] != float64(1) ||
		!slices.Equal(anyStrings(acts[0].Details["entry_ids"]), []string{entryID}) || acts[0].Details["via"] != "GET /v1/admin/entries" {
		t.Fatalf("entries_listed acts: %+v", acts)
	}

	// Proceedings and a subject's violation records: one act each, naming the route.
	if res := h.doJSON(http.MethodGet, "/v1/admin/objections", aud, nil); res.Status != http.StatusOK {
		t.Fatalf("objections: %d %s", res.Status, res.Body)
	}
	if acts := h.readActs(service.ActProceedingsListed); len(acts) != 1 || acts[0].Details["via"] != "GET /v1/admin/objections" || acts[0].Actor != auditorID {
		t.Fatalf("proceedings_listed acts: %+v", acts)
	}
	if res := h.doJSON(http.MethodGet, "/v1/admin/violations?subject_id="+org, h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("violations: %d %s", res.Status, res.Body)
	}
	if acts := h.readActs(service.ActViolationsRead); len(acts) != 1 || acts[0].Details["via"] != "GET /v1/admin/violations" || acts[0].Actor != adminID {
		t.Fatalf("violations_read acts: %+v", acts)
	}

	// The acts list shows the new kinds, with who read.
	res := h.doJSON(http.MethodGet, "/v1/admin/acts?limit=1000", aud, nil)
	for _, want := range []string{`"check_read"`, `"receipt_read"`, `"entry_read"`, `"entries_listed"`, `"actor":"` + auditorID + `"`} {
		if res.Status != http.StatusOK || !strings.Contains(string(res.Body), want) {
			t.Fatalf("acts lack %s: %d %s", want, res.Status, res.Body)
		}
	}
	// No read act writes the checked person's ID number.
	for _, act := range []service.Act{service.ActCheckRead, service.ActReceiptRead} {
		for _, a := range h.readActs(act) {
			if strings.Contains(a.Target, readsPerson) || strings.Contains(strings.Join(detailStrings(a.Details), " "), readsPerson) {
				t.Fatalf("%s names the subject's ID number: %+v", act, a)
			}
		}
	}

	// An administrator's read of its own check is its own evidence, as a
	// partner's is: not recorded.
	own := h.check(h.adminTok, readsPerson, "bank_credit")["check_id"].(string)
	if res := h.doJSON(http.MethodGet, "/v1/checks/"+own, h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("admin's own check: %d %s", res.Status, res.Body)
	}
	if n := len(h.readActs(service.ActCheckRead)); n != 1 {
		t.Fatalf("an administrator's read of its own check was recorded: %d acts", n)
	}

	// A read that finds nothing shows nothing and records nothing.
	problemCode(t, h.doJSON(http.MethodGet, "/v1/checks/no-such-check", aud, nil), http.StatusNotFound, "not_found")
	if n := len(h.readActs(service.ActCheckRead)); n != 1 {
		t.Fatalf("a check not found was recorded as read: %d acts", n)
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func detailStrings(d map[string]any) []string {
	var out []string
	for k, v := range d {
		s, _ := v.(string)
		out = append(out, k+"="+s)
	}
	return out
}

// adminCommitsFail is the harness's store whose commits of administrative
// records fail while down is set: checks are still recorded, acts are not.
type adminCommitsFail struct {
	service.Store
	down *atomic.Bool
}

func (c adminCommitsFail) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	if c.down.Load() {
		for _, r := range recs {
			if r.Kind == evidence.KindAdmin {
				return 0, errors.New("connection refused")
			}
		}
	}
	return c.Store.AppendBatch(ctx, recs)
}

// TestStaffReadFailsClosed: a staff read whose act cannot be recorded is
// not answered (503 audit_unavailable, as the auditors' search is), and
// nothing of the record leaves; a partner's read of its own check is
// answered, since it records nothing.
func TestStaffReadFailsClosed(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return adminCommitsFail{Store: st, down: &down} }
	})
	_, bank := h.partner("某银行", "bank_credit")
	checkID := h.check(bank, readsPerson, "bank_credit")["check_id"].(string)
	org := testenv.USCC(t, "91110000MA0077002")
	entryID := h.entry(org, "safety_production_blacklist", time.Now().AddDate(0, -1, 0), nil)["id"].(string)
	if _, err := h.evidence.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	aud := h.auditor()
	down.Store(true)
	for _, r := range []struct{ tok, path string }{
		{aud, "/v1/checks/" + checkID},
		{h.adminTok, "/v1/checks/" + checkID},
		{aud, "/v1/evidence/receipts/" + checkID},
		{h.adminTok, "/v1/admin/entries/" + entryID},
		{h.adminTok, "/v1/admin/entries?" + url.Values{"subject_id": {org}}.Encode()},
	} {
		res := h.doJSON(http.MethodGet, r.path, r.tok, nil)
		problemCode(t, res, http.StatusServiceUnavailable, "audit_unavailable")
		if strings.Contains(string(res.Body), readsPerson) || strings.Contains(string(res.Body), entryID) && !strings.Contains(r.path, entryID) {
			t.Fatalf("%s: the refusal shows the record: %s", r.path, res.Body)
		}
	}
	if res := h.doJSON(http.MethodGet, "/v1/checks/"+checkID, bank, nil); res.Status != http.StatusOK {
		t.Fatalf("partner's own check with acts failing: %d %s", res.Status, res.Body)
	}
	down.Store(false)
	if res := h.doJSON(http.MethodGet, "/v1/checks/"+checkID, aud, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor check once the log is back: %d %s", res.Status, res.Body)
	}
}
