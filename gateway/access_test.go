package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// credOf reads the credential claim of a token (unverified: the test
// made it).
func credOf(t *testing.T, tok string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	cred, _ := claims["cred"].(string)
	if cred == "" {
		t.Fatalf("token without cred claim: %v", claims)
	}
	return cred
}

func withGateway(opts ...gateway.Option) harnessOption {
	return func(c *harnessConfig) { c.gateway = append(c.gateway, opts...) }
}

func withTokens(opts ...access.Option) harnessOption {
	return func(c *harnessConfig) { c.tokens = append(c.tokens, opts...) }
}

func withLimiter(t *testing.T, rate string, opts ...gateway.RateLimitOption) harnessOption {
	t.Helper()
	l, err := gateway.NewRateLimiter(rate, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return withGateway(gateway.WithRateLimiter(l))
}

func (h *harness) tokenForm(remote string, form url.Values) response {
	h.t.Helper()
	return h.doFrom(remote, http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
}

func secretForm(id, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
}

// createPartner registers a partner with the given body fields and returns
// the answer.
func (h *harness) createPartner(body map[string]any) map[string]any {
	h.t.Helper()
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, body)
	if res.Status != http.StatusCreated {
		h.t.Fatalf("create partner: %d %s", res.Status, res.Body)
	}
	return res.json(h.t)
}

func checkBody(subject, action string) map[string]any {
	return map[string]any{"subject": map[string]string{"id": subject}, "action": action}
}

// adminActs returns the bodies of the administrative records in the
// evidence log, in log order.
func (h *harness) adminActs() []service.AuditBody {
	h.t.Helper()
	ctx := context.Background()
	head, err := h.store.TreeHead(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	recs, err := h.store.RecordsBetween(ctx, 0, head.Size)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []service.AuditBody
	for _, r := range recs {
		if r.Kind != evidence.KindAdmin {
			continue
		}
		var b service.AuditBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			h.t.Fatal(err)
		}
		if r.Partner != b.Actor {
			h.t.Errorf("record %s: partner %q but actor %q", r.ID, r.Partner, b.Actor)
		}
		out = append(out, b)
	}
	return out
}

func TestPartnerLifecycle(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0010001")
	created := h.createPartner(map[string]any{"name": "某市公共资源交易中心", "actions": []string{"public_tendering"}})
	id, secret := created["client_id"].(string), created["client_secret"].(string)
	if created["token_endpoint_auth_method"] != "client_secret_basic" || created["visibility"] != "standard" {
		t.Fatalf("created %v", created)
	}
	got := h.doJSON(http.MethodGet, "/v1/admin/partners/"+id, h.adminTok, nil)
	if got.Status != http.StatusOK || bytes.Contains(got.Body, []byte(secret)) || bytes.Contains(got.Body, []byte("argon2")) ||
		bytes.Contains(got.Body, []byte(`"client_secret":`)) {
		t.Fatalf("show partner leaks its secret: %s", got.Body)
	}
	tok := h.token(id, secret)
	check := func(tok string) response {
		return h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "public_tendering"))
	}
	if res := check(tok); res.Status != http.StatusOK {
		t.Fatalf("check: %d %s", res.Status, res.Body)
	}

	// Listing pages by client id.
	h.createPartner(map[string]any{"name": "某银行", "actions": []string{"bank_credit"}})
	page := h.doJSON(http.MethodGet, "/v1/admin/partners?limit=2", h.adminTok, nil).json(t)
	if len(page["partners"].([]any)) != 2 || page["next"] == nil {
		t.Fatalf("first page %v", page)
	}
	rest := h.doJSON(http.MethodGet, "/v1/admin/partners?limit=2&after="+url.QueryEscape(page["next"].(string)), h.adminTok, nil).json(t)
	if n := len(rest["partners"].([]any)); n != 1 {
		t.Fatalf("second page has %d partners, want 1 (3 in all)", n)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/partners?limit=0", h.adminTok, nil), http.StatusBadRequest, "invalid_query")
	// A parameter given twice is refused, whichever value would pass.
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/partners?limit=2&limit=2000", h.adminTok, nil), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/partners?limit=2000&limit=2", h.adminTok, nil), http.StatusBadRequest, "invalid_query")

	// Scope changes apply to the next request.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "government_procurement")), http.StatusForbidden, "action_not_allowed")
	res := h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{
		"actions": []string{"public_tendering", "government_procurement"}, "rate_limit": "100-m"})
	if res.Status != http.StatusOK || res.json(t)["rate_limit"] != "100-M" {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "government_procurement")); res.Status != http.StatusOK {
		t.Fatalf("after adding the action: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{}), http.StatusBadRequest, "invalid_partner")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{"actions": []string{}}), http.StatusBadRequest, "invalid_partner")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{"role": "admin"}), http.StatusBadRequest, "invalid_json")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/ghost", h.adminTok, map[string]any{"name": "x"}), http.StatusNotFound, "not_found")

	// Rotation with the default overlap: both secrets and the old token work.
	res = h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", res.Status, res.Body)
	}
	rotated := res.json(t)
	secret2 := rotated["client_secret"].(string)
	creds := rotated["credentials"].([]any)
	if len(creds) != 2 || creds[1].(map[string]any)["expires_at"] == nil || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotated %s", res.Body)
	}
	tok2 := h.token(id, secret2)
	h.token(id, secret)
	if res := check(tok); res.Status != http.StatusOK {
		t.Fatalf("old token during the overlap: %d", res.Status)
	}
	// Rotation without overlap (a leaked secret): the old secret and every
	// token issued for it stop at once.
	res = h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, map[string]any{"overlap_seconds": 0})
	if res.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", res.Status, res.Body)
	}
	secret3 := res.json(t)["client_secret"].(string)
	problemCode(t, check(tok), http.StatusUnauthorized, "invalid_token")
	problemCode(t, check(tok2), http.StatusUnauthorized, "invalid_token")
	problemCode(t, h.tokenForm("192.0.2.9:1", secretForm(id, secret2)), http.StatusUnauthorized, "invalid_client")
	tok3 := h.token(id, secret3)
	if res := check(tok3); res.Status != http.StatusOK {
		t.Fatalf("new token: %d", res.Status)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, map[string]any{"overlap_seconds": -1}),
		http.StatusBadRequest, "invalid_partner")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, map[string]any{"overlap": "1h"}),
		http.StatusBadRequest, "invalid_json")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":frobnicate", h.adminTok, nil), http.StatusNotFound, "not_found")

	// Revocation: tokens and credentials stop; the partner stays, read-only.
	res = h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":revoke", h.adminTok, nil)
	if res.Status != http.StatusOK || res.json(t)["status"] != "revoked" {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	problemCode(t, check(tok3), http.StatusUnauthorized, "invalid_token")
	problemCode(t, h.tokenForm("192.0.2.9:1", secretForm(id, secret3)), http.StatusUnauthorized, "invalid_client")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, nil), http.StatusConflict, "partner_revoked")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{"name": "x"}), http.StatusConflict, "partner_revoked")

	// Every act is in the evidence log, by the admin, without a secret.
	acts := h.adminActs()
	var seen []string
	for _, a := range acts {
		if a.Target == id {
			seen = append(seen, string(a.Act))
			if a.Actor != adminID || a.Details["actor_role"] != "admin" || a.At.IsZero() {
				t.Errorf("act %+v", a)
			}
		}
		raw, _ := json.Marshal(a)
		for _, s := range []string{secret, secret2, secret3, "argon2id"} {
			if bytes.Contains(raw, []byte(s)) {
				t.Fatalf("an audit record holds a secret: %s", raw)
			}
		}
	}
	want := "partner_created partner_updated partner_credential_rotated partner_credential_rotated partner_revoked"
	if strings.Join(seen, " ") != want {
		t.Fatalf("acts on %s: %v, want %s", id, seen, want)
	}
	if acts[0].Act != service.ActPartnerCreated || acts[0].Actor != service.SystemActorID || acts[0].Target != adminID {
		t.Fatalf("the bootstrap administrator's creation is not the first act: %+v", acts[0])
	}
}

func TestEntryActsInEvidence(t *testing.T) {
	h := newHarness(t)
	listed := testenv.USCC(t, "91440300MA5A00002")
	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(listed))
	if res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	if res := h.doJSON(http.MethodPatch, "/v1/admin/entries/"+id, h.adminTok, map[string]any{"legal_basis": "《安全生产法》第九十条"}); res.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+id+":revoke", h.adminTok, map[string]string{"reason": "复议撤销"}); res.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	csv := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n" +
		listed + ",safety_production_blacklist,应急管理部,事故,《安全生产法》,2026-01-01,2026-01-02\n"
	if res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(csv)); res.Status != http.StatusCreated {
		t.Fatalf("import: %d %s", res.Status, res.Body)
	}
	// A refused import is no act.
	problemCode(t, h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(csv+"x,y\n")), http.StatusUnprocessableEntity, "import_rejected")
	var seen []string
	for _, a := range h.adminActs() {
		if strings.HasPrefix(string(a.Act), "entr") {
			seen = append(seen, string(a.Act))
			if a.Actor != adminID || a.Details["subject_id"] != nil && a.Details["subject_id"] != listed {
				t.Errorf("act %+v", a)
			}
		}
	}
	if got := strings.Join(seen, " "); got != "entry_created entry_patched entry_revoked entries_imported" {
		t.Fatalf("entry acts %s", got)
	}
}

func TestAdminActsEndpoint(t *testing.T) {
	h := newHarness(t)
	created := h.createPartner(map[string]any{"name": "某银行", "actions": []string{"bank_credit"}})
	id := created["client_id"].(string)
	if res := h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":revoke", h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("revoke: %d", res.Status)
	}
	aud := h.createPartner(map[string]any{"name": "审计署", "role": "auditor"})
	audTok := h.token(aud["client_id"].(string), aud["client_secret"].(string))

	// The auditor pages through every act, in log order.
	var acts []map[string]any
	path := "/v1/admin/acts?limit=2"
	for range 10 {
		res := h.doJSON(http.MethodGet, path, audTok, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("acts: %d %s", res.Status, res.Body)
		}
		page := res.json(t)
		for _, a := range page["acts"].([]any) {
			acts = append(acts, a.(map[string]any))
		}
		next, ok := page["next"].(string)
		if !ok {
			break
		}
		path = "/v1/admin/acts?limit=2&after=" + next
	}
	var seen []string
	last := -1.0
	for _, a := range acts {
		if a["body"] != "intact" || a["log_index"].(float64) <= last {
			t.Fatalf("act %v", a)
		}
		last = a["log_index"].(float64)
		seen = append(seen, fmt.Sprintf("%s:%s", a["act"], a["actor"]))
	}
	want := "partner_created:credgate partner_created:admin partner_revoked:admin partner_created:admin"
	if strings.Join(seen, " ") != want {
		t.Fatalf("acts %v, want %s", seen, want)
	}
	if acts[2]["target"] != id || acts[2]["details"].(map[string]any)["name"] != "某银行" {
		t.Fatalf("revocation act %v", acts[2])
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/acts?after=x", audTok, nil), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/acts?limit=1001", audTok, nil), http.StatusBadRequest, "invalid_query")
	_, partnerTok := h.partner("另一伙伴", "bank_credit")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/acts", partnerTok, nil), http.StatusForbidden, "forbidden")
}

func TestVisibilityAndScopes(t *testing.T) {
	h := newHarness(t)
	org := testenv.USCC(t, "91350100MA0000003")
	person := "11010519491231002X"
	entry := blackEntry(org)
	entry["responsible_persons"] = []map[string]string{{"id": person, "role": "legal_representative"}}
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, entry); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	std := h.createPartner(map[string]any{"name": "某银行", "actions": []string{"bank_credit", "executive_appointment"}})
	stdTok := h.token(std["client_id"].(string), std["client_secret"].(string))
	full := h.createPartner(map[string]any{"name": "信用信息共享平台", "actions": []string{"bank_credit"}, "visibility": "full"})
	fullTok := h.token(full["client_id"].(string), full["client_secret"].(string))
	orgOnly := h.createPartner(map[string]any{"name": "公共资源交易平台", "actions": []string{"bank_credit"}, "subject_kinds": []string{"organization"}})
	orgTok := h.token(orgOnly["client_id"].(string), orgOnly["client_secret"].(string))

	// A bank sees the outcome, the measures for its action with their legal
	// basis, the entry's list and basis — not the department's case file,
	// and never the responsible persons of the organisation it checks.
	res := h.doJSON(http.MethodPost, "/v1/checks", stdTok, checkBody(org, "bank_credit"))
	if res.Status != http.StatusOK {
		t.Fatalf("check: %d %s", res.Status, res.Body)
	}
	ans := res.json(t)
	if ans["outcome"] == "clear" || len(ans["measures"].([]any)) == 0 {
		t.Fatalf("listed organisation: %s", res.Body)
	}
	for _, m := range ans["measures"].([]any) {
		if m.(map[string]any)["legal_basis"] == "" {
			t.Fatalf("measure without legal basis: %v", m)
		}
	}
	e := ans["entries"].([]any)[0].(map[string]any)
	if _, ok := e["reason"]; ok {
		t.Fatalf("standard visibility shows the reason: %v", e)
	}
	if _, ok := e["originating_department"]; ok {
		t.Fatalf("standard visibility shows the originating department: %v", e)
	}
	if e["legal_basis"] == "" || e["list"] != "safety_production_blacklist" {
		t.Fatalf("entry lacks list or basis: %v", e)
	}
	if bytes.Contains(res.Body, []byte(person)) {
		t.Fatalf("a check on an organisation shows its responsible person's ID: %s", res.Body)
	}
	// The evidence holds exactly what was answered.
	checkID := ans["check_id"].(string)
	rec, err := h.store.Record(context.Background(), checkID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Body, []byte(person)) || bytes.Contains(rec.Body, []byte("发生重大生产安全责任事故")) {
		t.Fatalf("the evidence holds more than was answered: %s", rec.Body)
	}

	// Full visibility adds the case.
	res = h.doJSON(http.MethodPost, "/v1/checks", fullTok, checkBody(org, "bank_credit"))
	e = res.json(t)["entries"].([]any)[0].(map[string]any)
	if e["reason"] != "发生重大生产安全责任事故" || e["originating_department"] != "应急管理部" {
		t.Fatalf("full visibility: %v", e)
	}
	if bytes.Contains(res.Body, []byte(person)) {
		t.Fatalf("full visibility shows the responsible person's ID: %s", res.Body)
	}

	// A person reached through the organisation sees which and in what role.
	res = h.doJSON(http.MethodPost, "/v1/checks", stdTok, checkBody(person, "executive_appointment"))
	if res.Status != http.StatusOK {
		t.Fatalf("person check: %d %s", res.Status, res.Body)
	}
	pe := res.json(t)["entries"].([]any)
	if len(pe) == 0 || pe[0].(map[string]any)["via"].(map[string]any)["organization"] != org ||
		pe[0].(map[string]any)["via"].(map[string]any)["role"] != "legal_representative" {
		t.Fatalf("person reached through the organisation: %s", res.Body)
	}

	// Subject kinds: an organisations-only partner may not check a person.
	p := problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", orgTok, checkBody(person, "bank_credit")), http.StatusForbidden, "subject_kind_not_allowed")
	if p["field"] != "subject.id" {
		t.Fatalf("problem %v", p)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", orgTok, map[string]any{"action": "bank_credit",
		"subjects": []map[string]string{{"id": org}, {"id": person}}})
	results := res.json(t)["results"].([]any)
	if results[0].(map[string]any)["check"] == nil || results[1].(map[string]any)["problem"].(map[string]any)["code"] != "subject_kind_not_allowed" {
		t.Fatalf("batch with a person: %s", res.Body)
	}

	// Objects across partners: another partner's check is not found; an
	// auditor reads it as it was answered (redacted).
	problemCode(t, h.doJSON(http.MethodGet, "/v1/checks/"+checkID, fullTok, nil), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/checks/"+checkID, orgTok, nil), http.StatusNotFound, "not_found")
	aud := h.createPartner(map[string]any{"name": "审计署", "role": "auditor"})
	audTok := h.token(aud["client_id"].(string), aud["client_secret"].(string))
	res = h.doJSON(http.MethodGet, "/v1/checks/"+checkID, audTok, nil)
	if res.Status != http.StatusOK || bytes.Contains(res.Body, []byte("发生重大生产安全责任事故")) {
		t.Fatalf("auditor reads the check: %d %s", res.Status, res.Body)
	}
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000004")
	aud := h.createPartner(map[string]any{"name": "审计署", "role": "auditor"})
	audTok := h.token(aud["client_id"].(string), aud["client_secret"].(string))
	partnerID, partnerTok := h.partner("某银行", "bank_credit")

	// Auditors read; they do not check and do not administer.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", audTok, checkBody(clean, "bank_credit")), http.StatusForbidden, "action_not_allowed")
	if res := h.doJSON(http.MethodGet, "/v1/admin/partners", audTok, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor lists partners: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodGet, "/v1/admin/partners/"+partnerID, audTok, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor shows a partner: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", audTok, map[string]any{"name": "x", "actions": []string{"bank_credit"}}), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/partners/"+partnerID, audTok, map[string]any{"name": "x"}), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+partnerID+":revoke", audTok, nil), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", audTok, blackEntry(clean)), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/entries", audTok, nil), http.StatusForbidden, "forbidden")

	// Partners see neither other partners nor administration.
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/partners", partnerTok, nil), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/partners/"+partnerID, partnerTok, nil), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+partnerID+":rotate", partnerTok, nil), http.StatusForbidden, "forbidden")

	// A role's scope fields are refused where they mean nothing.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "x", "role": "auditor", "actions": []string{"bank_credit"}}),
		http.StatusBadRequest, "invalid_partner")
}

func TestRateLimitHeadersAndQuota(t *testing.T) {
	h := newHarness(t, withLimiter(t, "1000-M"))
	clean := testenv.USCC(t, "91110000MA0000005")
	small := h.createPartner(map[string]any{"name": "小额度", "actions": []string{"bank_credit"}, "rate_limit": "3-M"})
	smallTok := h.token(small["client_id"].(string), small["client_secret"].(string))
	_, otherTok := h.partner("其他伙伴", "bank_credit")

	for i := range 3 {
		res := h.doJSON(http.MethodPost, "/v1/checks", smallTok, checkBody(clean, "bank_credit"))
		if res.Status != http.StatusOK {
			t.Fatalf("check %d: %d %s", i, res.Status, res.Body)
		}
		if res.Header.Get("RateLimit-Limit") != "3" || res.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("check %d headers: %v", i, res.Header)
		}
		if r, err := strconv.Atoi(res.Header.Get("RateLimit-Reset")); err != nil || r < 0 || r > 60 {
			t.Fatalf("RateLimit-Reset %q", res.Header.Get("RateLimit-Reset"))
		}
	}
	res := h.doJSON(http.MethodPost, "/v1/checks", smallTok, checkBody(clean, "bank_credit"))
	problemCode(t, res, http.StatusTooManyRequests, "rate_limited")
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	// Others are not harmed; the default quota applies to them.
	res = h.doJSON(http.MethodPost, "/v1/checks", otherTok, checkBody(clean, "bank_credit"))
	if res.Status != http.StatusOK || res.Header.Get("RateLimit-Limit") != "1000" {
		t.Fatalf("other partner: %d %v", res.Status, res.Header)
	}
	// A batch costs one check per subject.
	batch := h.createPartner(map[string]any{"name": "批量", "actions": []string{"bank_credit"}, "rate_limit": "5-M"})
	batchTok := h.token(batch["client_id"].(string), batch["client_secret"].(string))
	subjects := []map[string]string{{"id": clean}, {"id": clean}, {"id": clean}}
	if res := h.doJSON(http.MethodPost, "/v1/checks:batch", batchTok, map[string]any{"action": "bank_credit", "subjects": subjects}); res.Status != http.StatusOK ||
		res.Header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("first batch: %d %v", res.Status, res.Header)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", batchTok, map[string]any{"action": "bank_credit", "subjects": subjects}),
		http.StatusTooManyRequests, "rate_limited")
}

func TestRateLimitWithRedisDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	l, err := gateway.NewRateLimiter("4-M", gateway.WithRedisStore(client, "credgate-test:"+randHex()))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withGateway(gateway.WithRateLimiter(l)))
	clean := testenv.USCC(t, "91110000MA0000006")
	_, tok := h.partner("某银行", "bank_credit")
	// Checks keep flowing, with headers, counted in this replica's memory.
	for i := range 4 {
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
		if res.Status != http.StatusOK || res.Header.Get("RateLimit-Remaining") != strconv.Itoa(3-i) {
			t.Fatalf("check %d with Redis down: %d %v %s", i, res.Status, res.Header, res.Body)
		}
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")), http.StatusTooManyRequests, "rate_limited")
	if l.Shared() {
		t.Fatal("limiter claims to share counters through a dead Redis")
	}
	if res := h.doJSON(http.MethodGet, "/readyz", "", nil); res.Status != http.StatusOK {
		t.Fatalf("a dead Redis makes the replica unready: %s", res.Body)
	}
}

// testRedis returns a client of the machine's Redis; the test skips when it
// is unreachable, except under CI=true.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("CREDGATE_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		testenv.Need(t, "Redis unreachable at %s (set CREDGATE_TEST_REDIS_ADDR): %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dropPrefix deletes the test's keys from the shared Redis.
func dropPrefix(t *testing.T, client *redis.Client, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
}

// secondServer is another replica over h's store and token key, with its
// own rate limiter.
func secondServer(t *testing.T, h *harness, l *gateway.RateLimiter) *harness {
	t.Helper()
	app := evidence.NewAppender(h.store)
	t.Cleanup(app.Close)
	partners := service.NewPartners(h.store, h.catalog, service.WithSecretCost(testenv.SecretCost()))
	srv := gateway.New(service.NewChecker(h.catalog, h.store, app, h.store), service.NewEntries(h.store, h.catalog), partners,
		access.NewTokens(h.key), gateway.WithRateLimiter(l))
	return &harness{t: t, handler: srv.Handler(), store: h.store, catalog: h.catalog, tokens: h.tokens, key: h.key, adminTok: h.adminTok}
}

func TestRateLimitSharedThroughRedis(t *testing.T) {
	client := testRedis(t)
	prefix := "credgate-test:" + randHex()
	dropPrefix(t, client, prefix)
	limiter := func() *gateway.RateLimiter {
		l, err := gateway.NewRateLimiter("5-M", gateway.WithRedisStore(client, prefix))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := limiter(), limiter()
	a := newHarness(t, withGateway(gateway.WithRateLimiter(la)))
	b := secondServer(t, a, lb)
	clean := testenv.USCC(t, "91110000MA0000007")
	_, tok := a.partner("某银行", "bank_credit")
	// The Redis store is built in the background on first use: wait for it
	// so the first requests are not counted in memory.
	deadline := time.Now().Add(5 * time.Second)
	for !(la.Shared() && lb.Shared()) && time.Now().Before(deadline) {
		a.doJSON(http.MethodGet, "/v1/catalog", a.adminTok, nil)
		b.doJSON(http.MethodGet, "/v1/catalog", a.adminTok, nil)
		time.Sleep(10 * time.Millisecond)
	}
	if !la.Shared() || !lb.Shared() {
		t.Fatal("limiters did not connect to Redis")
	}
	remaining := 5
	for i, srv := range []*harness{a, b, a, b, a} {
		res := srv.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
		remaining--
		if res.Status != http.StatusOK || res.Header.Get("RateLimit-Remaining") != strconv.Itoa(remaining) {
			t.Fatalf("check %d: %d remaining %s, want %d", i, res.Status, res.Header.Get("RateLimit-Remaining"), remaining)
		}
	}
	// The quota is spent across both replicas: each refuses.
	problemCode(t, b.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")), http.StatusTooManyRequests, "rate_limited")
	problemCode(t, a.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")), http.StatusTooManyRequests, "rate_limited")
}

func TestTokenEndpointThrottlesBruteForce(t *testing.T) {
	h := newHarness(t, withLimiter(t, gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("5-M", "8-M")))
	created := h.createPartner(map[string]any{"name": "被攻击的伙伴", "actions": []string{"bank_credit"}})
	id, secret := created["client_id"].(string), created["client_secret"].(string)

	attacker := "203.0.113.7:4000"
	for i := range 5 {
		problemCode(t, h.tokenForm(attacker, secretForm(id, fmt.Sprintf("guess-%d-0123456789abcdef", i))), http.StatusUnauthorized, "invalid_client")
	}
	// Throttled now, even with the right secret: guessing is stopped, not
	// just slowed.
	res := h.tokenForm(attacker, secretForm(id, secret))
	problemCode(t, res, http.StatusTooManyRequests, "rate_limited")
	if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra < 1 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	// The partner itself, from its own address, still gets its token.
	if res := h.tokenForm("198.51.100.20:5000", secretForm(id, secret)); res.Status != http.StatusOK {
		t.Fatalf("legitimate client throttled: %d %s", res.Status, res.Body)
	}
	// A distributed guess at one client id is throttled per client.
	for i := range 3 {
		problemCode(t, h.tokenForm(fmt.Sprintf("203.0.113.%d:4000", 50+i), secretForm(id, "wrong-0123456789abcdef")), http.StatusUnauthorized, "invalid_client")
	}
	problemCode(t, h.tokenForm("203.0.113.99:4000", secretForm(id, secret)), http.StatusTooManyRequests, "rate_limited")
	// Without trusted proxies, X-Forwarded-For does not move the attacker
	// (an unthrottled client id, so only the address can refuse).
	req := httptest.NewRequest(http.MethodPost, "/v1/oauth/token", strings.NewReader(secretForm("nobody", "x-0123456789abcdef").Encode()))
	req.RemoteAddr = attacker
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "192.0.2.200")
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a forged X-Forwarded-For escaped the throttle: %d", rec.Code)
	}
}

// keyPartner is a partner registered with a public key.
type keyPartner struct {
	id   string
	kid  string
	alg  jwt.SigningMethod
	priv any
}

func (k keyPartner) assertion(t *testing.T, mod func(jwt.MapClaims), header map[string]any) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": k.id, "sub": k.id, "aud": "credgate", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": randHex()}
	if mod != nil {
		mod(claims)
	}
	tok := jwt.NewWithClaims(k.alg, claims)
	tok.Header["kid"] = k.kid
	for name, v := range header {
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertionForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {access.ClientAssertionType}, "client_assertion": {a}}
}

func edJWK(pub ed25519.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub), "kid": kid}
}

func TestPrivateKeyJWT(t *testing.T) {
	const endpoint = "https://credgate.example.gov.cn/v1/oauth/token"
	h := newHarness(t, withTokens(access.WithAssertionAudiences(endpoint)))
	clean := testenv.USCC(t, "91110000MA0000008")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	created := h.createPartner(map[string]any{"name": "某银行(密钥)", "actions": []string{"bank_credit"},
		"jwks": map[string]any{"keys": []any{edJWK(pub, "bank-2026")}}})
	if _, ok := created["client_secret"]; ok || created["token_endpoint_auth_method"] != "private_key_jwt" {
		t.Fatalf("key partner got a secret or the wrong method: %v", created)
	}
	kp := keyPartner{id: created["client_id"].(string), kid: "bank-2026", alg: jwt.SigningMethodEdDSA, priv: priv}
	remote := "198.51.100.30:1"

	a := kp.assertion(t, nil, nil)
	res := h.tokenForm(remote, assertionForm(a))
	if res.Status != http.StatusOK {
		t.Fatalf("assertion refused: %d %s", res.Status, res.Body)
	}
	tok := res.json(t)["access_token"].(string)
	if credOf(t, tok) != "bank-2026" {
		t.Fatalf("token not bound to the key")
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")); res.Status != http.StatusOK {
		t.Fatalf("check with the token: %d %s", res.Status, res.Body)
	}
	// A replayed assertion is refused.
	problemCode(t, h.tokenForm(remote, assertionForm(a)), http.StatusUnauthorized, "invalid_client")
	// The token endpoint URL is an accepted audience.
	if res := h.tokenForm(remote, assertionForm(kp.assertion(t, func(c jwt.MapClaims) { c["aud"] = endpoint }, nil))); res.Status != http.StatusOK {
		t.Fatalf("endpoint audience: %d %s", res.Status, res.Body)
	}

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	n := 0
	for name, form := range map[string]url.Values{
		"wrong audience":  assertionForm(kp.assertion(t, func(c jwt.MapClaims) { c["aud"] = "https://evil.example/token" }, nil)),
		"expired":         assertionForm(kp.assertion(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, nil)),
		"too long-lived":  assertionForm(kp.assertion(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(time.Hour).Unix() }, nil)),
		"no jti":          assertionForm(kp.assertion(t, func(c jwt.MapClaims) { delete(c, "jti") }, nil)),
		"no exp":          assertionForm(kp.assertion(t, func(c jwt.MapClaims) { delete(c, "exp") }, nil)),
		"sub is not iss":  assertionForm(kp.assertion(t, func(c jwt.MapClaims) { c["sub"] = "someone-else" }, nil)),
		"forged key":      assertionForm(keyPartner{id: kp.id, kid: kp.kid, alg: jwt.SigningMethodEdDSA, priv: otherPriv}.assertion(t, nil, nil)),
		"HS256 with pub":  assertionForm(keyPartner{id: kp.id, kid: kp.kid, alg: jwt.SigningMethodHS256, priv: []byte(pub)}.assertion(t, nil, nil)),
		"alg none":        assertionForm(keyPartner{id: kp.id, kid: kp.kid, alg: jwt.SigningMethodNone, priv: jwt.UnsafeAllowNoneSignatureType}.assertion(t, nil, nil)),
		"unknown kid":     assertionForm(kp.assertion(t, nil, map[string]any{"kid": "other"})),
		"critical header": assertionForm(kp.assertion(t, nil, map[string]any{"crit": []string{"exp"}})),
		"unknown client":  assertionForm(keyPartner{id: "ghost", kid: kp.kid, alg: jwt.SigningMethodEdDSA, priv: priv}.assertion(t, nil, nil)),
		"id mismatch": func() url.Values {
			f := assertionForm(kp.assertion(t, nil, nil))
			f.Set("client_id", "someone-else")
			return f
		}(),
		"oversized": assertionForm(strings.Repeat("a", 5000)),
		"garbage":   assertionForm("not.a.jwt"),
	} {
		n++
		from := fmt.Sprintf("198.51.100.%d:1", 40+n) // each from its own address: none is throttled
		t.Run(name, func(t *testing.T) { problemCode(t, h.tokenForm(from, form), http.StatusUnauthorized, "invalid_client") })
	}
	remote = "198.51.100.31:1"
	// One method per request, and the right assertion type.
	f := assertionForm(kp.assertion(t, nil, nil))
	f.Set("client_secret", "also-a-secret-0123456789")
	problemCode(t, h.tokenForm(remote, f), http.StatusBadRequest, "invalid_request")
	f = assertionForm(kp.assertion(t, nil, nil))
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
	problemCode(t, h.tokenForm(remote, f), http.StatusBadRequest, "invalid_request")

	// Rotating to a P-256 key without overlap retires the Ed25519 key and
	// the tokens issued for it.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecb, _ := ec.PublicKey.Bytes()
	res = h.doJSON(http.MethodPost, "/v1/admin/partners/"+kp.id+":rotate", h.adminTok, map[string]any{"overlap_seconds": 0,
		"jwks": map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "bank-2027",
			"x": base64.RawURLEncoding.EncodeToString(ecb[1:33]), "y": base64.RawURLEncoding.EncodeToString(ecb[33:])}}}})
	if res.Status != http.StatusOK {
		t.Fatalf("rotate keys: %d %s", res.Status, res.Body)
	}
	if _, ok := res.json(t)["client_secret"]; ok {
		t.Fatal("a key rotation issued a secret")
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")), http.StatusUnauthorized, "invalid_token")
	problemCode(t, h.tokenForm(remote, assertionForm(kp.assertion(t, nil, nil))), http.StatusUnauthorized, "invalid_client")
	ecp := keyPartner{id: kp.id, kid: "bank-2027", alg: jwt.SigningMethodES256, priv: ec}
	if res := h.tokenForm(remote, assertionForm(ecp.assertion(t, nil, nil))); res.Status != http.StatusOK {
		t.Fatalf("P-256 assertion: %d %s", res.Status, res.Body)
	}
	// The P-256 key verifies ES256 only: an HMAC keyed with its public
	// bytes (algorithm confusion) is refused.
	problemCode(t, h.tokenForm(remote, assertionForm(keyPartner{id: kp.id, kid: "bank-2027", alg: jwt.SigningMethodHS256, priv: ecb}.assertion(t, nil, nil))),
		http.StatusUnauthorized, "invalid_client")

	// Registering a private key is refused, and nothing is stored.
	_, leaked, _ := ed25519.GenerateKey(rand.Reader)
	bad := edJWK(leaked.Public().(ed25519.PublicKey), "oops")
	bad["d"] = base64.RawURLEncoding.EncodeToString(leaked.Seed())
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "泄露", "actions": []string{"bank_credit"},
		"jwks": map[string]any{"keys": []any{bad}}}), http.StatusBadRequest, "invalid_partner")
}

func TestJWKSAndSigningKeyRotation(t *testing.T) {
	oldPub, oldKey, _ := ed25519.GenerateKey(rand.Reader)
	h := newHarness(t, withTokens(access.WithVerificationKeys(oldPub)))
	clean := testenv.USCC(t, "91110000MA0000009")
	res := h.doJSON(http.MethodGet, "/.well-known/jwks.json", "", nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/jwk-set+json") {
		t.Fatalf("jwks: %d %v", res.Status, res.Header)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(res.Body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0]["kid"] != h.tokens.KeyID() || set.Keys[1]["kid"] != access.KeyID(oldPub) {
		t.Fatalf("jwks %s", res.Body)
	}
	for _, k := range set.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["d"] != "" {
			t.Fatalf("key %v", k)
		}
	}
	// A token the previous key signed (before the rotation) still works; the
	// keys published are exactly those accepted.
	id, tok := h.partner("某银行", "bank_credit")
	oldTokens := access.NewTokens(oldKey)
	p, err := h.store.PartnerByClientID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	old, err := oldTokens.Issue(p.ClientID, string(p.Role), credOf(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", old, checkBody(clean, "bank_credit")); res.Status != http.StatusOK {
		t.Fatalf("token of the previous key: %d %s", res.Status, res.Body)
	}
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := access.NewTokens(strangerKey).Issue(p.ClientID, string(p.Role), credOf(t, tok))
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", stranger, checkBody(clean, "bank_credit")), http.StatusUnauthorized, "invalid_token")
	// A replica that only verifies with the old key refuses the new key's tokens.
	verifyOld := access.NewTokens(oldKey)
	if _, err := verifyOld.Verify(tok); err == nil {
		t.Fatal("a replica without the new key accepted its token")
	}
}

func TestTokenAttacksBeyondTheBasics(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000010")
	body := checkBody(clean, "government_procurement")
	check := func(tok string) response { return h.doJSON(http.MethodPost, "/v1/checks", tok, body) }
	now := time.Now()
	cred := credOf(t, h.adminTok)
	sign := func(claims jwt.MapClaims, header map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"] = h.tokens.KeyID()
		tok.Header["typ"] = "at+jwt"
		for k, v := range header {
			if v == nil {
				delete(tok.Header, k)
				continue
			}
			tok.Header[k] = v
		}
		s, err := tok.SignedString(h.key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "credgate", "aud": "credgate", "sub": adminID, "role": "admin", "cred": cred,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	if res := check(sign(claims(nil), nil)); res.Status != http.StatusOK {
		t.Fatalf("well-formed token refused: %d %s", res.Status, res.Body)
	}
	nested := strings.Repeat("[", 1500) + strings.Repeat("]", 1500)
	forgedNested := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+h.tokens.KeyID()+`","typ":"at+jwt"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","x":`+nested+`}`)) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	valid := sign(claims(nil), nil)
	parts := strings.Split(valid, ".")
	for name, tok := range map[string]string{
		"no typ":               sign(claims(nil), map[string]any{"typ": nil}),
		"typ JWT":              sign(claims(nil), map[string]any{"typ": "JWT"}),
		"no credential":        sign(claims(func(c jwt.MapClaims) { delete(c, "cred") }), nil),
		"unknown credential":   sign(claims(func(c jwt.MapClaims) { c["cred"] = "sec_000000000000" }), nil),
		"role escalation":      sign(claims(func(c jwt.MapClaims) { c["role"] = "auditor" }), nil),
		"issued in the future": sign(claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), nil),
		"critical header":      sign(claims(nil), map[string]any{"crit": []string{"exp"}}),
		"deeply nested":        forgedNested,
		"signature swapped":    parts[0] + "." + parts[1] + "." + strings.Split(h.adminTok, ".")[2],
		"padded signature":     valid + "==",
		"no signature":         parts[0] + "." + parts[1] + ".",
	} {
		t.Run(name, func(t *testing.T) { problemCode(t, check(tok), http.StatusUnauthorized, "invalid_token") })
	}
}

// TestSecretsNeverLogged captures everything logged while tokens are issued
// and refused, and finds no secret, token or assertion in it. Not parallel:
// it replaces the process's default logger.
func TestSecretsNeverLogged(t *testing.T) {
	var logs testenv.SyncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)

	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000011")
	created := h.createPartner(map[string]any{"name": "某银行", "actions": []string{"bank_credit"}})
	id, secret := created["client_id"].(string), created["client_secret"].(string)
	tok := h.token(id, secret)
	wrong := "wrong-secret-" + randHex()
	problemCode(t, h.tokenForm("192.0.2.50:1", secretForm(id, wrong)), http.StatusUnauthorized, "invalid_client")
	// A caller that pasted its secret into client_id, with and without a
	// colon, or sent it alone.
	pasted := "pasted:" + randHex() + randHex()
	problemCode(t, h.tokenForm("192.0.2.51:1", secretForm(pasted, wrong)), http.StatusUnauthorized, "invalid_client")
	problemCode(t, h.tokenForm("192.0.2.54:1", secretForm(secret, secret)), http.StatusUnauthorized, "invalid_client")
	problemCode(t, h.tokenForm("192.0.2.55:1", secretForm(secret, "")), http.StatusUnauthorized, "invalid_client")
	// A wrong secret for a real client id: the id is worth logging.
	named := false
	for _, l := range strings.Split(logs.String(), "\n") {
		named = named || (strings.Contains(l, "client authentication failed") && strings.Contains(l, "client_id="+id+" "))
	}
	if !named {
		t.Errorf("the failed authentication of the known client id %s is not logged with it", id)
	}
	// Basic auth with a wrong secret.
	problemCode(t, h.doFrom("192.0.2.52:1", http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded",
		[]byte("grant_type=client_credentials"), id, wrong+"-basic"), http.StatusUnauthorized, "invalid_client")
	forged := tamper(tok)
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", forged, checkBody(clean, "bank_credit")), http.StatusUnauthorized, "invalid_token")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	kc := h.createPartner(map[string]any{"name": "密钥", "actions": []string{"bank_credit"}, "jwks": map[string]any{"keys": []any{edJWK(pub, "k")}}})
	kp := keyPartner{id: kc["client_id"].(string), kid: "k", alg: jwt.SigningMethodEdDSA, priv: priv}
	a := kp.assertion(t, nil, nil)
	if res := h.tokenForm("192.0.2.53:1", assertionForm(a)); res.Status != http.StatusOK {
		t.Fatalf("assertion: %d", res.Status)
	}
	problemCode(t, h.tokenForm("192.0.2.53:1", assertionForm(a)), http.StatusUnauthorized, "invalid_client")
	rotated := h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":rotate", h.adminTok, nil).json(t)["client_secret"].(string)

	out := logs.String()
	if !strings.Contains(out, "access token issued") || !strings.Contains(out, "client authentication failed") {
		t.Fatalf("the logs were not captured:\n%s", out)
	}
	for name, s := range map[string]string{
		"secret": secret, "wrong secret": wrong, "pasted": pasted, "token": tok, "token signature": strings.Split(tok, ".")[2],
		"forged token": forged, "assertion": a, "assertion signature": strings.Split(a, ".")[2], "rotated secret": rotated,
		"admin secret": adminSecret, "admin token signature": strings.Split(h.adminTok, ".")[2],
	} {
		if strings.Contains(out, s) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

var _ = policy.KindPerson

// TestTokenRequestIsStrict: a token request names each parameter once
// (RFC 6749 §3.1) and is exactly a form, not a media type that begins like
// one.
func TestTokenRequestIsStrict(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	created := h.createPartner(map[string]any{"name": "某银行", "actions": []string{"bank_credit"}})
	id, secret := created["client_id"].(string), created["client_secret"].(string)
	twice := secretForm(id, secret)
	twice.Add("grant_type", "client_credentials")
	problemCode(t, h.tokenForm("192.0.2.60:1", twice), http.StatusBadRequest, "invalid_request")
	other := secretForm(id, secret)
	other.Add("client_id", "cg_other")
	problemCode(t, h.tokenForm("192.0.2.61:1", other), http.StatusBadRequest, "invalid_request")
	problemCode(t, h.doFrom("192.0.2.62:1", http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencodedXYZ",
		[]byte(secretForm(id, secret).Encode())), http.StatusBadRequest, "invalid_request")
	if res := h.tokenForm("192.0.2.63:1", secretForm(id, secret)); res.Status != http.StatusOK {
		t.Fatalf("a well-formed request: %d %s", res.Status, res.Body)
	}
}
