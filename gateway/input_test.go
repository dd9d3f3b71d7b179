package gateway_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

func TestJSONEndpointsRequireJSON(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000005")
	_, tok := h.partner("媒体类型", "bank_credit")
	body := []byte(`{"subject":{"id":"` + clean + `"},"action":"bank_credit"}`)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"} {
		if res := h.do(http.MethodPost, "/v1/checks", tok, ct, body); res.Status != http.StatusOK {
			t.Fatalf("%q: %d %s", ct, res.Status, res.Body)
		}
	}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=gbk", "application/jsonx", "text/json;;"} {
		problemCode(t, h.do(http.MethodPost, "/v1/checks", tok, ct, body), http.StatusUnsupportedMediaType, "unsupported_media_type")
		problemCode(t, h.do(http.MethodPost, "/v1/admin/partners", h.adminTok, ct, []byte(`{"name":"x","actions":["bank_credit"]}`)),
			http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	// The token endpoint keeps its form (the harness got tokens through it)
	// and answers a JSON body with its own OAuth error.
	problemCode(t, h.do(http.MethodPost, "/v1/oauth/token", "", "application/json", []byte(`{"grant_type":"client_credentials"}`)),
		http.StatusBadRequest, "invalid_request")
}

func TestJSONBodiesDecodedStrictly(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000005")
	_, tok := h.partner("严格解码", "bank_credit")
	cases := []struct{ body, code, field string }{
		{`{"subject":{"id":"` + clean + `"},"Action":"bank_credit"}`, "invalid_json", "Action"},
		{`{"subject":{"id":"` + clean + `"},"action":"bank_credit","action":"public_tendering"}`, "duplicate_field", "action"},
		{"{\"subject\":{\"id\":\"" + clean + "\"},\"action\":\"bank_credit\",\"reference\":\"\xb2\xe2\"}", "invalid_utf8", ""},
		{`{"subject":{"id":"` + clean + `"},"action":"bank_credit","reference":"\udfff"}`, "invalid_utf8", "reference"},
	}
	for _, tc := range cases {
		m := problemCode(t, h.do(http.MethodPost, "/v1/checks", tok, "application/json", []byte(tc.body)), http.StatusBadRequest, tc.code)
		if f, _ := m["field"].(string); f != tc.field {
			t.Errorf("%s: field %q, want %q", tc.body, f, tc.field)
		}
	}
	problemCode(t, h.do(http.MethodPost, "/v1/checks:batch", tok, "application/json",
		[]byte(`{"action":"bank_credit","subjects":[{"id":"`+clean+`","id":"`+clean+`"}]}`)), http.StatusBadRequest, "duplicate_field")
}

func TestOverlongHeadersAnsweredAsProblems(t *testing.T) {
	h := newHarness(t)
	clean := testenv.USCC(t, "91110000MA0000005")
	_, tok := h.partner("长首部", "bank_credit")
	body := []byte(`{"subject":{"id":"` + clean + `"},"action":"bank_credit"}`)

	// Through a real server set up as serve sets it up: Go's own limit is
	// not the one that answers.
	srv := httptest.NewUnstartedServer(h.handler)
	srv.Config.MaxHeaderBytes = gateway.HTTPMaxHeaderBytes
	srv.Start()
	t.Cleanup(srv.Close)
	send := func(path, ct string, header http.Header, body []byte) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		req.Header.Set("Content-Type", ct)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		validateContract(t, http.MethodPost, path, ct, body, res.StatusCode, res.Header, b)
		return res.StatusCode, res.Header, b
	}
	expect := func(status int, header http.Header, b []byte, want int, code string) {
		t.Helper()
		problemCode(t, response{Status: status, Header: header, Body: b}, want, code)
	}

	status, _, b := send("/v1/checks", "application/json", http.Header{"Authorization": {"Bearer " + tok}}, body)
	if status != http.StatusOK {
		t.Fatalf("a normal check: %d %s", status, b)
	}
	long := "Bearer " + strings.Repeat("A", 20<<10)
	status, hdr, b := send("/v1/checks", "application/json", http.Header{"Authorization": {long}}, body)
	expect(status, hdr, b, http.StatusUnauthorized, "invalid_token")
	if hdr.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	status, hdr, b = send("/v1/checks", "application/json",
		http.Header{"Authorization": {"Bearer " + tok}, "X-Filler": {strings.Repeat("x", 20<<10)}}, body)
	expect(status, hdr, b, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("id:"+strings.Repeat("s", 10<<10)))
	status, hdr, b = send("/v1/oauth/token", "application/x-www-form-urlencoded", http.Header{"Authorization": {basic}},
		[]byte(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	m := expectOAuth(t, status, hdr, b)
	if m != "invalid_client" {
		t.Fatalf("token endpoint with an overlong Authorization: error %q", m)
	}
	// Just under the gateway's limits passes them.
	status, _, b = send("/v1/checks", "application/json",
		http.Header{"Authorization": {"Bearer " + tok}, "X-Filler": {strings.Repeat("x", gateway.MaxHeaderBytes-2048)}}, body)
	if status != http.StatusOK {
		t.Fatalf("headers under the limit: %d %s", status, b)
	}
}

func expectOAuth(t *testing.T, status int, hdr http.Header, b []byte) string {
	t.Helper()
	m := problemCode(t, response{Status: status, Header: hdr, Body: b}, http.StatusUnauthorized, "invalid_client")
	e, _ := m["error"].(string)
	return e
}

// A refusal decided before the work costs nothing; the quota still holds
// for work accepted.
func TestRejectedWorkIsNotCharged(t *testing.T) {
	h := newHarness(t, withLimiter(t, "1000-M"))
	clean := testenv.USCC(t, "91110000MA0000005")
	small := h.createPartner(map[string]any{"name": "小额度", "actions": []string{"bank_credit"}, "rate_limit": "3-M"})
	tok := h.token(small["client_id"].(string), small["client_secret"].(string))

	remaining := func(res response) string { return res.Header.Get("RateLimit-Remaining") }
	many := make([]map[string]string, 1001)
	for i := range many {
		many[i] = map[string]string{"id": clean}
	}
	// 413: one subject too many.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": many}),
		http.StatusRequestEntityTooLarge, "batch_too_large")
	// 403: an action the partner may not check, alone and in a batch.
	three := many[:3]
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "public_tendering", "subjects": three}),
		http.StatusForbidden, "action_not_allowed")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "public_tendering")), http.StatusForbidden, "action_not_allowed")
	// 400s of every kind, 413 of the body, 415.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, `{"subject":{"id":"x"},"action":"bank_credit","action":"x"}`),
		http.StatusBadRequest, "duplicate_field")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody("91110000MA00000050", "bank_credit")), http.StatusBadRequest, "invalid_subject_id")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": []any{}}),
		http.StatusBadRequest, "empty_batch")
	problemCode(t, h.do(http.MethodPost, "/v1/checks", tok, "application/json", []byte(`{"reference":"`+strings.Repeat("x", gateway.MaxJSONBody)+`"}`)),
		http.StatusRequestEntityTooLarge, "body_too_large")
	problemCode(t, h.do(http.MethodPost, "/v1/checks", tok, "text/plain", []byte(`{}`)), http.StatusUnsupportedMediaType, "unsupported_media_type")
	// 429: a batch of more subjects than remain is refused whole, and
	// costs nothing either.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": many[:4]}),
		http.StatusTooManyRequests, "rate_limited")

	// All of the quota is left: three checks (a batch of two and one).
	res := h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": many[:2]})
	if res.Status != http.StatusOK || remaining(res) != "1" {
		t.Fatalf("batch of two: %d remaining %q %s", res.Status, remaining(res), res.Body)
	}
	// Work done stays charged even when its answer is a 4xx: a check that
	// is not there was looked for.
	res = h.doJSON(http.MethodGet, "/v1/checks/"+strconv.Itoa(1<<30), tok, nil)
	problemCode(t, res, http.StatusNotFound, "not_found")
	if remaining(res) != "0" {
		t.Fatalf("404: remaining %q", remaining(res))
	}
	res = h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
	problemCode(t, res, http.StatusTooManyRequests, "rate_limited")
	if remaining(res) != "0" {
		t.Fatalf("refused check: remaining %q", remaining(res))
	}
}
