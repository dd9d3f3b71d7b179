package faults

import (
	"net/http"
	"strings"
	"testing"
)

// wantProblem fails unless r is an RFC 9457 problem with status and code.
func wantProblem(t *testing.T, what string, r reply, status int, code string) {
	t.Helper()
	if r.err != nil || r.status != status || r.code() != code ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s: %s (Content-Type %q), want a %d %s problem", what, r, r.header.Get("Content-Type"), status, code)
	}
}

// Finding 4: rejected work was charged to the quota: a batch refused with
// 413 or 403 cost its 1,001 or 3 units. A partner with a quota of 3 a
// minute sends both (and other refusals decided before any work), then
// still has its 3 checks.
func TestRejectedWorkIsNotCharged(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newAPI(srv.base)
	tok := a.partner(t, a.adminToken(t), map[string]any{"rate_limit": "3-M"}, action)
	s := subject(t, 6, 1)
	many := make([]map[string]string, 1001)
	for i := range many {
		many[i] = map[string]string{"id": s}
	}
	wantProblem(t, "a batch of 1001", a.postJSON("/v1/checks:batch", tok, map[string]any{"action": action, "subjects": many}),
		http.StatusRequestEntityTooLarge, "batch_too_large")
	wantProblem(t, "a batch of 3 for an action not allowed", a.postJSON("/v1/checks:batch", tok, map[string]any{"action": "bank_credit", "subjects": many[:3]}),
		http.StatusForbidden, "action_not_allowed")
	wantProblem(t, "a check under another media type", a.do(http.MethodPost, "/v1/checks", tok, "text/plain", []byte(`{}`)),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantProblem(t, "a batch of 4 past the quota", a.postJSON("/v1/checks:batch", tok, map[string]any{"action": action, "subjects": many[:4]}),
		http.StatusTooManyRequests, "rate_limited")
	r := a.postJSON("/v1/checks:batch", tok, map[string]any{"action": action, "subjects": many[:3]})
	if r.status != http.StatusOK || r.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("the whole quota after the refusals: %s (remaining %q)", r, r.header.Get("RateLimit-Remaining"))
	}
	wantProblem(t, "a check past the quota", a.check(tok, s), http.StatusTooManyRequests, "rate_limited")
}

// Finding 7: input edges. A bearer token over 16 KiB got Go's plain-text
// 431; JSON endpoints accepted any Content-Type; field names matched in
// any case and the last of duplicate keys won; invalid UTF-8 in reference
// was replaced and recorded. Each is now refused as a problem.
func TestInputEdgesRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := newAPI(srv.base)
	admin := a.adminToken(t)
	tok := a.partner(t, admin, nil, action)
	s := subject(t, 6, 2)
	body := func(raw string) []byte { return []byte(raw) }
	sub := `"subject":{"id":"` + s + `"}`

	wantProblem(t, "a bearer token of 20 KiB", a.do(http.MethodPost, "/v1/checks", "", "application/json",
		body(`{`+sub+`,"action":"`+action+`"}`), "Authorization", "Bearer "+strings.Repeat("A", 20<<10)),
		http.StatusUnauthorized, "invalid_token")
	wantProblem(t, "20 KiB of other headers", a.do(http.MethodPost, "/v1/checks", tok, "application/json",
		body(`{`+sub+`,"action":"`+action+`"}`), "X-Filler", strings.Repeat("x", 20<<10)),
		http.StatusRequestHeaderFieldsTooLarge, "headers_too_large")
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=gbk"} {
		wantProblem(t, "Content-Type "+ct, a.do(http.MethodPost, "/v1/checks", tok, ct, body(`{`+sub+`,"action":"`+action+`"}`)),
			http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	wantProblem(t, `"Action"`, a.do(http.MethodPost, "/v1/checks", tok, "application/json", body(`{`+sub+`,"Action":"`+action+`"}`)),
		http.StatusBadRequest, "invalid_json")
	wantProblem(t, "a duplicate action", a.do(http.MethodPost, "/v1/checks", tok, "application/json",
		body(`{`+sub+`,"action":"bank_credit","action":"`+action+`"}`)), http.StatusBadRequest, "duplicate_field")
	wantProblem(t, "invalid UTF-8 in reference", a.do(http.MethodPost, "/v1/checks", tok, "application/json",
		body(`{`+sub+`,"action":"`+action+`","reference":"`+"\xb2\xe2"+`"}`)), http.StatusBadRequest, "invalid_utf8")
	wantProblem(t, "a lone surrogate in reference", a.do(http.MethodPost, "/v1/checks", tok, "application/json",
		body(`{`+sub+`,"action":"`+action+`","reference":"\udfff"}`)), http.StatusBadRequest, "invalid_utf8")

	a.mustCheck(t, tok, s)
}
