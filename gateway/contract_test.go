package gateway_test

import (
	"bytes"
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
// matching is done here and not by the library so that templates with a
// literal after a parameter in the same segment ({id}:revoke) and literal
// colons (/v1/checks:batch) match exactly as the gin router serves them.
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
		b.WriteString("([^/]+)")
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
		c.validateRefusal(t, method, path, status, pathKnown, req, resp)
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var problems []*valerrors.ValidationError
	_, errs := c.validator.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(req, resp, route.item, route.template)
	problems = append(problems, errs...)
	if status >= 200 && status < 300 {
		problems = append(problems, c.validateRequest(method, path, contentType, reqBody, route)...)
	}
	if len(problems) > 0 {
		t.Errorf("contract: %s %s → %d (spec %s %s) does not match openapi.yaml:\n%s\nresponse body: %s",
			method, path, status, method, route.template, formatErrors(problems), truncate(body, 2000))
	}
}

// validateRequest validates the body (when the operation has one) and the
// query parameters of an accepted request.
func (c *contract) validateRequest(method, path, contentType string, reqBody []byte, route *specRoute) []*valerrors.ValidationError {
	var problems []*valerrors.ValidationError
	op := operation(route.item, method)
	if op.RequestBody != nil && len(reqBody) > 0 {
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

// validateRefusal checks an exchange whose method and path the spec does
// not describe: only a refusal is acceptable, as a problem.
func (c *contract) validateRefusal(t *testing.T, method, path string, status int, pathKnown bool, req *http.Request, resp *http.Response) {
	t.Helper()
	what := "path"
	if pathKnown {
		what = "method"
	}
	name := c.refusal(status)
	if name == "" {
		t.Errorf("contract: %s %s → %d: the %s is not in openapi.yaml, yet the server did not refuse it (404/405)",
			method, path, status, what)
		return
	}
	r, ok := c.model.Components.Responses.Get(name)
	if !ok || r.Content == nil {
		t.Errorf("contract: openapi.yaml lacks components.responses.%s", name)
		return
	}
	if method == http.MethodHead {
		return // no body to check
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
		t.Errorf("contract: %s %s → %d (refused %s) does not match components.responses.%s:\n%s",
			method, path, status, what, name, formatErrors(errs))
	}
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
