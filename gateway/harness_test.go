package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// harness runs the whole gateway over a real SQLite store in a temp dir.
// Every response it sees is checked against openapi.yaml.
type harness struct {
	t        *testing.T
	server   *gateway.Server
	handler  http.Handler
	store    service.Store
	catalog  *policy.Catalog
	tokens   *access.Tokens
	key      ed25519.PrivateKey
	adminTok string
	// evidence is the evidence log behind /v1/evidence (evidence_test.go).
	evidence *evidence.Log
	dir      string // the SQLite store's directory
}

const (
	adminID     = "admin"
	adminSecret = "admin-secret-for-tests-0123456789"
)

// harnessConfig is what harness options change (access_test.go).
type harnessConfig struct {
	gateway []gateway.Option
	tokens  []access.Option
	// catalog replaces the bundled catalogue (scope_test.go).
	catalog *policy.Catalog
	checker []service.CheckerOption // tracing_test.go
	// store replaces the SQLite store (records_test.go runs on PostgreSQL too).
	store service.Store
	// wrap decorates the store every component reads (storewait_test.go).
	wrap func(service.Store) service.Store
	// followUpNow is the clock of feedback, statistics and commitments
	// (followup_test.go); nil: time.Now.
	followUpNow func() time.Time
	// checkLog is the log checks append to, given the appender and the
	// store (spool_test.go); default: the appender.
	checkLog func(*evidence.Appender, service.Store) service.EvidenceLog
	// services adds options built over the raw store, the catalogue and
	// the audit (events_test.go).
	services func(raw service.Store, cat *policy.Catalog, audit *service.Audit) []gateway.Option
	// screenings runs screening jobs (screenings_test.go), with
	// screeningOpts.
	screenings    bool
	screeningOpts []service.ScreeningsOption
}

// harnessOption configures newHarness.
type harnessOption func(*harnessConfig)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	var hc harnessConfig
	for _, o := range opts {
		o(&hc)
	}
	ctx := context.Background()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if hc.catalog != nil {
		cat = hc.catalog
	}
	dir := t.TempDir()
	raw := hc.store
	if raw == nil {
		sqlitetest.Seed(t, dir)
		if raw, err = sqlite.Open(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	var st service.Store = raw
	if hc.wrap != nil {
		st = hc.wrap(raw)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(func() {
		app.Close()
		raw.Close()
	})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	// Administrative acts are recorded through the checks' appender, as
	// serve wires it.
	audit := service.NewAudit(app)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(audit), service.WithSecretCost(testenv.SecretCost()))
	if _, err := partners.EnsureAdmin(ctx, adminID, adminSecret); err != nil {
		t.Fatal(err)
	}
	tokens := access.NewTokens(key, hc.tokens...)
	evlog := newTestEvidenceLog(t, st)
	hc.gateway = append(hc.gateway, gateway.WithEvidence(evlog, service.NewReceipts(st, evlog)))
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(audit))
	// The lifecycle (objections, repairs, violation records) and answers as
	// of a past time, as serve wires them.
	lifecycle := service.NewLifecycle(entries, st)
	hc.gateway = append(hc.gateway, gateway.WithLifecycle(lifecycle))
	var checkLog service.EvidenceLog = app
	if hc.checkLog != nil {
		checkLog = hc.checkLog(app, st)
	}
	checker := service.NewChecker(cat, st, checkLog, st, append(hc.checker, service.WithHistory(st), service.WithReceiptBuilder(evlog))...)
	// Feedback, statistics, coverage and commitments, as serve wires them.
	if fs, ok := raw.(service.FollowUpStore); ok {
		now := hc.followUpNow
		if now == nil {
			now = time.Now
		}
		fb := service.NewFeedback(checker, app, fs, service.WithFeedbackClock(now))
		hc.gateway = append([]gateway.Option{gateway.WithFollowUp(fb, service.NewStats(cat, fs, service.WithStatsClock(now), service.WithStatsAudit(audit)),
			service.NewCoverage(cat, fs, audit), service.NewCommitments(fb, lifecycle))}, hc.gateway...)
	}
	if hc.services != nil {
		hc.gateway = append(hc.gateway, hc.services(raw, cat, audit)...)
	}
	if hc.screenings {
		sc := service.NewScreenings(checker, st, dir+"/screenings", hc.screeningOpts...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sc.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		hc.gateway = append(hc.gateway, gateway.WithScreenings(sc))
	}
	srv := gateway.New(checker, entries, partners, tokens,
		append([]gateway.Option{gateway.WithReadiness("sqlite", st), gateway.WithActs(service.NewActs(st))}, hc.gateway...)...)
	h := &harness{t: t, server: srv, handler: srv.Handler(), store: st, catalog: cat, tokens: tokens, key: key, evidence: evlog, dir: dir}
	h.adminTok = h.token(adminID, adminSecret)
	return h
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// do sends a request to the handler and checks the answer against the
// API contract.
func (h *harness) do(method, path, token, contentType string, body []byte) response {
	h.t.Helper()
	return h.doFrom("", method, path, token, contentType, body)
}

// doFrom is do from a given client address (empty: httptest's), with
// optional HTTP Basic credentials.
func (h *harness) doFrom(remote, method, path, token, contentType string, body []byte, basic ...string) response {
	h.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if remote != "" {
		req.RemoteAddr = remote
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return h.send(req, body)
}

// send serves req (whose body is body) and validates the exchange against
// the contract, as every request of the harness is.
func (h *harness) send(req *http.Request, body []byte) response {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	validateContract(h.t, req.Method, req.URL.RequestURI(), req.Header.Get("Content-Type"), body, res.StatusCode, res.Header, b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (h *harness) doJSON(method, path, token string, v any) response {
	h.t.Helper()
	var body []byte
	switch b := v.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return h.do(method, path, token, ct, body)
}

func (h *harness) token(id, secret string) string {
	h.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	res := h.do(http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if res.Status != http.StatusOK {
		h.t.Fatalf("token: %d %s", res.Status, res.Body)
	}
	tok, _ := res.json(h.t)["access_token"].(string)
	if tok == "" {
		h.t.Fatalf("no access_token in %s", res.Body)
	}
	return tok
}

// partner registers a partner for actions and returns its token.
func (h *harness) partner(name string, actions ...string) (clientID, token string) {
	h.t.Helper()
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": name, "actions": actions})
	if res.Status != http.StatusCreated {
		h.t.Fatalf("create partner: %d %s", res.Status, res.Body)
	}
	m := res.json(h.t)
	id, secret := m["client_id"].(string), m["client_secret"].(string)
	return id, h.token(id, secret)
}

// problemCode asserts a problem+json answer with status and code.
func problemCode(t *testing.T, res response, status int, code string) map[string]any {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	m := res.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s: %s", m["code"], code, res.Body)
	}
	return m
}
