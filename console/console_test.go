package console_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

const (
	adminID     = "admin"
	adminSecret = "admin-secret-for-tests-0123456789"
)

// harness is the console over real services on a SQLite store.
type harness struct {
	t        *testing.T
	h        http.Handler
	partners *service.Partners
	acts     *service.Acts
	clock    *testenv.Clock
	evlog    *evidence.Log
	tree     console.RecordReader
	checker  *service.Checker
	entries  *service.Entries
}

func newHarness(t *testing.T, opts ...console.Option) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts...)
}

// newHarnessWith is newHarness with the console's dependencies adjusted
// by deps before it is made (a health reader, say).
func newHarnessWith(t *testing.T, deps func(*console.Deps), opts ...console.Option) *harness {
	t.Helper()
	return newHarnessOver(t, func(d *console.Deps, _ harnessBase) {
		if deps != nil {
			deps(d)
		}
	}, opts...)
}

// harnessBase is what a harness's services are built over: the bundled
// catalogue, a SQLite store, its evidence appender and the audit of acts
// on it. A test adds services over the same store with newHarnessOver.
type harnessBase struct {
	cat   *policy.Catalog
	st    *sqlite.Store
	app   *evidence.Appender
	audit *service.Audit
}

// newHarnessOver is newHarnessWith whose deps also sees the store and
// audit the console's services use, to add more over them.
func newHarnessOver(t *testing.T, deps func(*console.Deps, harnessBase), opts ...console.Option) *harness {
	t.Helper()
	ctx := context.Background()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	clk := testenv.NewClock(time.Now())
	audit := service.NewAudit(app)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(audit), service.WithPartnersClock(clk.Now), service.WithPartnerCacheTTL(0),
		service.WithSecretCost(testenv.SecretCost()))
	if _, err := partners.EnsureAdmin(ctx, adminID, adminSecret); err != nil {
		t.Fatal(err)
	}
	evlog := evidence.NewLog(st, testenv.Signer(t, "credgate.test/console"), evidence.WithMinCheckpointGap(0))
	if err := evlog.Start(ctx); err != nil {
		t.Fatal(err)
	}
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(audit))
	checker := service.NewChecker(cat, st, app, st, service.WithHistory(st), service.WithReceiptBuilder(evlog))
	d := console.Deps{Checker: checker, Entries: entries, Lifecycle: service.NewLifecycle(entries, st),
		Partners: partners, Receipts: service.NewReceipts(st, evlog), Evidence: evlog, Records: st}
	if deps != nil {
		deps(&d, harnessBase{cat: cat, st: st, app: app, audit: audit})
	}
	c, err := console.New(d,
		append([]console.Option{console.WithClock(clk.Now), console.WithTimeouts(15*time.Minute, 8*time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api", http.StatusTeapot) })
	return &harness{t: t, h: console.Mount(api, c), partners: partners, acts: service.NewActs(st), clock: clk, evlog: evlog, tree: st,
		checker: checker, entries: entries}
}

// browser is one user agent: its cookies and the last page's CSRF token.
type browser struct {
	h       *harness
	cookies map[string]*http.Cookie
	lang    string
	tls     bool
	// remote is the connection's peer (default httptest's); header is
	// added to every request (a proxy's X-Forwarded-For, say).
	remote string
	header http.Header
}

func (h *harness) browser() *browser { return &browser{h: h, cookies: map[string]*http.Cookie{}} }

type page struct {
	status int
	header http.Header
	body   string
	cookie []*http.Cookie
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token on the page.
func (p page) csrf() string {
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		return m[1]
	}
	return ""
}

func (b *browser) do(method, path string, form url.Values) page {
	b.h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.tls {
		req.TLS = &tls.ConnectionState{}
	}
	if b.remote != "" {
		req.RemoteAddr = b.remote
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	out, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(out), cookie: res.Cookies()}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do(http.MethodPost, path, form) }

// signIn fills and sends the sign-in form.
func (b *browser) signIn(id, secret string) page {
	b.h.t.Helper()
	form := b.get("/console/signin")
	return b.post("/console/signin", url.Values{"csrf": {form.csrf()}, "client_id": {id}, "client_secret": {secret}})
}

func (h *harness) signedIn(id, secret string) (*browser, string) {
	h.t.Helper()
	b := h.browser()
	if p := b.signIn(id, secret); p.status != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: %d\n%s", id, p.status, p.body)
	}
	ov := b.get("/console/overview")
	if ov.status != http.StatusOK {
		h.t.Fatalf("overview: %d\n%s", ov.status, ov.body)
	}
	return b, ov.csrf()
}

func (h *harness) newPartner(role service.Role) (string, string) {
	h.t.Helper()
	in := service.NewPartnerInput{Name: "test " + string(role), Role: role}
	if role == service.RolePartner {
		in.Actions = []string{"government_procurement"}
	}
	p, secret, err := h.partners.Create(context.Background(), in)
	if err != nil {
		h.t.Fatal(err)
	}
	return p.ClientID, secret
}

func (h *harness) actCount(act service.Act) int {
	h.t.Helper()
	acts, err := h.acts.List(context.Background(), -1, service.MaxPage)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, a := range acts {
		if a.Body != nil && a.Body.Act == act {
			n++
		}
	}
	return n
}

func TestSignInMakesASessionCookie(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	p := b.signIn(adminID, adminSecret)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/overview" {
		t.Fatalf("sign-in: %d %s", p.status, p.header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range p.cookie {
		if c.Name == "credgate_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console/" || session.Secure {
		t.Fatalf("session cookie over plain HTTP: %+v", session)
	}
	if strings.Contains(p.body, adminSecret) {
		t.Fatal("the answer repeats the secret")
	}
	// Over TLS the cookie is Secure.
	tb := h.browser()
	tb.tls = true
	for _, c := range tb.signIn(adminID, adminSecret).cookie {
		if c.Name == "credgate_console" && !c.Secure {
			t.Fatal("session cookie over TLS is not Secure")
		}
	}
}

func TestOnlyAdministratorsAndAuditorsSignIn(t *testing.T) {
	h := newHarness(t)
	auditor, auditorSecret := h.newPartner(service.RoleAuditor)
	partner, partnerSecret := h.newPartner(service.RolePartner)
	h.signedIn(auditor, auditorSecret)
	for _, c := range []struct {
		name, id, secret string
		status           int
		says             string
	}{
		{"partner", partner, partnerSecret, http.StatusForbidden, "接入方凭证不能登录控制台"},
		{"wrong secret", adminID, "not-the-secret", http.StatusUnauthorized, "不正确"},
		{"unknown client", "nobody", "whatever", http.StatusUnauthorized, "不正确"},
		{"empty", "", "", http.StatusUnauthorized, "不正确"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := h.browser()
			p := b.signIn(c.id, c.secret)
			if p.status != c.status || !strings.Contains(p.body, c.says) {
				t.Fatalf("%d, want %d saying %q:\n%s", p.status, c.status, c.says, p.body)
			}
			if _, ok := b.cookies["credgate_console"]; ok {
				t.Fatal("a refused sign-in got a session")
			}
		})
	}
}

func TestSignInNeedsItsFormToken(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.get("/console/signin")
	// Login CSRF: a form posted from elsewhere has no matching token.
	p := b.post("/console/signin", url.Values{"client_id": {adminID}, "client_secret": {adminSecret}})
	if p.status != http.StatusForbidden {
		t.Fatalf("sign-in without the form token: %d", p.status)
	}
	if _, ok := b.cookies["credgate_console"]; ok {
		t.Fatal("signed in without the form token")
	}
}

func TestSignInIsThrottled(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for range 10 {
		b.signIn(adminID, "wrong")
	}
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures the right secret: %d", p.status)
	}
	h.clock.Add(6 * time.Minute)
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusSeeOther {
		t.Fatalf("after the window: %d", p.status)
	}
}

func TestFormsWithoutTheirCSRFTokenAreRefused(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	before := h.actCount(service.ActPartnerCreated)
	form := url.Values{"name": {"伪造的接入方"}, "role": {"partner"}, "actions": {"government_procurement"}}
	for name, tok := range map[string]string{"none": "", "wrong": token[:len(token)-2] + "xx"} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if tok != "" {
			f.Set("csrf", tok)
		}
		if p := b.post("/console/partners", f); p.status != http.StatusForbidden {
			t.Fatalf("%s token: %d", name, p.status)
		}
	}
	if h.actCount(service.ActPartnerCreated) != before {
		t.Fatal("a refused form created a partner")
	}
	// With its token (and the form's one-time nonce) the same form works,
	// and is recorded as the API's act.
	form.Set("csrf", token)
	form.Set("nonce", formNonce(t, b.get("/console/partners"), "create-partner"))
	p := b.post("/console/partners", form)
	if p.status != http.StatusCreated || !strings.Contains(p.body, `id="client-secret"`) {
		t.Fatalf("create with the token: %d\n%s", p.status, p.body)
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Fatal("the page with the secret may be cached")
	}
	if h.actCount(service.ActPartnerCreated) != before+1 {
		t.Fatal("the console's partner is not in the evidence log")
	}
}

func TestAuditorsReadButDoNotAct(t *testing.T) {
	h := newHarness(t)
	id, secret := h.newPartner(service.RoleAuditor)
	b, token := h.signedIn(id, secret)
	for _, path := range []string{"/console/overview", "/console/subjects", "/console/entries", "/console/proceedings", "/console/partners", "/console/evidence"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", path, p.status)
		}
		if strings.Contains(p.body, `method="post" action="/console/partners"`) || strings.Contains(p.body, `id="create-entry"`) {
			t.Fatalf("%s shows an auditor a form that changes something", path)
		}
	}
	before := h.actCount(service.ActPartnerCreated)
	p := b.post("/console/partners", url.Values{"csrf": {token}, "name": {"x"}, "role": {"admin"}})
	if p.status != http.StatusForbidden {
		t.Fatalf("an auditor's act: %d", p.status)
	}
	if h.actCount(service.ActPartnerCreated) != before {
		t.Fatal("an auditor created a partner")
	}
}

func TestSessionsEnd(t *testing.T) {
	h := newHarness(t)
	signedOut := func(b *browser) bool {
		p := b.get("/console/overview")
		return p.status == http.StatusSeeOther && p.header.Get("Location") == "/console/signin"
	}

	t.Run("idle", func(t *testing.T) {
		b, _ := h.signedIn(adminID, adminSecret)
		h.clock.Add(14 * time.Minute)
		if signedOut(b) {
			t.Fatal("signed out before the idle timeout")
		}
		h.clock.Add(15 * time.Minute)
		if !signedOut(b) {
			t.Fatal("still signed in after 15 idle minutes")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b, _ := h.signedIn(adminID, adminSecret)
		for range 8 * 6 {
			h.clock.Add(10 * time.Minute)
			if signedOut(b) {
				break
			}
		}
		if !signedOut(b) {
			t.Fatal("still signed in after 8 busy hours")
		}
	})
	t.Run("sign out", func(t *testing.T) {
		b, token := h.signedIn(adminID, adminSecret)
		stolen := b.cookies["credgate_console"]
		if p := b.post("/console/signout", url.Values{"csrf": {token}}); p.status != http.StatusSeeOther {
			t.Fatalf("sign out: %d", p.status)
		}
		if !signedOut(b) {
			t.Fatal("signed in after signing out")
		}
		// The old cookie is dead on the server, not only in the browser.
		b.cookies["credgate_console"] = stolen
		if !signedOut(b) {
			t.Fatal("the cookie works after sign-out")
		}
	})
	t.Run("credential revoked", func(t *testing.T) {
		id, secret := h.newPartner(service.RoleAuditor)
		b, _ := h.signedIn(id, secret)
		if _, err := h.partners.Revoke(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if !signedOut(b) {
			t.Fatal("a revoked auditor's session goes on")
		}
	})
	t.Run("credential rotated away", func(t *testing.T) {
		id, secret := h.newPartner(service.RoleAuditor)
		b, _ := h.signedIn(id, secret)
		if _, _, err := h.partners.Rotate(context.Background(), id, service.RotateInput{Overlap: 0}); err != nil {
			t.Fatal(err)
		}
		if !signedOut(b) {
			t.Fatal("a session outlives the secret that opened it")
		}
	})
}

func TestFormErrorsAreTheAPIsAndChangeNothing(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	before := h.actCount(service.ActEntryCreated)
	p := b.post("/console/entries", url.Values{"csrf": {token}, "subject_id": {"91110108MA01C0N500"}, "list": {"safety_production_blacklist"},
		"originating_department": {"应急管理部"}, "reason": {"事故"}, "legal_basis": {"《安全生产法》"},
		"decided_at": {"2026-01-01T09:00"}, "published_at": {"2026-01-02T09:00"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "invalid_subject_id") || !strings.Contains(p.body, "主体标识无效") {
		t.Fatalf("a bad subject: %d\n%s", p.status, p.body)
	}
	// The form is refilled, so the user corrects rather than retypes.
	if !strings.Contains(p.body, `value="应急管理部"`) {
		t.Fatal("the refused form is not refilled")
	}
	p = b.post("/console/entries", url.Values{"csrf": {token}, "decided_at": {"yesterday"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "invalid_form") || !strings.Contains(p.body, "decided_at") {
		t.Fatalf("a bad time: %d\n%s", p.status, p.body)
	}
	if h.actCount(service.ActEntryCreated) != before {
		t.Fatal("a refused form changed something")
	}
	// An over-long body is refused before it is read.
	long := url.Values{"csrf": {token}, "reason": {strings.Repeat("长", console.MaxFormBody)}}
	if p := b.post("/console/entries", long); p.status < 400 || p.status >= 500 {
		t.Fatalf("an over-long form: %d", p.status)
	}
}

func TestLanguageAndHeaders(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	if p := b.get("/console/signin"); !strings.Contains(p.body, `lang="zh-CN"`) || !strings.Contains(p.body, "客户端密钥") {
		t.Fatal("the console does not speak Chinese by default")
	}
	b.lang = "en-GB,en;q=0.9"
	p := b.get("/console/signin")
	if !strings.Contains(p.body, "Client secret") {
		t.Fatal("a browser preferring English does not get English")
	}
	for _, hd := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if p.header.Get(hd) == "" {
			t.Errorf("no %s", hd)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "http") {
		t.Errorf("CSP allows more than the console's own assets: %s", csp)
	}
	// The language chosen in the console wins, and goes back only within
	// the console.
	sw := b.get("/console/language?lang=zh&back=//evil.example/")
	if sw.header.Get("Location") != "/console/overview" {
		t.Fatalf("language switch redirects to %q", sw.header.Get("Location"))
	}
	if p := b.get("/console/signin"); !strings.Contains(p.body, "客户端密钥") {
		t.Fatal("the chosen language does not stick")
	}
	// Static assets are embedded and served.
	for _, a := range []string{"/console/static/console.css", "/console/static/console.js", "/console/static/verify.js"} {
		if p := b.get(a); p.status != http.StatusOK || len(p.body) < 100 {
			t.Errorf("%s: %d", a, p.status)
		}
	}
	// Everything else is the API's.
	if p := b.get("/v1/catalog"); p.status != http.StatusTeapot {
		t.Fatalf("/v1/catalog went to the console: %d", p.status)
	}
}

// The evidence screen shows the consistency history: the stored
// checkpoints newest first, each signed by the log's key and consistent
// with the one before it (verified by the evidence log on the server),
// in pages that go back by tree size.
func TestEvidenceShowsTheConsistencyHistory(t *testing.T) {
	h := newHarness(t)
	b, _ := h.signedIn(adminID, adminSecret)
	ctx := context.Background()
	// Each partner created is an act in the log; a checkpoint after each.
	for range 12 {
		h.newPartner(service.RoleAuditor)
		head, err := h.tree.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.evlog.Covering(ctx, head.Size); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<tr class="checkpoint" data-size="(\d+)">`)
	p := b.get("/console/evidence")
	if p.status != http.StatusOK {
		t.Fatalf("evidence: %d\n%s", p.status, p.body)
	}
	first := rows.FindAllStringSubmatch(p.body, -1)
	if len(first) != 10 {
		t.Fatalf("the first page shows %d checkpoints, want 10:\n%s", len(first), p.body)
	}
	if n := strings.Count(p.body, `class="ok step"`); n != 10 {
		t.Errorf("%d of 10 steps shown consistent", n)
	}
	if n := strings.Count(p.body, `class="ok sig"`); n != 10 {
		t.Errorf("%d of 10 signatures shown valid", n)
	}
	older := regexp.MustCompile(`href="/console/evidence\?history_before=(\d+)#history" id="history-older"`).FindStringSubmatch(p.body)
	if older == nil || older[1] != first[9][1] {
		t.Fatalf("no link to the older page after size %s", first[9][1])
	}
	p = b.get("/console/evidence?history_before=" + older[1])
	second := rows.FindAllStringSubmatch(p.body, -1)
	if p.status != http.StatusOK || len(second) == 0 || atoi(t, second[0][1]) >= atoi(t, older[1]) {
		t.Fatalf("second page: %d, sizes %v after %s", p.status, second, older[1])
	}
	if !strings.Contains(p.body, `id="history-newest"`) || strings.Contains(p.body, `id="history-older"`) {
		t.Error("the last page links back to the newest and to nothing older")
	}
	if !strings.Contains(p.body, "最早的检查点") {
		t.Error("the oldest checkpoint is not marked as such")
	}
	if p := b.get("/console/evidence?history_before=x"); p.status != http.StatusBadRequest {
		t.Errorf("history_before=x: %d", p.status)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// healthReport is a fixed /readyz report.
type healthReport map[string]any

func (h healthReport) Health(context.Context) map[string]any { return h }

// TestOverviewSpeaksThePagesLanguage: the chart's tooltips and the health
// panel's sections are in the page's words, the raw names kept in a
// title. (The tooltips were built in Go with the outcome's id, "clear",
// and the sections showed "cache", "spool", on the Chinese page.)
func TestOverviewSpeaksThePagesLanguage(t *testing.T) {
	report := healthReport{"dependencies": map[string]string{"sqlite": "ok"},
		"cache": map[string]any{"entries": 3}, "spool": map[string]any{"pending": 0}, "something_new": 1}
	h := newHarnessWith(t, func(d *console.Deps) { d.Health = report })
	caller := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	if _, err := h.checker.Check(t.Context(), caller, service.CheckRequest{
		Subject: testenv.USCC(t, "91110000MA0000C01"), Action: "government_procurement"}); err != nil {
		t.Fatal(err)
	}
	b, _ := h.signedIn(adminID, adminSecret)
	for _, tc := range []struct {
		lang, clear, cache, spool string
	}{
		{"zh-CN", "无记录", "缓存", "证据暂存"},
		{"en", "clear", "Cache", "Evidence spool"},
	} {
		b.lang = tc.lang
		p := b.get("/console/overview")
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", tc.lang, p.status)
		}
		tip := regexp.MustCompile(`<title>\d\d-\d\d \d\d:00 · ([^<]*)</title>`).FindStringSubmatch(p.body)
		if tip == nil || tip[1] != tc.clear+" 1" {
			t.Errorf("%s: the hour's tooltip %q, want %q", tc.lang, tip, tc.clear+" 1")
		}
		for name, words := range map[string]string{"cache": tc.cache, "spool": tc.spool, "something_new": "something_new"} {
			if !regexp.MustCompile(`<summary title="` + name + `">` + regexp.QuoteMeta(words)).MatchString(p.body) {
				t.Errorf("%s: section %s not shown as %q", tc.lang, name, words)
			}
		}
	}
}
