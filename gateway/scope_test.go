package gateway_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// scopeTestYAML adds to the bundled catalogue a measure scoped to a region
// and a red-list measure granted by eligibility, with ids of their own.
const scopeTestYAML = `
regions:
  - {code: "650100", name: 乌鲁木齐市}
industries:
  - {id: test_coal_mining, name: 煤矿(测试)}
measures:
  - {id: test-local-procurement, list: safety_production_blacklist, actions: [government_procurement], effect: prohibit,
     mandatory: true, applies_to: [organization], text: 测试措施, legal_basis: 测试, authority: 乌鲁木齐市, source: test,
     scope: {regions: ["650100"], source: test 乌鲁木齐市}}
  - {id: test-green-channel, list: honest_exemplar_redlist, actions: [tax_incentive], effect: incentive,
     mandatory: false, applies_to: [organization], text: 绿色通道测试, legal_basis: 测试, authority: 部, source: test,
     eligibility: {clean_record_years: 3, source: test 连续三年无不良信用记录}}
`

// withScopeCatalog runs the harness on the bundled catalogue plus
// scopeTestYAML.
func withScopeCatalog(t *testing.T) harnessOption {
	t.Helper()
	cat := testenv.CatalogWith(t, scopeTestYAML)
	return func(hc *harnessConfig) { hc.catalog = cat }
}

// measureIn returns the measure with id in an answer's measures.
func measureIn(t *testing.T, answer map[string]any, id string) map[string]any {
	t.Helper()
	ms, _ := answer["measures"].([]any)
	for _, m := range ms {
		if mm, _ := m.(map[string]any); mm["id"] == id {
			return mm
		}
	}
	t.Fatalf("measure %s not in %v", id, answer["measures"])
	return nil
}

// Every exchange is validated against openapi.yaml by the harness: the
// new fields of checks, batches, partners, the catalogue and the subject
// status, and the new problem codes.
func TestHTTPScopeAndValidAt(t *testing.T) {
	h := newHarness(t, withScopeCatalog(t))
	const org = "914403001922038216"
	clean := "91110000MA01ABCDEX"
	published := time.Now().UTC().AddDate(0, 0, -30).Truncate(time.Second)
	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, map[string]any{
		"subject_id": org, "list": "safety_production_blacklist", "originating_department": "应急管理局",
		"reason": "发生较大生产安全责任事故", "legal_basis": "《安全生产法》",
		"decided_at": published.Add(-24 * time.Hour), "published_at": published,
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}

	// The catalogue shows the vocabularies a context may name.
	cat := h.doJSON(http.MethodGet, "/v1/catalog", h.adminTok, nil).json(t)
	if rs, _ := cat["regions"].([]any); len(rs) == 0 {
		t.Fatalf("catalogue without regions: %v", cat["regions"])
	}

	check := func(tok string, body map[string]any) response {
		t.Helper()
		body["subject"] = map[string]any{"id": org}
		if body["action"] == nil {
			body["action"] = "government_procurement"
		}
		return h.doJSON(http.MethodPost, "/v1/checks", tok, body)
	}
	// An administrator names a region: the local measure applies there …
	a := check(h.adminTok, map[string]any{"context": map[string]any{"region": "650102"}})
	if a.Status != http.StatusOK {
		t.Fatalf("check in 650102: %d %s", a.Status, a.Body)
	}
	am := a.json(t)
	if m := measureIn(t, am, "test-local-procurement"); m["status"] != "applied" || m["scope"] == nil {
		t.Fatalf("in region: %v", m)
	}
	if ctx, _ := am["context"].(map[string]any); ctx["region"] != "650102" {
		t.Fatalf("context not recorded: %v", am["context"])
	}
	// … and is listed as not applicable elsewhere, with the reason.
	am = check(h.adminTok, map[string]any{"context": map[string]any{"region": "440300", "industry": "test_coal_mining"}}).json(t)
	if m := measureIn(t, am, "test-local-procurement"); m["status"] != "not_applicable" || m["reason"] == "" {
		t.Fatalf("out of region: %v", m)
	}
	// The check as recorded is the check as answered.
	got := h.doJSON(http.MethodGet, "/v1/checks/"+am["check_id"].(string), h.adminTok, nil).json(t)
	if m := measureIn(t, got, "test-local-procurement"); m["status"] != "not_applicable" {
		t.Fatalf("recorded: %v", m)
	}

	// Bad contexts.
	for _, tc := range []struct {
		ctx   map[string]any
		code  string
		field string
	}{
		{map[string]any{"region": "4403"}, "invalid_region", "context.region"},
		{map[string]any{"region": "440012"}, "invalid_region", "context.region"},
		{map[string]any{"industry": "fishing"}, "unknown_industry", "context.industry"},
		{map[string]any{"subject_type": "nope"}, "unknown_subject_type", "context.subject_type"},
		{map[string]any{"employer_type": "nope"}, "unknown_employer_type", "context.employer_type"},
	} {
		p := problemCode(t, check(h.adminTok, map[string]any{"context": tc.ctx}), http.StatusBadRequest, tc.code)
		if p["field"] != tc.field {
			t.Errorf("%v: field %v, want %s", tc.ctx, p["field"], tc.field)
		}
	}
	problemCode(t, check(h.adminTok, map[string]any{"context": map[string]any{"regoin": "440300"}}), http.StatusBadRequest, "invalid_json")

	// A partner registered without a region gets national measures only
	// and may not name one.
	_, ptok := h.partner("某市公共资源交易中心", "government_procurement", "tax_incentive")
	problemCode(t, check(ptok, map[string]any{"context": map[string]any{"region": "650100"}}), http.StatusForbidden, "region_outside_jurisdiction")
	if m := measureIn(t, check(ptok, map[string]any{}).json(t), "test-local-procurement"); m["status"] != "not_applicable" {
		t.Fatalf("partner without region: %v", m)
	}

	// valid_at: partners may ask about a past time; not about the future.
	before := published.Add(-48 * time.Hour)
	am = check(ptok, map[string]any{"valid_at": before}).json(t)
	if am["valid_at"] == nil || len(am["entries"].([]any)) != 0 {
		t.Fatalf("valid_at before the listing: %v", am)
	}
	am = check(ptok, map[string]any{"valid_at": published.Add(time.Hour)}).json(t)
	if len(am["entries"].([]any)) != 1 || am["outcome"] == "clear" {
		t.Fatalf("valid_at after the listing: %v", am)
	}
	p := problemCode(t, check(ptok, map[string]any{"valid_at": time.Now().Add(time.Hour)}), http.StatusBadRequest, "invalid_valid_at")
	if p["field"] != "valid_at" {
		t.Fatalf("field %v", p["field"])
	}
	// Both times: what credgate knew before the entry was recorded.
	am = check(h.adminTok, map[string]any{"as_of": time.Now().Add(-time.Hour), "valid_at": published.Add(time.Hour)}).json(t)
	if len(am["entries"].([]any)) != 0 || am["as_of"] == nil || am["valid_at"] == nil {
		t.Fatalf("as_of before the record, valid_at after the listing: %v", am)
	}

	// Eligibility: a clean subject gets the measure without an entry.
	res = h.doJSON(http.MethodPost, "/v1/checks", ptok, map[string]any{"subject": map[string]any{"id": clean}, "action": "tax_incentive"})
	if res.Status != http.StatusOK {
		t.Fatalf("eligibility check: %d %s", res.Status, res.Body)
	}
	if m := measureIn(t, res.json(t), "test-green-channel"); m["basis"] != "eligibility" || m["entry_id"] != nil || m["status"] != "applied" {
		t.Fatalf("eligibility: %v", m)
	}

	// Batches take the same context and valid time.
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", h.adminTok, map[string]any{
		"subjects": []any{map[string]any{"id": org}, map[string]any{"id": clean}}, "action": "government_procurement",
		"context": map[string]any{"region": "650100"}, "valid_at": published.Add(time.Hour),
	})
	if res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	first := res.json(t)["results"].([]any)[0].(map[string]any)["check"].(map[string]any)
	if m := measureIn(t, first, "test-local-procurement"); m["status"] != "applied" || first["valid_at"] == nil {
		t.Fatalf("batch: %v", first)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", ptok, map[string]any{
		"subjects": []any{map[string]any{"id": org}}, "action": "government_procurement", "context": map[string]any{"region": "650100"},
	})
	problemCode(t, res, http.StatusForbidden, "region_outside_jurisdiction")

	// The subject status at a valid time, in a region.
	q := url.Values{"valid_at": {published.Add(time.Hour).Format(time.RFC3339)}, "region": {"650100"}}
	res = h.doJSON(http.MethodGet, "/v1/subjects/"+org+"/status?"+q.Encode(), h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status: %d %s", res.Status, res.Body)
	}
	st := res.json(t)
	if st["valid_at"] == nil || st["context"].(map[string]any)["region"] != "650100" {
		t.Fatalf("status: %v", st)
	}
	p = problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+org+"/status?valid_at=yesterday", h.adminTok, nil), http.StatusBadRequest, "invalid_valid_at")
	if p["field"] != "valid_at" {
		t.Fatalf("field %v", p["field"])
	}
	p = problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+org+"/status?region=12", h.adminTok, nil), http.StatusBadRequest, "invalid_region")
	if p["field"] != "region" {
		t.Fatalf("field %v", p["field"])
	}
}

// A partner is registered with its jurisdiction; its checks get the
// measures of that region and may narrow it.
func TestHTTPPartnerRegion(t *testing.T) {
	h := newHarness(t, withScopeCatalog(t))
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "乌鲁木齐市公共资源交易中心",
		"actions": []string{"government_procurement"}, "region": "650100"})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	m := res.json(t)
	if m["region"] != "650100" {
		t.Fatalf("created without its region: %s", res.Body)
	}
	id, secret := m["client_id"].(string), m["client_secret"].(string)
	for _, body := range []map[string]any{
		{"name": "x", "actions": []string{"bank_credit"}, "region": "65"},
		{"name": "x", "actions": []string{"bank_credit"}, "region": "000100"},
	} {
		p := problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, body), http.StatusBadRequest, "invalid_region")
		if p["field"] != "region" {
			t.Errorf("field %v", p["field"])
		}
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "x", "role": "auditor", "region": "650100"}),
		http.StatusBadRequest, "invalid_partner")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{"region": "6501"}), http.StatusBadRequest, "invalid_region")

	res = h.doJSON(http.MethodGet, "/v1/admin/partners/"+id, h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}
	if res.json(t)["region"] != "650100" {
		t.Fatalf("region after a store round trip = %v, want 650100", res.json(t)["region"])
	}
	tok := h.token(id, secret)
	const org = "914403001922038216"
	published := time.Now().UTC().AddDate(0, 0, -30).Truncate(time.Second)
	if r := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, map[string]any{
		"subject_id": org, "list": "safety_production_blacklist", "originating_department": "应急管理局",
		"reason": "事故", "legal_basis": "《安全生产法》", "decided_at": published, "published_at": published,
	}); r.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", r.Status, r.Body)
	}
	am := h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]any{"id": org}, "action": "government_procurement"}).json(t)
	if measureIn(t, am, "test-local-procurement")["status"] != "applied" {
		t.Fatalf("registered region: %v", am)
	}
	am = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]any{"id": org}, "action": "government_procurement",
		"context": map[string]any{"region": "650102"}}).json(t)
	if am["context"].(map[string]any)["region"] != "650102" {
		t.Fatalf("narrowed: %v", am["context"])
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]any{"id": org},
		"action": "government_procurement", "context": map[string]any{"region": "440300"}}), http.StatusForbidden, "region_outside_jurisdiction")
}
