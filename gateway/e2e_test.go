package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

const uscAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// wrongCheck returns code with a different, wrong check character.
func wrongCheck(code string) string {
	last := code[len(code)-1]
	for _, c := range uscAlphabet {
		if byte(c) != last {
			return code[:len(code)-1] + string(c)
		}
	}
	return code
}

func blackEntry(subject string) map[string]any {
	return map[string]any{
		"subject_id":             subject,
		"list":                   "safety_production_blacklist",
		"originating_department": "应急管理部",
		"reason":                 "发生重大生产安全责任事故",
		"legal_basis":            "《安全生产法》",
		"evidence_refs":          []string{"应急罚〔2026〕12号"},
		"decided_at":             time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339),
		"published_at":           time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339),
	}
}

func TestCheckPathEndToEnd(t *testing.T) {
	h := newHarness(t)
	listed := testenv.USCC(t, "91110108MA01ABCD1")
	clean := testenv.USCC(t, "91310000MA1FL0000")

	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(listed))
	if res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	entry := res.json(t)
	if entry["status"] != "active" || entry["id"] == "" {
		t.Fatalf("entry = %s", res.Body)
	}
	// The safety production black list is valid one year from publication.
	pub, _ := time.Parse(time.RFC3339, entry["published_at"].(string))
	until, _ := time.Parse(time.RFC3339, entry["valid_until"].(string))
	if !until.Equal(pub.AddDate(1, 0, 0)) {
		t.Fatalf("valid_until %v, want %v", until, pub.AddDate(1, 0, 0))
	}

	_, tok := h.partner("某市公共资源交易中心", "government_procurement", "public_tendering")

	// A black-listed company is restricted, with measures, basis and authority.
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{
		"subject": map[string]string{"id": " " + strings.ToLower(listed) + " "}, "action": "government_procurement", "reference": "采购-2026-001",
	})
	if res.Status != http.StatusOK {
		t.Fatalf("check: %d %s", res.Status, res.Body)
	}
	ans := res.json(t)
	if o := ans["outcome"]; o != "restrict" && o != "prohibit" {
		t.Fatalf("outcome %v, want restrict or prohibit: %s", o, res.Body)
	}
	if ans["subject"].(map[string]any)["id"] != listed {
		t.Fatalf("subject not normalised: %v", ans["subject"])
	}
	measures := ans["measures"].([]any)
	if len(measures) == 0 {
		t.Fatal("no measures")
	}
	for _, m := range measures {
		m := m.(map[string]any)
		if m["legal_basis"] == "" || m["authority"] == "" || m["text"] == "" || m["entry_id"] != entry["id"] {
			t.Fatalf("measure lacks basis, authority or entry: %v", m)
		}
	}
	if ans["catalog_revision"] != h.catalog.Revision() {
		t.Fatalf("catalog_revision %v", ans["catalog_revision"])
	}
	rc := ans["receipt"].(map[string]any)
	if len(rc["record_hash"].(string)) != 64 {
		t.Fatalf("receipt %v", rc)
	}
	checkID := ans["check_id"].(string)

	// A clean, valid code is clear.
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]string{"id": clean}, "action": "government_procurement"})
	if res.Status != http.StatusOK || res.json(t)["outcome"] != "clear" {
		t.Fatalf("clean subject: %d %s", res.Status, res.Body)
	}
	firstIndex := rc["log_index"].(float64)
	if got := res.json(t)["receipt"].(map[string]any)["log_index"].(float64); got != firstIndex+1 {
		t.Fatalf("second check at log index %v, want %v", got, firstIndex+1)
	}

	// A wrong check character is a client error, never "clear", and is not recorded.
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]string{"id": wrongCheck(clean)}, "action": "government_procurement"})
	p := problemCode(t, res, http.StatusBadRequest, "invalid_subject_id")
	if p["reason"] != "check_character" || p["field"] != "subject.id" {
		t.Fatalf("problem %s", res.Body)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]string{"id": clean}, "action": "government_procurement"})
	if got := res.json(t)["receipt"].(map[string]any)["log_index"].(float64); got != firstIndex+2 {
		t.Fatalf("a rejected check was recorded: next index %v, want %v", got, firstIndex+2)
	}

	// The partner reads its check back, with the same answer and receipt.
	res = h.doJSON(http.MethodGet, "/v1/checks/"+checkID, tok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("get check: %d %s", res.Status, res.Body)
	}
	back := res.json(t)
	if back["outcome"] != ans["outcome"] || back["receipt"].(map[string]any)["record_hash"] != rc["record_hash"] {
		t.Fatalf("stored check differs: %s", res.Body)
	}
	// Another partner cannot see it.
	_, other := h.partner("某银行", "bank_credit")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/checks/"+checkID, other, nil), http.StatusNotFound, "not_found")
	// …nor check an action it is not allowed.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", other, map[string]any{"subject": map[string]string{"id": clean}, "action": "government_procurement"}),
		http.StatusForbidden, "action_not_allowed")

	// Revoking the entry ends its measures.
	res = h.doJSON(http.MethodPost, "/v1/admin/entries/"+entry["id"].(string)+":revoke", h.adminTok, map[string]string{"reason": "复议撤销"})
	if res.Status != http.StatusOK || res.json(t)["status"] != "revoked" {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]string{"id": listed}, "action": "government_procurement"})
	if res.json(t)["outcome"] != "clear" {
		t.Fatalf("after revocation: %s", res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries/"+entry["id"].(string)+":revoke", h.adminTok, map[string]string{"reason": "again"}),
		http.StatusConflict, "entry_revoked")
}

func TestBatchCheck(t *testing.T) {
	h := newHarness(t)
	listed := testenv.USCC(t, "91440300MA5DXXXX0")
	clean := testenv.USCC(t, "91440300MA5DYYYY0")
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(listed)); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	_, tok := h.partner("某银行信贷系统", "bank_credit", "government_procurement")
	res := h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{
		"action": "government_procurement", "reference": "贷款台账-2026Q4",
		"subjects": []map[string]string{{"id": listed}, {"id": wrongCheck(clean)}, {"id": clean}},
	})
	if res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	results := res.json(t)["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	r0 := results[0].(map[string]any)["check"].(map[string]any)
	if r0["outcome"] == "clear" {
		t.Fatalf("listed subject clear in batch: %v", r0)
	}
	if p := results[1].(map[string]any)["problem"].(map[string]any); p["code"] != "invalid_subject_id" || p["field"] != "subjects[1].id" {
		t.Fatalf("bad subject: %v", p)
	}
	r2 := results[2].(map[string]any)["check"].(map[string]any)
	if r2["outcome"] != "clear" {
		t.Fatalf("clean subject: %v", r2)
	}
	i0 := r0["receipt"].(map[string]any)["log_index"].(float64)
	i2 := r2["receipt"].(map[string]any)["log_index"].(float64)
	if i0 == i2 {
		t.Fatal("two checks share a log index")
	}

	many := make([]map[string]string, 1001)
	for i := range many {
		many[i] = map[string]string{"id": clean}
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "government_procurement", "subjects": many}),
		http.StatusRequestEntityTooLarge, "batch_too_large")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "government_procurement", "subjects": []any{}}),
		http.StatusBadRequest, "empty_batch")
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA00AAAA0")
	_, tok := h.partner("某市行政审批局", "administrative_licensing")
	check := func(body any) response { return h.doJSON(http.MethodPost, "/v1/checks", tok, body) }

	problemCode(t, check(`{"subject":`), http.StatusBadRequest, "invalid_json")
	problemCode(t, check(`{"subject":{"id":"x"},"action":"administrative_licensing"} {}`), http.StatusBadRequest, "invalid_json")
	problemCode(t, check(`{"subjct":{"id":"`+clean+`"},"action":"administrative_licensing"}`), http.StatusBadRequest, "invalid_json")
	problemCode(t, check(`{"subject":{"id":42},"action":"administrative_licensing"}`), http.StatusBadRequest, "invalid_json")
	problemCode(t, check(map[string]any{"action": "administrative_licensing"}), http.StatusBadRequest, "missing_field")
	problemCode(t, check(map[string]any{"subject": map[string]string{"id": clean}, "action": "no_such_action"}), http.StatusBadRequest, "unknown_action")
	problemCode(t, check(map[string]any{"subject": map[string]string{"id": clean}, "action": "administrative_licensing", "reference": strings.Repeat("x", 201)}),
		http.StatusBadRequest, "invalid_reference")
	p := problemCode(t, check(map[string]any{"subject": map[string]string{"id": "91110000MA00AAAA"}, "action": "administrative_licensing"}),
		http.StatusBadRequest, "invalid_subject_id")
	if p["reason"] != "length" {
		t.Fatalf("reason %v", p["reason"])
	}
	big := `{"subject":{"id":"` + strings.Repeat("9", 70<<10) + `"},"action":"administrative_licensing"}`
	problemCode(t, check(big), http.StatusRequestEntityTooLarge, "body_too_large")

	// Bad entries change nothing.
	bad := blackEntry(wrongCheck(clean))
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, bad), http.StatusBadRequest, "invalid_subject_id")
	bad = blackEntry(clean)
	bad["list"] = "no_such_list"
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, bad), http.StatusBadRequest, "invalid_entry")
	bad = blackEntry(clean)
	bad["published_at"] = "yesterday"
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, bad), http.StatusBadRequest, "invalid_json")
	res := h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+clean, h.adminTok, nil)
	if n := len(res.json(t)["entries"].([]any)); n != 0 {
		t.Fatalf("a rejected entry was stored: %s", res.Body)
	}

	// Partners may not administer.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", tok, blackEntry(clean)), http.StatusForbidden, "forbidden")
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA00BBBB0")
	body := map[string]any{"subject": map[string]string{"id": clean}, "action": "government_procurement"}
	check := func(tok string) response { return h.doJSON(http.MethodPost, "/v1/checks", tok, body) }

	problemCode(t, check(""), http.StatusUnauthorized, "missing_token")
	problemCode(t, check("not-a-jwt"), http.StatusUnauthorized, "invalid_token")

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		tok.Header["typ"] = "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	adminCred := credOf(t, h.adminTok)
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "credgate", "aud": "credgate", "sub": adminID, "role": "admin", "cred": adminCred,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	kid := h.tokens.KeyID()
	// Sanity: a token made this way with the real key works.
	if res := check(sign(jwt.SigningMethodEdDSA, h.key, claims(nil), kid)); res.Status != http.StatusOK {
		t.Fatalf("well-formed token refused: %d %s", res.Status, res.Body)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := h.key.Public().(ed25519.PublicKey)
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), kid)
	for name, tok := range map[string]string{
		"alg=none":        none,
		"forged key":      sign(jwt.SigningMethodEdDSA, otherKey, claims(nil), kid),
		"HS256 with pub":  sign(jwt.SigningMethodHS256, []byte(pub), claims(nil), kid),
		"expired":         sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), kid),
		"not yet valid":   sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), kid),
		"wrong issuer":    sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }), kid),
		"wrong audience":  sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { c["aud"] = "other" }), kid),
		"no expiry":       sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { delete(c, "exp") }), kid),
		"unknown subject": sign(jwt.SigningMethodEdDSA, h.key, claims(func(c jwt.MapClaims) { c["sub"] = "ghost" }), kid),
		"unknown kid":     sign(jwt.SigningMethodEdDSA, h.key, claims(nil), "other"),
		"tampered":        tamper(sign(jwt.SigningMethodEdDSA, h.key, claims(nil), kid)),
		"oversized":       strings.Repeat("a", 5000),
	} {
		t.Run(name, func(t *testing.T) { problemCode(t, check(tok), http.StatusUnauthorized, "invalid_token") })
	}

	// Wrong secrets and unknown clients get the same answer.
	form := "grant_type=client_credentials&client_id=" + adminID + "&client_secret=wrong"
	p := problemCode(t, h.do(http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form)), http.StatusUnauthorized, "invalid_client")
	if p["error"] != "invalid_client" {
		t.Fatalf("no OAuth error member: %v", p)
	}
	form = "grant_type=client_credentials&client_id=ghost&client_secret=wrong"
	problemCode(t, h.do(http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form)), http.StatusUnauthorized, "invalid_client")
	form = "grant_type=password&client_id=" + adminID + "&client_secret=" + adminSecret
	problemCode(t, h.do(http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form)), http.StatusBadRequest, "unsupported_grant_type")

	// A revoked partner's unexpired token stops working.
	id, tok := h.partner("将被撤销的伙伴", "government_procurement")
	if res := check(tok); res.Status != http.StatusOK {
		t.Fatalf("before revocation: %d", res.Status)
	}
	if res := h.doJSON(http.MethodPost, "/v1/admin/partners/"+id+":revoke", h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("revoke partner: %d %s", res.Status, res.Body)
	}
	problemCode(t, check(tok), http.StatusUnauthorized, "invalid_token")
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	// Flip one character of the payload: the signature no longer matches.
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return fmt.Sprintf("%s.%s.%s", parts[0], b, parts[2])
}

func TestHealthAndCatalog(t *testing.T) {
	h := newHarness(t)
	if res := h.doJSON(http.MethodGet, "/healthz", "", nil); res.Status != http.StatusOK {
		t.Fatalf("healthz %d", res.Status)
	}
	if res := h.doJSON(http.MethodGet, "/readyz", "", nil); res.Status != http.StatusOK {
		t.Fatalf("readyz %d %s", res.Status, res.Body)
	}
	res := h.doJSON(http.MethodGet, "/v1/catalog", h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("catalog %d", res.Status)
	}
	cat := res.json(t)
	if cat["revision"] != h.catalog.Revision() || len(cat["measures"].([]any)) != len(h.catalog.Measures()) {
		t.Fatalf("catalog answer differs from the catalogue")
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/catalog", "", nil), http.StatusUnauthorized, "missing_token")
	if res := h.doJSON(http.MethodGet, "/metrics", "", nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), "credgate_http_request_duration_seconds") {
		t.Fatalf("metrics %d", res.Status)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/nope", h.adminTok, nil), http.StatusNotFound, "not_found")
}

var _ = gateway.MaxJSONBody

func TestLastAdminCannotBeRevoked(t *testing.T) {
	h := newHarness(t)
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners/"+adminID+":revoke", h.adminTok, nil), http.StatusConflict, "last_admin")
	// With a second administrator, the first may go.
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "第二管理员", "role": "admin"})
	if res.Status != http.StatusCreated {
		t.Fatalf("create admin: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodPost, "/v1/admin/partners/"+adminID+":revoke", h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("revoke with another admin left: %d %s", res.Status, res.Body)
	}
}

func TestTokenEndpointBasicChallenge(t *testing.T) {
	h := newHarness(t)
	req := httptest.NewRequest(http.MethodPost, "/v1/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(adminID, "wrong-secret")
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Basic realm="credgate"` {
		t.Fatalf("status %d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
