package console_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

var asAdmin = service.Actor{ClientID: adminID, Role: service.RoleAdmin}

// entryOn puts a subject on a list through the service, decided 13
// months ago (past the urban lists' one-year repair lock).
func (h *harness) entryOn(list, subject string, edit func(*service.EntryInput)) string {
	h.t.Helper()
	decided := h.clock.Now().AddDate(-1, -1, 0)
	in := service.EntryInput{Subject: subject, List: list, OriginatingDepartment: "某市城市管理局", Reason: "违法建设拒不整改",
		LegalBasis: "《城乡规划法》", DecidedAt: decided, PublishedAt: decided.Add(24 * time.Hour)}
	if edit != nil {
		edit(&in)
	}
	e, err := h.entries.Create(service.WithActor(context.Background(), asAdmin), in)
	if err != nil {
		h.t.Fatal(err)
	}
	return e.ID
}

// formNonce is the one-time token of the form with this id on the page.
func formNonce(t *testing.T, p page, form string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)id="` + form + `".*?name="nonce" value="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no nonce in form %s:\n%s", form, p.body)
	}
	return m[1]
}

// M1: the entry's page shows what was filed: an objection's grounds, who
// filed it and its evidence; a repair's grounds, evidence and the review's
// finding; the entry's own evidence and responsible persons. All escaped.
func TestEntryPageShowsWhatWasFiled(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	id := h.entryOn("safety_production_blacklist", testenv.USCC(t, "91110108MA01RP001"), func(in *service.EntryInput) {
		in.DecidedAt = h.clock.Now().AddDate(0, -1, 0)
		in.PublishedAt = in.DecidedAt.Add(24 * time.Hour)
		in.OriginatingDepartment, in.LegalBasis = "应急管理部", "《安全生产法》"
		in.EvidenceRefs = []string{"城管罚字〔2025〕17号"}
		in.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "11010519491231002X", Role: policy.RoleLegalRepresentative}}
	})
	entry := "/console/entries/" + id
	if p := b.post(entry+"/objections", url.Values{"csrf": {token}, "filed_by": {"originating_department"},
		"grounds": {"<b>认定有误</b>"}, "evidence_refs": {"异议材料-1, 异议材料-2"}}); p.status != http.StatusSeeOther {
		t.Fatalf("file objection: %d\n%s", p.status, p.body)
	}
	p := b.get(entry)
	for _, want := range []string{"&lt;b&gt;认定有误&lt;/b&gt;", "异议材料-1", "异议材料-2", "认定部门", "城管罚字〔2025〕17号",
		"11010519491231002X", "法定代表人"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the entry's page with an open objection does not show %q", want)
		}
	}
	if strings.Contains(p.body, "<b>认定有误</b>") {
		t.Fatal("the grounds are not escaped")
	}
	open := regexp.MustCompile(`action="/console/objections/([^/"]+)/decision"`).FindStringSubmatch(p.body)
	if open == nil {
		t.Fatal("no open objection")
	}
	if p := b.post("/console/objections/"+open[1]+"/decision", url.Values{"csrf": {token}, "entry_id": {id}, "decision": {"rejected"}}); p.status != http.StatusSeeOther {
		t.Fatalf("decide: %d\n%s", p.status, p.body)
	}
	// The national safety black list has no early repair (篇十二 第六、七条);
	// the yellow urban list is repaired under review, with no lock.
	id = h.entryOn("urban_management_yellow", testenv.USCC(t, "91110108MA01RP002"), func(in *service.EntryInput) {
		in.DecidedAt = h.clock.Now().AddDate(0, -1, 0)
		in.PublishedAt = in.DecidedAt.Add(24 * time.Hour)
	})
	entry = "/console/entries/" + id
	if p := b.post(entry+"/repairs", url.Values{"csrf": {token}, "grounds": {"已整改并作出信用承诺"}, "evidence_refs": {"承诺书-9"}}); p.status != http.StatusSeeOther {
		t.Fatalf("apply repair: %d\n%s", p.status, p.body)
	}
	rep := regexp.MustCompile(`action="/console/repairs/([^/"]+)/review"`).FindStringSubmatch(b.get(entry).body)
	if rep == nil {
		t.Fatal("no repair to review")
	}
	if p := b.post("/console/repairs/"+rep[1]+"/review", url.Values{"csrf": {token}, "entry_id": {id}, "finding": {"现场核查已整改完毕"},
		"recommendation": {"approve"}}); p.status != http.StatusSeeOther {
		t.Fatalf("review: %d\n%s", p.status, p.body)
	}
	p = b.get(entry)
	for _, want := range []string{"已整改并作出信用承诺", "承诺书-9", "现场核查已整改完毕"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the entry's page with a reviewed repair does not show %q", want)
		}
	}
}

// M4: repair and exit forms are shown only on lists whose rules provide
// them (the service answers 422 otherwise).
func TestLifecycleFormsFollowTheListsRules(t *testing.T) {
	h := newHarness(t)
	b, _ := h.signedIn(adminID, adminSecret)
	for i, c := range []struct {
		list         string
		repair, exit bool
	}{
		{"court_dishonest_debtor", false, false},
		{"urban_management_black", true, false},
		{"safety_production_key_attention", false, true},
	} {
		id := h.entryOn(c.list, testenv.USCC(t, fmt.Sprintf("91110108MA01RF%03d", i)), nil)
		p := b.get("/console/entries/" + id)
		if got := strings.Contains(p.body, `id="apply-repair"`); got != c.repair {
			t.Errorf("%s: repair form shown %v, want %v", c.list, got, c.repair)
		}
		if got := strings.Contains(p.body, `id="apply-exit"`); got != c.exit {
			t.Errorf("%s: exit form shown %v, want %v", c.list, got, c.exit)
		}
	}
	// 情节特别严重的不予修复: no repair form for such an entry.
	id := h.entryOn("urban_management_black", testenv.USCC(t, "91110108MA01RF100"), func(in *service.EntryInput) {
		in.ParticularlySerious = true
	})
	if p := b.get("/console/entries/" + id); strings.Contains(p.body, `id="apply-repair"`) {
		t.Error("a particularly serious entry on a list that never repairs those offers repair")
	}
}

func ed25519JWK(t *testing.T) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, `{"kty":"OKP","crv":"Ed25519","x":%q}`, base64.RawURLEncoding.EncodeToString(pub))
}

// M2: a partner that signs with its keys is not offered a secret, and a
// posted rotation is refused: keys are rotated through the API.
func TestKeyPartnersAreNotRotatedToASecret(t *testing.T) {
	h := newHarness(t)
	ctx := service.WithActor(context.Background(), asAdmin)
	pt, _, err := h.partners.Create(ctx, service.NewPartnerInput{Name: "密钥伙伴", Role: service.RolePartner,
		Actions: []string{"government_procurement"}, JWKS: [][]byte{ed25519JWK(t)}})
	if err != nil {
		t.Fatal(err)
	}
	b, token := h.signedIn(adminID, adminSecret)
	p := b.get("/console/partners/" + pt.ClientID)
	if strings.Contains(p.body, `id="rotate-partner"`) {
		t.Error("a key partner is offered a secret rotation")
	}
	if !strings.Contains(p.body, "/v1/admin/partners/"+pt.ClientID+":rotate") {
		t.Error("the page does not say where keys are rotated")
	}
	before := h.actCount(service.ActCredentialRotated)
	p = b.post("/console/partners/"+pt.ClientID+"/rotate", url.Values{"csrf": {token}, "overlap_hours": {"24"}, "nonce": {"x"}})
	if p.status != http.StatusConflict || strings.Contains(p.body, `id="client-secret"`) {
		t.Fatalf("a posted rotation of a key partner: %d\n%s", p.status, p.body)
	}
	after, err := h.partners.Get(ctx, pt.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if service.AuthMethod(after) != service.AuthMethodPrivateKey || h.actCount(service.ActCredentialRotated) != before {
		t.Fatalf("the key partner was rotated: %s", service.AuthMethod(after))
	}
	// A secret partner's page still offers it.
	sid, _ := h.newPartner(service.RolePartner)
	if p := b.get("/console/partners/" + sid); !strings.Contains(p.body, `id="rotate-partner"`) {
		t.Error("a secret partner is not offered rotation")
	}
}

// M3: a form sent twice (a reload of the page its POST answered, a double
// click) acts once: the second answers that it was done, and does nothing.
func TestResentFormsActOnce(t *testing.T) {
	h := newHarness(t)
	ctx := service.WithActor(context.Background(), asAdmin)
	b, token := h.signedIn(adminID, adminSecret)

	t.Run("rotate", func(t *testing.T) {
		id, secret := h.newPartner(service.RolePartner)
		nonce := formNonce(t, b.get("/console/partners/"+id), "rotate-partner")
		form := url.Values{"csrf": {token}, "overlap_hours": {"24"}, "nonce": {nonce}}
		before := h.actCount(service.ActCredentialRotated)
		first := b.post("/console/partners/"+id+"/rotate", form)
		if first.status != http.StatusCreated || !strings.Contains(first.body, `id="client-secret"`) {
			t.Fatalf("first rotation: %d\n%s", first.status, first.body)
		}
		again := b.post("/console/partners/"+id+"/rotate", form)
		if again.status != http.StatusConflict || strings.Contains(again.body, `id="client-secret"`) || !strings.Contains(again.body, "已经提交") {
			t.Fatalf("the same rotation again: %d\n%s", again.status, again.body)
		}
		if n := h.actCount(service.ActCredentialRotated); n != before+1 {
			t.Fatalf("%d rotations recorded, want 1", n-before)
		}
		if _, _, err := h.partners.Authenticate(ctx, id, secret); err != nil {
			t.Fatalf("the original secret ended within its overlap: %v", err)
		}
		// A form without its nonce, or with one never issued, does nothing.
		for _, n := range []string{"", "made-up"} {
			form.Set("nonce", n)
			if p := b.post("/console/partners/"+id+"/rotate", form); p.status < 400 || p.status >= 500 {
				t.Errorf("nonce %q: %d", n, p.status)
			}
		}
		if n := h.actCount(service.ActCredentialRotated); n != before+1 {
			t.Fatalf("%d rotations recorded, want 1", n-before)
		}
	})
	t.Run("double click", func(t *testing.T) {
		id, _ := h.newPartner(service.RolePartner)
		nonce := formNonce(t, b.get("/console/partners/"+id), "rotate-partner")
		form := url.Values{"csrf": {token}, "overlap_hours": {"24"}, "nonce": {nonce}}
		before := h.actCount(service.ActCredentialRotated)
		statuses := make(chan int, 2)
		for range 2 {
			tab := &browser{h: h, cookies: map[string]*http.Cookie{}}
			for k, v := range b.cookies {
				tab.cookies[k] = v
			}
			go func() { statuses <- tab.post("/console/partners/"+id+"/rotate", form).status }()
		}
		got := []int{<-statuses, <-statuses}
		if !(got[0] == http.StatusCreated && got[1] == http.StatusConflict || got[1] == http.StatusCreated && got[0] == http.StatusConflict) {
			t.Fatalf("two rotations at once with one nonce: %v", got)
		}
		if n := h.actCount(service.ActCredentialRotated); n != before+1 {
			t.Fatalf("%d rotations recorded, want 1", n-before)
		}
	})
	t.Run("create", func(t *testing.T) {
		nonce := formNonce(t, b.get("/console/partners"), "create-partner")
		form := url.Values{"csrf": {token}, "name": {"重复提交的接入方"}, "role": {"partner"}, "actions": {"government_procurement"}, "nonce": {nonce}}
		before := h.actCount(service.ActPartnerCreated)
		if p := b.post("/console/partners", form); p.status != http.StatusCreated {
			t.Fatalf("create: %d\n%s", p.status, p.body)
		}
		again := b.post("/console/partners", form)
		if again.status != http.StatusConflict || strings.Contains(again.body, `id="client-secret"`) {
			t.Fatalf("the same create again: %d\n%s", again.status, again.body)
		}
		if n := h.actCount(service.ActPartnerCreated); n != before+1 {
			t.Fatalf("%d partners created, want 1", n-before)
		}
		// A refused form can be corrected and sent: its page has a fresh nonce.
		bad := b.post("/console/partners", url.Values{"csrf": {token}, "name": {""}, "role": {"partner"}, "nonce": {formNonce(t, b.get("/console/partners"), "create-partner")}})
		if bad.status != http.StatusBadRequest {
			t.Fatalf("a refused create: %d\n%s", bad.status, bad.body)
		}
		form.Set("nonce", formNonce(t, bad, "create-partner"))
		form.Set("name", "改正后的接入方")
		if p := b.post("/console/partners", form); p.status != http.StatusCreated {
			t.Fatalf("the corrected create: %d\n%s", p.status, p.body)
		}
	})
}

// M4: the evidence page finds any record the console names, such as the
// record of a subject lookup, not only checks.
func TestEvidenceFindsTheRecordOfALookup(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	p := b.post("/console/subjects", url.Values{"csrf": {token}, "id": {testenv.USCC(t, "91110108MA01EW000")}})
	m := regexp.MustCompile(`本次查询已存证：([^<\s]+)`).FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("lookup: %d\n%s", p.status, p.body)
	}
	ev := b.get("/console/evidence?check=" + url.QueryEscape(m[1]))
	if ev.status != http.StatusOK || !strings.Contains(ev.body, `id="record"`) || !strings.Contains(ev.body, "主体查询") ||
		!strings.Contains(ev.body, "&#34;id&#34;: &#34;"+m[1]+"&#34;") {
		t.Fatalf("evidence for the lookup's record %s: %d\n%s", m[1], ev.status, ev.body)
	}
	if !strings.Contains(ev.body, `href="/console/evidence/receipts/`+m[1]+`"`) {
		t.Error("no download link for the record's receipt")
	}
	if p := b.get("/console/evidence?check=nothing-like-this"); p.status != http.StatusNotFound {
		t.Errorf("an unknown record: %d", p.status)
	}
}

func unescape(s string) string {
	u, _ := url.QueryUnescape(s)
	return u
}

var langLink = regexp.MustCompile(`id="lang" href="/console/language\?lang=[a-z]+&amp;back=([^"]*)"`)

// L1: the language switch of a page answering a POST goes back to the
// screen's page, which answers GET; the console's 404 and 405 are pages in
// the user's language.
func TestLanguageSwitchAfterAPostAndUnknownPages(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	id := h.entryOn("court_dishonest_debtor", testenv.USCC(t, "91110108MA01LG000"), nil)
	// A repair the list does not provide: refused, on the entry's page.
	p := b.post("/console/entries/"+id+"/repairs", url.Values{"csrf": {token}, "grounds": {"x"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("repair on a list without repair: %d", p.status)
	}
	m := langLink.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no language link")
	}
	back := unescape(m[1])
	if back != "/console/entries/"+id {
		t.Errorf("the language switch goes back to %q", back)
	}
	if g := b.get(back); g.status != http.StatusOK {
		t.Errorf("GET %s: %d", back, g.status)
	}
	// A refused rotation (bad overlap) answers on the partner's page.
	pid, _ := h.newPartner(service.RolePartner)
	p = b.post("/console/partners/"+pid+"/rotate", url.Values{"csrf": {token}, "overlap_hours": {"-1"},
		"nonce": {formNonce(t, b.get("/console/partners/"+pid), "rotate-partner")}})
	if m := langLink.FindStringSubmatch(p.body); m == nil || unescape(m[1]) != "/console/partners/"+pid {
		t.Errorf("refused rotation: language link %v", m)
	}
	// An import with no file answers on the entries page.
	p = b.post("/console/entries/import?csrf="+token, url.Values{"csrf": {token}})
	if m := langLink.FindStringSubmatch(p.body); m == nil || unescape(m[1]) != "/console/entries" {
		t.Errorf("refused import: language link %v", m)
	}

	nf := b.get("/console/no-such-page")
	if nf.status != http.StatusNotFound || !strings.HasPrefix(nf.header.Get("Content-Type"), "text/html") || !strings.Contains(nf.body, "页面不存在") {
		t.Errorf("404: %d %s\n%s", nf.status, nf.header.Get("Content-Type"), nf.body)
	}
	na := b.post("/console/overview", url.Values{"csrf": {token}})
	if na.status != http.StatusMethodNotAllowed || !strings.HasPrefix(na.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(na.body, "不支持") || na.header.Get("Allow") == "" {
		t.Errorf("405: %d %s allow %q\n%s", na.status, na.header.Get("Content-Type"), na.header.Get("Allow"), na.body)
	}
	b.lang = "en"
	delete(b.cookies, "credgate_console_lang")
	if nf := b.get("/console/no-such-page"); nf.status != http.StatusNotFound || !strings.Contains(nf.body, "no such page") {
		t.Errorf("404 in English: %d\n%s", nf.status, nf.body)
	}
	// Signed out, a 404 is still a page, with the way to sign in.
	if nf := h.browser().get("/console/no-such-page"); nf.status != http.StatusNotFound || !strings.Contains(nf.body, `href="/console/signin"`) {
		t.Errorf("404 signed out: %d\n%s", nf.status, nf.body)
	}
}

// upload posts a file to the console's import.
func (b *browser) upload(token, name string, body io.Reader) page {
	b.h.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("csrf", token)
		fw, err := mw.CreateFormFile("file", name)
		if err == nil {
			_, err = io.Copy(fw, body)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req := httptest.NewRequest(http.MethodPost, "/console/entries/import?csrf="+url.QueryEscape(token), pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.h.ServeHTTP(rec, req)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if the body was not read to its end
	res := rec.Result()
	out, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(out)}
}

// L2: an import's problem lines say "第 N 行：" in Chinese and "line N: "
// in English.
func TestImportProblemLinesAreNumbered(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	line := `{"subject_id":"not-an-id","list":"court_dishonest_debtor","originating_department":"法院","reason":"x","legal_basis":"y","decided_at":"2026-07-01T00:00:00+08:00","published_at":"2026-07-03T00:00:00+08:00"}` + "\n"
	for lang, want := range map[string]string{"zh-CN": "<li>第 1 行：", "en": "<li>line 1: "} {
		b.lang = lang
		p := b.upload(token, "bad.ndjson", strings.NewReader(line))
		if p.status < 400 || !strings.Contains(p.body, want) {
			t.Errorf("%s: %d, want %q:\n%s", lang, p.status, want, p.body)
		}
	}
}

// L3: ?imported= shows a count, nothing else.
func TestImportedNoticeIsACount(t *testing.T) {
	h := newHarness(t)
	b, _ := h.signedIn(adminID, adminSecret)
	if p := b.get("/console/entries?imported=12"); !strings.Contains(p.body, "已导入 12 条") {
		t.Error("?imported=12 shows no count")
	}
	for _, v := range []string{"请致电 400-000-0000 领取补贴", "-3", "1e9"} {
		if p := b.get("/console/entries?imported=" + url.QueryEscape(v)); strings.Contains(p.body, `id="imported"`) {
			t.Errorf("?imported=%s is shown as a notice", v)
		}
	}
}

// L4: an import over the console's limit is refused saying the limit and
// where larger files go; the form states the limit.
func TestOversizedImportSaysTheLimit(t *testing.T) {
	h := newHarness(t, console.WithImportLimit(4<<10))
	b, token := h.signedIn(adminID, adminSecret)
	if p := b.get("/console/entries"); !strings.Contains(p.body, "4 KiB") || !strings.Contains(p.body, "credgate import") {
		t.Error("the import form does not state the limit")
	}
	p := b.upload(token, "big.ndjson", bytes.NewReader(bytes.Repeat([]byte("x"), 8<<10)))
	if p.status != http.StatusRequestEntityTooLarge || !strings.Contains(p.body, "4 KiB") || !strings.Contains(p.body, "credgate import") ||
		strings.Contains(p.body, "choose a CSV") {
		t.Fatalf("an oversized import: %d\n%s", p.status, p.body)
	}
	if console.MaxImportBody != 64<<20 {
		t.Errorf("default limit %d", console.MaxImportBody)
	}
}

// L6: a refused create form keeps the ticked actions, subject kinds,
// visibility and role.
func TestRefusedPartnerFormKeepsItsChoices(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	p := b.post("/console/partners", url.Values{"csrf": {token}, "name": {""}, "role": {"auditor"}, "actions": {"government_procurement"},
		"subject_kinds": {"person"}, "visibility": {"full"}, "nonce": {formNonce(t, b.get("/console/partners"), "create-partner")}})
	if p.status != http.StatusBadRequest {
		t.Fatalf("refused create: %d\n%s", p.status, p.body)
	}
	for _, re := range []string{
		`name="actions" value="government_procurement" checked`,
		`name="subject_kinds" value="person" checked`,
		`<option value="full" selected`,
		`<option value="auditor" selected`,
	} {
		if !strings.Contains(p.body, re) {
			t.Errorf("the refused form lost %s", re)
		}
	}
	if strings.Contains(p.body, `name="subject_kinds" value="organization" checked`) {
		t.Error("an unticked kind is ticked")
	}
}

// L7: the evidence page's keys wrap inside their card, and the lookup's
// field fits a 36-character id.
func TestEvidenceLayoutFits(t *testing.T) {
	h := newHarness(t)
	b, _ := h.signedIn(adminID, adminSecret)
	p := b.get("/console/evidence")
	if !regexp.MustCompile(`id="check-id"[^>]*size="(3[6-9]|[4-9]\d)"`).MatchString(p.body) {
		t.Error("the record id field is narrower than a 36-character id")
	}
	css, err := os.ReadFile("static/console.css")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`code\.key\s*\{[^}]*(word-break:\s*break-all|overflow-wrap:\s*anywhere)`).Match(css) {
		t.Error("code.key does not wrap")
	}
}
