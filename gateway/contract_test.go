package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"
)

// specPath is openapi.yaml at the repository root, relative to this
// package's directory (where go test runs).
var specPath = filepath.Join("..", "openapi.yaml")

// contract is openapi.yaml, parsed once for the whole test binary.
type contract struct {
	raw       []byte
	doc       libopenapi.Document
	model     *v3.Document
	validator validator.Validator
	routes    []specRoute
	// mu serialises validations: the validator's caches are shared.
	mu sync.Mutex
}

// specRoute is one path template of the spec, compiled for matching. Path
// matching is done here and not by the library: libopenapi-validator
// v0.16.3 matches literal colons (/v1/checks:batch) but not a literal
// after a parameter in the same segment (/v1/admin/entries/{id}:revoke,
// which it takes for /v1/admin/entries/{id}). The library validates the
// bodies, statuses, content types and headers of the operation found here.
type specRoute struct {
	template string
	re       *regexp.Regexp
	literals int // characters outside parameters: more is more specific
	item     *v3.PathItem
}

var (
	contractOnce sync.Once
	contractVal  *contract
	contractErr  error
)

// loadContract parses openapi.yaml once.
func loadContract() (*contract, error) {
	contractOnce.Do(func() { contractVal, contractErr = parseContract(specPath) })
	return contractVal, contractErr
}

func parseContract(path string) (*contract, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build model of %s: %w", path, err)
	}
	v, errs := validator.NewValidator(doc,
		config.WithFormatAssertions(),
		config.WithURLEncodedBodyValidation(),
	)
	if len(errs) > 0 {
		return nil, fmt.Errorf("validator for %s: %v", path, errs)
	}
	c := &contract{raw: raw, doc: doc, model: &m.Model, validator: v}
	if m.Model.Paths == nil || m.Model.Paths.PathItems == nil {
		return nil, fmt.Errorf("%s has no paths", path)
	}
	for tmpl, item := range m.Model.Paths.PathItems.FromOldest() {
		re, literals, err := compileTemplate(tmpl)
		if err != nil {
			return nil, err
		}
		c.routes = append(c.routes, specRoute{template: tmpl, re: re, literals: literals, item: item})
	}
	return c, nil
}

var templateParam = regexp.MustCompile(`\{[^{}/]+\}`)

// compileTemplate turns /v1/admin/entries/{id}:revoke into
// ^/v1/admin/entries/([^/]+):revoke$.
func compileTemplate(tmpl string) (*regexp.Regexp, int, error) {
	var b strings.Builder
	b.WriteString("^")
	literals, last := 0, 0
	for _, loc := range templateParam.FindAllStringIndex(tmpl, -1) {
		b.WriteString(regexp.QuoteMeta(tmpl[last:loc[0]]))
		literals += loc[0] - last
		if tmpl[loc[0]:loc[1]] == "{tile_index}" {
			// A tlog-tiles index spans segments (x001/x234/067.p/8).
			b.WriteString("(.+)")
		} else {
			b.WriteString("([^/]+)")
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(tmpl[last:]))
	literals += len(tmpl) - last
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, 0, fmt.Errorf("path template %q: %w", tmpl, err)
	}
	return re, literals, nil
}

// operation returns the operation of an item for a method, or nil.
func operation(item *v3.PathItem, method string) *v3.Operation {
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	case http.MethodDelete:
		return item.Delete
	case http.MethodHead:
		return item.Head
	case http.MethodOptions:
		return item.Options
	case http.MethodTrace:
		return item.Trace
	}
	return nil
}

// find returns the most specific route whose template matches path and
// that has an operation for method; else (nil, true) when some template
// matches the path but none has the method, or (nil, false).
func (c *contract) find(method, path string) (route *specRoute, pathKnown bool) {
	for i := range c.routes {
		r := &c.routes[i]
		if !r.re.MatchString(path) {
			continue
		}
		pathKnown = true
		if operation(r.item, method) == nil {
			continue
		}
		if route == nil || r.literals > route.literals {
			route = r
		}
	}
	return route, pathKnown
}

// refusal is what the spec says about a request it does not describe:
// an unknown path answers 404 and a known path with an unknown method 405
// (gin's NoRoute / NoMethod), both as problems. An operation reached with
// an unknown verb (POST /v1/admin/entries/{id}:frobnicate) is refused by
// the server after authentication, so 401 and 403 are refusals too.
func (c *contract) refusal(status int) string {
	switch status {
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	}
	return ""
}

// validateContract checks one exchange against openapi.yaml: the path and
// method must be in the spec, the status documented for the operation, the
// content type documented for that status, and the body valid against its
// schema (response headers declared required must be present and valid).
// The request body and query are validated too when the answer is 2xx (a
// request that the server accepted must be one the spec allows; rejected
// requests are often malformed on purpose).
func validateContract(t *testing.T, method, path, contentType string, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Errorf("contract: %v", err)
		return
	}
	if msg := c.check(method, path, contentType, reqBody, status, header, body); msg != "" {
		t.Error(msg)
	}
}

// check is validateContract without the test: it returns what does not
// match, or "".
func (c *contract) check(method, path, contentType string, reqBody []byte, status int, header http.Header, body []byte) string {
	req := httptest.NewRequest(method, path, bytes.NewReader(reqBody))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp := &http.Response{
		StatusCode: status, Header: header.Clone(), Request: req,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}

	route, pathKnown := c.find(method, req.URL.Path)
	if route == nil {
		return c.checkRefusal(method, path, status, pathKnown, req, resp, body)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var problems []*valerrors.ValidationError
	if streamed(header.Get("Content-Type")) {
		// A line-oriented download (screening results): its lines are
		// described in prose; the status and route are still checked.
		resp.Body = io.NopCloser(strings.NewReader(""))
		resp.Header.Set("Content-Type", "text/csv")
	}
	_, errs := c.validator.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(req, resp, route.item, route.template)
	problems = append(problems, errs...)
	if status >= 200 && status < 300 {
		problems = append(problems, c.validateRequest(method, path, contentType, reqBody, route)...)
	}
	if len(problems) > 0 {
		return fmt.Sprintf("contract: %s %s → %d (spec %s %s) does not match openapi.yaml:\n%s\nresponse body: %s",
			method, path, status, method, route.template, formatErrors(problems), truncate(body, 2000))
	}
	return ""
}

// validateRequest validates the body (when the operation has one) and the
// query parameters of an accepted request.
func (c *contract) validateRequest(method, path, contentType string, reqBody []byte, route *specRoute) []*valerrors.ValidationError {
	var problems []*valerrors.ValidationError
	op := operation(route.item, method)
	if op.RequestBody != nil && len(reqBody) > 0 && !streamed(contentType) {
		ct := contentType
		if ct == "" && op.RequestBody.Content != nil && op.RequestBody.Content.Len() == 1 {
			// The JSON endpoints ignore Content-Type: validate as the one
			// media type the operation declares.
			ct = op.RequestBody.Content.First().Key()
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(reqBody))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		_, errs := c.validator.GetRequestBodyValidator().ValidateRequestBodyWithPathItem(req, route.item, route.template)
		problems = append(problems, errs...)
	}
	if strings.Contains(path, "?") {
		req := httptest.NewRequest(method, path, nil)
		_, errs := c.validator.GetParameterValidator().ValidateQueryParamsWithPathItem(req, route.item, route.template)
		problems = append(problems, errs...)
	}
	return problems
}

// streamed reports whether a request body is a line-oriented import file
// (CSV, NDJSON): the spec describes its lines in prose, since no schema
// can describe the whole. (The library would decode NDJSON as one JSON
// document because its media type contains "json".)
func streamed(contentType string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	switch strings.TrimSpace(mt) {
	case "text/csv", "application/x-ndjson", "application/jsonl":
		return true
	}
	return false
}

// checkRefusal checks an exchange whose method and path the spec does not
// describe: only a refusal is acceptable, as a problem.
func (c *contract) checkRefusal(method, path string, status int, pathKnown bool, req *http.Request, resp *http.Response, body []byte) string {
	what := "path"
	if pathKnown {
		what = "method"
	}
	name := c.refusal(status)
	if name == "" {
		return fmt.Sprintf("contract: %s %s → %d: the %s is not in openapi.yaml, yet the server did not refuse it (404/405)",
			method, path, status, what)
	}
	r, ok := c.model.Components.Responses.Get(name)
	if !ok || r.Content == nil {
		return "contract: openapi.yaml lacks components.responses." + name
	}
	if method == http.MethodHead {
		return "" // no body to check
	}
	// Validate against the shared response through a synthetic GET
	// operation that answers status with it.
	codes := orderedmap.New[string, *v3.Response]()
	codes.Set(strconv.Itoa(status), r)
	item := &v3.PathItem{Get: &v3.Operation{Responses: &v3.Responses{Codes: codes}}}
	req = req.Clone(req.Context())
	req.Method = http.MethodGet
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, errs := c.validator.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(req, resp, item, "(unknown route)"); len(errs) > 0 {
		return fmt.Sprintf("contract: %s %s → %d (refused %s) does not match components.responses.%s:\n%s\nresponse body: %s",
			method, path, status, what, name, formatErrors(errs), truncate(body, 2000))
	}
	return ""
}

func formatErrors(errs []*valerrors.ValidationError) string {
	var lines []string
	for _, e := range errs {
		line := "  - " + e.Message
		if e.Reason != "" && e.Reason != e.Message {
			line += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			loc := f.FieldPath
			if loc == "" {
				loc = "/" + strings.Join(f.InstancePath, "/")
			}
			line += fmt.Sprintf("\n      at %s: %s (%s)", loc, f.Reason, f.KeywordLocation)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// TestContractValidator shows that validateContract catches what it is
// for: each bad exchange must be reported, each good one must pass.
func TestContractValidator(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	answer := func(mod func(m map[string]any)) []byte {
		m := map[string]any{
			"check_id": "01a21d8c-093d-7457-b696-fd5f540357ab", "partner": "cg_22785234552a496e9e938ffaa4d7d216",
			"subject": map[string]any{"id": "914403001922038216", "kind": "organization"},
			"action":  "administrative_licensing", "outcome": "clear", "measures": []any{}, "entries": []any{},
			"catalog_revision": "cat-bcb591f317d49f73", "data_as_of": "2026-11-27T15:07:26Z", "checked_at": "2026-11-27T15:07:26Z",
			"receipt": map[string]any{"log_index": 0,
				"record_hash": "64f268fcbf15f3e795ee414ff2668a9f11738ad91f5d065e80d121e3bb5e7863",
				"leaf_hash":   "467093fd4b2fa1477216cc72c39f21312b1ea6a35668cba81a779f26242e623b"},
		}
		if mod != nil {
			mod(m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	measure := func(mod map[string]any) map[string]any {
		m := map[string]any{"id": "m", "list": "l", "effect": "restrict", "mandatory": true, "status": "applied", "text": "t",
			"legal_basis": "b", "authority": "a", "source": "s", "entry_id": "ent_1"}
		for k, v := range mod {
			m[k] = v
		}
		return m
	}
	jsonHdr := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"abc"}}
	probHdr := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}}
	problemBody := func(code string, status int) []byte {
		return []byte(fmt.Sprintf(`{"type":"urn:credgate:problem:%s","title":"t","status":%d,"code":%q,"request_id":"abc"}`, code, status, code))
	}
	checkReq := []byte(`{"subject":{"id":"914403001922038216"},"action":"administrative_licensing"}`)
	entry := `{"id":"ent_01a21d8bf8a27e9b8fb545237140f20d","subject_id":"914403001922038216","subject_kind":"organization","list":"l","status":"active","originating_department":"a","reason":"b","legal_basis":"c","evidence_refs":[],"decided_at":"2025-02-28T16:00:00Z","published_at":"2025-03-04T16:00:00Z",%s"responsible_persons":[],"objections":[],"repairs":[],"exits":[],"created_at":"2026-11-27T15:07:22.146957Z","updated_at":"2026-11-27T15:07:22.146957Z","version":1}`
	cases := []struct {
		name             string
		method, path, ct string
		req              []byte
		status           int
		header           http.Header
		body             []byte
		mismatch         bool
	}{
		{"good check", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr, answer(nil), false},
		{"good check without content type", "POST", "/v1/checks", "", checkReq, 200, jsonHdr, answer(nil), false},
		{"outcome not in enum", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["outcome"] = "maybe" }), true},
		{"missing receipt", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { delete(m, "receipt") }), true},
		{"bad date-time", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["data_as_of"] = "yesterday" }), true},
		{"unverifiable without why", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["outcome"] = "unverifiable" }), true},
		{"accepted request with unknown field", "POST", "/v1/checks", "application/json",
			[]byte(`{"subject":{"id":"x"},"action":"a","foo":1}`), 200, jsonHdr, answer(nil), true},
		{"rejected request with unknown field", "POST", "/v1/checks", "application/json",
			[]byte(`{"subject":{"id":"x"},"action":"a","foo":1}`), 400, probHdr, problemBody("invalid_json", 400), false},
		{"undocumented status", "GET", "/v1/catalog", "", nil, 418, jsonHdr, []byte(`{}`), true},
		{"undocumented content type", "GET", "/v1/checks/abc", "", nil, 404,
			http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {"abc"}}, []byte(`<html>`), true},
		{"no request id", "GET", "/v1/checks/abc", "", nil, 404,
			http.Header{"Content-Type": {"application/problem+json"}}, problemBody("not_found", 404), true},
		{"401 without challenge", "GET", "/v1/catalog", "", nil, 401, probHdr, problemBody("missing_token", 401), true},
		{"401 with challenge", "GET", "/v1/catalog", "", nil, 401,
			http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}, "Www-Authenticate": {`Bearer realm="credgate"`}},
			problemBody("missing_token", 401), false},
		{"unknown problem code", "GET", "/v1/checks/abc", "", nil, 404, probHdr, problemBody("nope", 404), true},
		{"unknown path answered", "GET", "/v1/nope", "", nil, 200, jsonHdr, []byte(`{}`), true},
		{"unknown path refused", "GET", "/v1/nope", "", nil, 404, probHdr, problemBody("not_found", 404), false},
		{"unknown method refused", "DELETE", "/v1/checks", "", nil, 405,
			http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}, "Allow": {"POST"}},
			problemBody("method_not_allowed", 405), false},
		{"unknown method refused badly", "DELETE", "/v1/checks", "", nil, 405,
			http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"abc"}, "Allow": {"POST"}},
			[]byte(`{"title":"x"}`), true},
		{"verb path", "POST", "/v1/admin/entries/ent_1:revoke", "", nil, 409, probHdr, problemBody("entry_revoked", 409), false},
		{"literal colon path", "POST", "/v1/checks:batch", "", nil, 413, probHdr, problemBody("batch_too_large", 413), false},
		{"accepted query out of range", "GET", "/v1/admin/entries?limit=5000", "", nil, 200, jsonHdr, []byte(`{"entries":[]}`), true},
		{"entry without valid_until", "GET", "/v1/admin/entries", "", nil, 200, jsonHdr,
			[]byte(`{"entries":[` + fmt.Sprintf(entry, "") + `]}`), true},
		{"entry with null valid_until", "GET", "/v1/admin/entries", "", nil, 200, jsonHdr,
			[]byte(`{"entries":[` + fmt.Sprintf(entry, `"valid_until":null,`) + `]}`), false},
		{"accepted form with other grant", "POST", "/v1/oauth/token", "application/x-www-form-urlencoded",
			[]byte("grant_type=password&client_id=a"), 200,
			http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"abc"}, "Cache-Control": {"no-store"}},
			[]byte(`{"access_token":"x","token_type":"Bearer","expires_in":900}`), true},
		{"token without no-store", "POST", "/v1/oauth/token", "application/x-www-form-urlencoded",
			[]byte("grant_type=client_credentials&client_id=a&client_secret=b"), 200, jsonHdr,
			[]byte(`{"access_token":"x","token_type":"Bearer","expires_in":900}`), true},
		{"measure not applicable with its reason and scope", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) {
				m["measures"] = []any{measure(map[string]any{"status": "not_applicable", "reason": "applies only in 370100 济南市",
					"scope": map[string]any{"regions": []any{"370100"}, "source": "篇十"}})}
				m["context"] = map[string]any{"region": "440300"}
			}), false},
		{"eligibility measure without an entry", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) {
				mm := measure(map[string]any{"basis": "eligibility", "effect": "incentive"})
				delete(mm, "entry_id")
				m["measures"] = []any{mm}
			}), false},
		{"eligibility measure with an entry", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["measures"] = []any{measure(map[string]any{"basis": "eligibility"})} }), true},
		{"measure without entry or basis", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) {
				mm := measure(nil)
				delete(mm, "entry_id")
				m["measures"] = []any{mm}
			}), true},
		{"unknown measure status", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["measures"] = []any{measure(map[string]any{"status": "ignored"})} }), true},
		{"bad region in the recorded context", "POST", "/v1/checks", "application/json", checkReq, 200, jsonHdr,
			answer(func(m map[string]any) { m["context"] = map[string]any{"region": "4403"} }), true},
		{"accepted request with a malformed region", "POST", "/v1/checks", "application/json",
			[]byte(`{"subject":{"id":"914403001922038216"},"action":"administrative_licensing","context":{"region":"4403"}}`), 200, jsonHdr, answer(nil), true},
		{"accepted request with an unknown context field", "POST", "/v1/checks", "application/json",
			[]byte(`{"subject":{"id":"914403001922038216"},"action":"administrative_licensing","context":{"regoin":"440300"}}`), 200, jsonHdr, answer(nil), true},
		{"accepted request with context and valid_at", "POST", "/v1/checks", "application/json",
			[]byte(`{"subject":{"id":"914403001922038216"},"action":"administrative_licensing","context":{"region":"440300","industry":"coal_mining"},"valid_at":"2026-03-05T10:00:00+08:00"}`),
			200, jsonHdr, answer(func(m map[string]any) { m["valid_at"] = "2026-03-05T02:00:00Z" }), false},
		{"region outside the jurisdiction", "POST", "/v1/checks", "application/json", checkReq, 403, probHdr,
			problemBody("region_outside_jurisdiction", 403), false},
		{"import file not validated as JSON", "POST", "/v1/admin/entries:import", "application/x-ndjson",
			[]byte("{\"a\":1}\n{\"b\":2}\n"), 201, jsonHdr, []byte(`{"imported":2,"ids":["a","b"]}`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := c.check(tc.method, tc.path, tc.ct, tc.req, tc.status, tc.header, tc.body)
			if tc.mismatch && msg == "" {
				t.Errorf("%s %s → %d: mismatch not reported", tc.method, tc.path, tc.status)
			}
			if !tc.mismatch && msg != "" {
				t.Errorf("reported a good exchange:\n%s", msg)
			}
		})
	}
}
