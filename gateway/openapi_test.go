package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// TestOpenAPIDocument checks openapi.yaml itself: it is OpenAPI 3.1 and
// valid against the 3.1 schema, its examples match their schemas, every
// operation is complete, and its routes are exactly the routes the gin
// engine mounts.
func TestOpenAPIDocument(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.model.Version, "3.1.") {
		t.Errorf("openapi is %q, want 3.1.x", c.model.Version)
	}
	if ok, errs := c.validator.ValidateDocument(); !ok {
		t.Errorf("openapi.yaml is not a valid OpenAPI 3.1 document:\n%s", formatErrors(errs))
	}

	t.Run("schemas", func(t *testing.T) { checkSchemas(t, c) })
	t.Run("examples", func(t *testing.T) { checkExamples(t, c) })
	t.Run("operations", func(t *testing.T) { checkOperations(t, c) })
	t.Run("routes", func(t *testing.T) { checkRoutes(t, c) })
}

// publicEvidence are the evidence routes anyone may call: an auditor must
// be able to fetch keys, checkpoints and consistency proofs without
// credgate's leave (gateway/evidence.go).
var publicEvidence = map[string]bool{
	"/v1/evidence/keys": true, "/v1/evidence/checkpoint": true, "/v1/evidence/consistency": true,
	"/v1/evidence/tlog/checkpoint": true, "/v1/evidence/tlog/tile/{level}/{tile_index}": true,
}

// specOps lists "METHOD template" for every operation of the spec.
func specOps(c *contract) map[string]*v3.Operation {
	ops := map[string]*v3.Operation{}
	for _, r := range c.routes {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
			http.MethodDelete, http.MethodHead, http.MethodOptions, http.MethodTrace} {
			if op := operation(r.item, m); op != nil {
				ops[m+" "+r.template] = op
			}
		}
	}
	return ops
}

// checkSchemas compiles every component schema as JSON Schema 2020-12
// (the OpenAPI 3.1 document schema does not look inside Schema Objects), so
// a misspelt type or a malformed pattern fails here and not at the first
// exchange that needs it.
func checkSchemas(t *testing.T, c *contract) {
	opts := config.NewValidationOptions(config.WithFormatAssertions())
	n := 0
	for name, proxy := range c.model.Components.Schemas.FromOldest() {
		s := proxy.Schema()
		if s == nil {
			t.Errorf("components.schemas.%s: %v", name, proxy.GetBuildError())
			continue
		}
		if _, err := schema_validation.CompileSchemaForValidation(s, schema_validation.SchemaValidationPurposeGeneric, opts, 3.1); err != nil {
			t.Errorf("components.schemas.%s does not compile: %v", name, err)
		}
		n++
	}
	if n == 0 {
		t.Error("no component schemas")
	}
}

// checkExamples validates every request and response example against its
// media type's schema.
func checkExamples(t *testing.T, c *contract) {
	sv := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	check := func(where string, mt *v3.MediaType) {
		if mt == nil || mt.Schema == nil {
			return
		}
		schema := mt.Schema.Schema()
		examples := map[string]any{}
		if mt.Example != nil {
			var v any
			if err := mt.Example.Decode(&v); err != nil {
				t.Errorf("%s: example: %v", where, err)
			}
			examples["example"] = v
		}
		if mt.Examples != nil {
			for name, ex := range mt.Examples.FromOldest() {
				var v any
				if err := ex.Value.Decode(&v); err != nil {
					t.Errorf("%s: example %s: %v", where, name, err)
				}
				examples["examples."+name] = v
			}
		}
		for name, v := range examples {
			b, err := json.Marshal(v)
			if err != nil {
				t.Errorf("%s: %s: %v", where, name, err)
				continue
			}
			if ok, errs := sv.ValidateSchemaBytesWithVersion(schema, b, 3.1); !ok {
				t.Errorf("%s: %s does not match its schema:\n%s", where, name, formatErrors(errs))
			}
		}
	}
	for key, op := range specOps(c) {
		if op.RequestBody != nil && op.RequestBody.Content != nil {
			for ct, mt := range op.RequestBody.Content.FromOldest() {
				check(key+" request "+ct, mt)
			}
		}
		if op.Responses == nil || op.Responses.Codes == nil {
			continue
		}
		for code, r := range op.Responses.Codes.FromOldest() {
			if r.Content == nil {
				continue
			}
			for ct, mt := range r.Content.FromOldest() {
				check(key+" "+code+" "+ct, mt)
			}
		}
	}
}

// checkOperations asserts what every operation must have: an id, a
// description of some kind, a 500, and for the authenticated routes
// bearer security and a 401 with the challenge.
func checkOperations(t *testing.T, c *contract) {
	ids := map[string]string{}
	for key, op := range specOps(c) {
		if op.OperationId == "" {
			t.Errorf("%s: no operationId", key)
		} else if prev, dup := ids[op.OperationId]; dup {
			t.Errorf("%s: operationId %q also used by %s", key, op.OperationId, prev)
		}
		ids[op.OperationId] = key
		if op.Summary == "" {
			t.Errorf("%s: no summary", key)
		}
		if op.Responses == nil || op.Responses.Codes == nil {
			t.Errorf("%s: no responses", key)
			continue
		}
		if _, ok := op.Responses.Codes.Get("500"); !ok {
			t.Errorf("%s: no 500 response", key)
		}
		path := strings.SplitN(key, " ", 2)[1]
		public := !strings.HasPrefix(path, "/v1/") || path == "/v1/oauth/token" || publicEvidence[path]
		authed := op.Security == nil // inherits the document's bearerAuth
		if public == authed {
			t.Errorf("%s: public=%v but the operation's security says authenticated=%v", key, public, authed)
		}
		if authed {
			for _, code := range []string{"401", "429"} {
				if _, ok := op.Responses.Codes.Get(code); !ok {
					t.Errorf("%s: authenticated but no %s response", key, code)
				}
			}
		}
		if strings.HasPrefix(path, "/v1/admin/") {
			if _, ok := op.Responses.Codes.Get("403"); !ok {
				t.Errorf("%s: admin route without a 403 response", key)
			}
		}
		for code, r := range op.Responses.Codes.FromOldest() {
			if r.Headers == nil {
				t.Errorf("%s %s: X-Request-Id header not declared", key, code)
				continue
			}
			if _, ok := r.Headers.Get("X-Request-Id"); !ok {
				t.Errorf("%s %s: X-Request-Id header not declared", key, code)
			}
		}
	}
	if len(c.model.Security) != 1 || c.model.Security[0].Requirements == nil {
		t.Errorf("the document's default security should be bearerAuth alone")
	} else if _, ok := c.model.Security[0].Requirements.Get("bearerAuth"); !ok {
		t.Errorf("the document's default security should be bearerAuth")
	}
	var problem *base.Schema
	if p, ok := c.model.Components.Schemas.Get("Problem"); ok {
		problem = p.Schema()
	}
	if problem == nil {
		t.Fatal("no Problem schema")
	}
	// Every code of the table is in the enum and vice versa.
	var enum []string
	if code, ok := problem.Properties.Get("code"); ok {
		for _, n := range code.Schema().Enum {
			enum = append(enum, n.Value)
		}
	}
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|").FindAllStringSubmatch(problem.Description, -1) {
		table = append(table, m[1])
	}
	sort.Strings(enum)
	sort.Strings(table)
	if !slices.Equal(enum, table) || len(enum) == 0 {
		t.Errorf("Problem: code enum %v and description table %v differ", enum, table)
	}
	// The codes the gateway answers with: TestProblemCodesMatchContract.
}

// checkRoutes compares the gin engine's routes with the spec's paths.
func checkRoutes(t *testing.T, c *contract) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Screening routes are mounted only with the service; it is not called.
	h := gateway.New(nil, nil, nil, access.NewTokens(key), gateway.WithNoopEndpoint(),
		gateway.WithScreenings(service.NewScreenings(nil, nil, t.TempDir()))).Handler()
	engine, ok := h.(interface{ Routes() gin.RoutesInfo })
	if !ok {
		t.Fatalf("Handler() is a %T, which does not list its routes", h)
	}
	served := map[string]bool{}
	for _, r := range engine.Routes() {
		for _, p := range ginToSpec(r.Method, r.Path) {
			served[r.Method+" "+p] = true
		}
	}
	documented := map[string]bool{}
	for k := range specOps(c) {
		documented[k] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is served but not in openapi.yaml", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("operation %s is in openapi.yaml but not served", k)
		}
	}
}

var ginParam = regexp.MustCompile(`(^|/)[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// verbRoutes are the gin routes that serve {param}:verb paths: gin cannot
// route a literal after a parameter in one segment, so the handler splits
// the verb off the parameter (entryVerb in handlers.go, partnerVerb in
// partners.go). A verb added there must be added here and to the spec.
var verbRoutes = map[string][]string{
	"POST /v1/admin/entries/{id}": {"/v1/admin/entries/{id}:revoke"},
	"POST /v1/admin/partners/{client_id}": {
		"/v1/admin/partners/{client_id}:revoke",
		"/v1/admin/partners/{client_id}:rotate",
	},
	// The tlog-tiles paths have an index that spans segments, so one
	// catch-all route serves both (tlogTile in tlog.go).
	"GET /v1/evidence/tlog/tile/{tile_path}": {
		"/v1/evidence/tlog/tile/{level}/{tile_index}",
		"/v1/evidence/tlog/tile/entries/{tile_index}",
	},
}

// ginToSpec converts a gin route path to the spec paths it serves:
// :param and *param → {param}, an escaped colon \: → a literal colon.
func ginToSpec(method, path string) []string {
	const placeholder = "\x00"
	p := strings.ReplaceAll(path, `\:`, placeholder)
	p = ginParam.ReplaceAllString(p, "$1{$2}")
	p = strings.ReplaceAll(p, placeholder, ":")
	if v, ok := verbRoutes[method+" "+p]; ok {
		return v
	}
	return []string{p}
}

// TestContractSmoke walks every documented route once, mostly along its
// success path, so that each operation's answers are checked against
// openapi.yaml by the harness (validateContract) even where no other test
// calls it.
func TestContractSmoke(t *testing.T) {
	noop := func(hc *harnessConfig) { hc.gateway = append(hc.gateway, gateway.WithNoopEndpoint()) }
	h := newHarness(t, noop)
	want := func(what string, res response, status int) map[string]any {
		t.Helper()
		if res.Status != status {
			t.Errorf("%s: status %d, want %d: %s", what, res.Status, status, res.Body)
			return map[string]any{}
		}
		var m map[string]any
		_ = json.Unmarshal(res.Body, &m)
		return m
	}
	admin := h.adminTok
	const (
		org    = "914403001922038216"
		other  = "91110000MA01ABCDEX"
		person = "11010519491231002X"
	)
	now := time.Now().UTC()
	entry := map[string]any{
		"subject_id": org, "list": "safety_production_blacklist", "originating_department": "深圳市应急管理局",
		"reason": "发生较大生产安全责任事故", "legal_basis": "《安全生产法》", "evidence_refs": []string{"深应急罚〔2026〕17号"},
		"decided_at": now.Add(-72 * time.Hour).Format(time.RFC3339), "published_at": now.Add(-48 * time.Hour).Format(time.RFC3339),
		"responsible_persons": []map[string]string{{"id": person, "role": "legal_representative"}},
	}

	// Operations.
	want("healthz", h.doJSON(http.MethodGet, "/healthz", "", nil), http.StatusOK)
	want("readyz", h.doJSON(http.MethodGet, "/readyz", "", nil), http.StatusOK)
	want("metrics", h.doJSON(http.MethodGet, "/metrics", "", nil), http.StatusOK)
	want("jwks", h.doJSON(http.MethodGet, "/.well-known/jwks.json", "", nil), http.StatusOK)
	want("noop", h.doJSON(http.MethodPost, "/bench/noop", "", map[string]any{"x": 1}), http.StatusOK)
	want("unknown path", h.doJSON(http.MethodGet, "/v1/nope", admin, nil), http.StatusNotFound)
	want("unknown method", h.doJSON(http.MethodDelete, "/v1/checks", admin, nil), http.StatusMethodNotAllowed)
	cat := want("catalog", h.doJSON(http.MethodGet, "/v1/catalog", admin, nil), http.StatusOK)
	want("no token", h.doJSON(http.MethodGet, "/v1/catalog", "", nil), http.StatusUnauthorized)

	// Entries.
	e := want("create entry", h.doJSON(http.MethodPost, "/v1/admin/entries", admin, entry), http.StatusCreated)
	entryID, _ := e["id"].(string)
	want("list entries", h.doJSON(http.MethodGet, "/v1/admin/entries?limit=1&subject_id="+org, admin, nil), http.StatusOK)
	want("get entry", h.doJSON(http.MethodGet, "/v1/admin/entries/"+entryID, admin, nil), http.StatusOK)
	want("patch entry", h.doJSON(http.MethodPatch, "/v1/admin/entries/"+entryID, admin, map[string]any{"reason": "发生较大生产安全责任事故(已核实)"}), http.StatusOK)
	want("empty patch", h.doJSON(http.MethodPatch, "/v1/admin/entries/"+entryID, admin, map[string]any{}), http.StatusBadRequest)
	if got := want("no such entry", h.doJSON(http.MethodGet, "/v1/admin/entries/ent_nope", admin, nil), http.StatusNotFound); got["detail"] != `entry "ent_nope": not found` {
		t.Errorf("a missing entry's detail names more than the entry: %q", got["detail"])
	}
	if got := want("entry after an empty patch", h.doJSON(http.MethodGet, "/v1/admin/entries/"+entryID, admin, nil), http.StatusOK); got["version"] != float64(2) {
		t.Errorf("an empty patch changed the version: %v", got["version"])
	}
	csv := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n" +
		other + ",safety_production_blacklist,应急管理部,事故,《安全生产法》," + now.Add(-72*time.Hour).Format(time.DateOnly) + "," + now.Add(-48*time.Hour).Format(time.DateOnly) + "\n"
	want("import", h.do(http.MethodPost, "/v1/admin/entries:import", admin, "text/csv", []byte(csv)), http.StatusCreated)
	want("import rejected", h.do(http.MethodPost, "/v1/admin/entries:import", admin, "text/csv", []byte("subject_id,list\n")), http.StatusUnprocessableEntity)
	want("import media type", h.do(http.MethodPost, "/v1/admin/entries:import", admin, "application/xml", []byte("<x/>")), http.StatusUnsupportedMediaType)

	// Checks.
	_, tok := h.partner("深圳市南山区行政审批局", "administrative_licensing", "executive_appointment")
	c := want("check", h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{
		"subject": map[string]string{"id": org}, "action": "administrative_licensing", "reference": "SQ-1"}), http.StatusOK)
	checkID, _ := c["check_id"].(string)
	want("check person", h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{
		"subject": map[string]string{"id": person}, "action": "executive_appointment"}), http.StatusOK)
	want("batch", h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{
		"subjects": []map[string]string{{"id": org}, {"id": "914403001922038217"}}, "action": "administrative_licensing"}), http.StatusOK)
	want("get check", h.doJSON(http.MethodGet, "/v1/checks/"+checkID, tok, nil), http.StatusOK)
	want("check as of", h.doJSON(http.MethodPost, "/v1/checks", admin, map[string]any{
		"subject": map[string]string{"id": org}, "action": "administrative_licensing",
		"as_of": now.Add(-time.Hour).Format(time.RFC3339)}), http.StatusOK)
	want("as of by partner", h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{
		"subject": map[string]string{"id": org}, "action": "administrative_licensing",
		"as_of": now.Add(-time.Hour).Format(time.RFC3339)}), http.StatusForbidden)
	want("subject status", h.doJSON(http.MethodGet, "/v1/subjects/"+org+"/status", admin, nil), http.StatusOK)

	// Evidence.
	want("receipt", h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+checkID, tok, nil), http.StatusOK)
	want("evidence keys", h.doJSON(http.MethodGet, "/v1/evidence/keys", "", nil), http.StatusOK)
	cp := h.doJSON(http.MethodGet, "/v1/evidence/checkpoint", "", nil)
	if cp.Status == http.StatusOK {
		size, _ := cp.json(t)["size"].(float64)
		want("consistency", h.doJSON(http.MethodGet, fmt.Sprintf("/v1/evidence/consistency?from=1&to=%d", int(size)), "", nil), http.StatusOK)
		want("leaves", h.doJSON(http.MethodGet, fmt.Sprintf("/v1/evidence/leaves?from=0&to=%d", min(int(size), 5)), admin, nil), http.StatusOK)
	}

	// Lifecycle.
	o := want("file objection", h.doJSON(http.MethodPost, "/v1/admin/entries/"+entryID+"/objections", admin,
		map[string]any{"filed_by": "administrator", "grounds": "当事人提出异议"}), http.StatusCreated)
	objID, _ := o["objection"].(map[string]any)["id"].(string)
	want("list objections", h.doJSON(http.MethodGet, "/v1/admin/objections", admin, nil), http.StatusOK)
	want("decide objection", h.doJSON(http.MethodPost, "/v1/admin/objections/"+objID+"/decision", admin,
		map[string]any{"decision": "rejected", "note": "异议不成立"}), http.StatusOK)
	want("list repairs", h.doJSON(http.MethodGet, "/v1/admin/repairs?state=overdue", admin, nil), http.StatusOK)
	want("list exits", h.doJSON(http.MethodGet, "/v1/admin/exits", admin, nil), http.StatusOK)
	if items, _ := cat["violation_items"].([]any); len(items) > 0 {
		item, _ := items[0].(map[string]any)["id"].(string)
		want("record violation", h.doJSON(http.MethodPost, "/v1/admin/violations", admin, map[string]any{
			"subject_id": other, "item": item, "decided_at": now.Add(-time.Hour).Format(time.RFC3339),
			"department": "城市管理和综合执法局", "reference": "城管罚〔2026〕1号"}), http.StatusCreated)
	}
	want("list violations", h.doJSON(http.MethodGet, "/v1/admin/violations?subject_id="+other, admin, nil), http.StatusOK)
	// Repairs and exits may be refused by the list's rules (422); either
	// answer is checked against the spec.
	if r := h.doJSON(http.MethodPost, "/v1/admin/entries/"+entryID+"/repairs", admin, map[string]any{"grounds": "已完成整改"}); r.Status == http.StatusCreated {
		repID, _ := r.json(t)["repair"].(map[string]any)["id"].(string)
		h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/review", admin, map[string]any{"finding": "整改到位", "recommendation": "approve"})
		h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/decision", admin, map[string]any{"decision": "refused"})
	}
	if r := h.doJSON(http.MethodPost, "/v1/admin/entries/"+entryID+"/exits", admin, map[string]any{"grounds": "期限届满"}); r.Status == http.StatusCreated {
		exitID, _ := r.json(t)["exit"].(map[string]any)["id"].(string)
		h.doJSON(http.MethodPost, "/v1/admin/exits/"+exitID+"/decision", admin, map[string]any{"decision": "refused"})
	}
	want("revoke entry", h.doJSON(http.MethodPost, "/v1/admin/entries/"+entryID+":revoke", admin, map[string]string{"reason": "信用修复完成"}), http.StatusOK)
	want("revoke again", h.doJSON(http.MethodPost, "/v1/admin/entries/"+entryID+":revoke", admin, map[string]string{"reason": "again"}), http.StatusConflict)

	// Partners.
	p := want("create partner", h.doJSON(http.MethodPost, "/v1/admin/partners", admin, map[string]any{
		"name": "某银行", "actions": []string{"bank_credit"}, "subject_kinds": []string{"organization"}, "visibility": "full"}), http.StatusCreated)
	clientID, _ := p["client_id"].(string)
	want("list partners", h.doJSON(http.MethodGet, "/v1/admin/partners?limit=2", admin, nil), http.StatusOK)
	want("get partner", h.doJSON(http.MethodGet, "/v1/admin/partners/"+clientID, admin, nil), http.StatusOK)
	want("patch partner", h.doJSON(http.MethodPatch, "/v1/admin/partners/"+clientID, admin, map[string]any{"rate_limit": "100-M"}), http.StatusOK)
	want("rotate partner", h.doJSON(http.MethodPost, "/v1/admin/partners/"+clientID+":rotate", admin, map[string]any{"overlap_seconds": 60}), http.StatusOK)
	want("revoke partner", h.doJSON(http.MethodPost, "/v1/admin/partners/"+clientID+":revoke", admin, nil), http.StatusOK)
	want("patch revoked partner", h.doJSON(http.MethodPatch, "/v1/admin/partners/"+clientID, admin, map[string]any{"name": "x"}), http.StatusConflict)
	want("unknown verb", h.doJSON(http.MethodPost, "/v1/admin/partners/"+clientID+":frobnicate", admin, nil), http.StatusNotFound)
}
