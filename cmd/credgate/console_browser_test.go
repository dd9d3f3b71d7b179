package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/credgate/credgate/internal/testenv"
)

// chromiumPath finds Debian's chromium. Without it the browser tests skip
// with a message, except under CI=true, where .ci/run installs it and its
// absence is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CREDGATE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the console's browser tests")
	return ""
}

// screenshotDir is where the screens' pictures go, linked from the README.
const screenshotDir = "../../docs/console"

// Screenshots are written only when CREDGATE_SCREENSHOTS=1 or when the
// file is missing, so that an ordinary run leaves the tree clean (the
// pictures differ in every run: times, ids, secrets). Refresh them all
// with CREDGATE_SCREENSHOTS=1 go test -run TestConsoleInBrowser ./cmd/credgate.
func screenshotWanted(name string) bool {
	if os.Getenv("CREDGATE_SCREENSHOTS") == "1" {
		return true
	}
	_, err := os.Stat(filepath.Join(screenshotDir, name+".png"))
	return errors.Is(err, fs.ErrNotExist)
}

// newBrowser starts one headless chromium for a whole test (its steps
// share it: one browser start, not one per step), at a laptop's window
// size, asking for Chinese as an office's browser does.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1366, 860), chromedp.Flag("lang", "zh-CN"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first action starts the browser, which lives as long as the
	// context it runs in: this one, not a step's deadline.
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": "zh-CN,zh;q=0.9"}})
		return err
	}))
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// stepTimeout bounds one step: generous, since a shared machine under
// load can starve the browser for long moments.
const stepTimeout = 2 * time.Minute

// do runs browser steps with a deadline, failing the test with what the
// page said when they do not complete.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, pageText(ctx))
	}
}

// get runs one browser action that reads a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, pageText(ctx))
	}
	return v
}

func pageText(ctx context.Context) string {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("body")))
	return body
}

// screenshot saves the viewport as docs/console/<name>.png: what fits on
// a laptop's screen without scrolling (see screenshotWanted for when).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !screenshotWanted(name) {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, id, secret string) {
	t.Helper()
	do(t, ctx, "sign in as "+id,
		chromedp.Navigate(base+"/console/signin"),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
		chromedp.SetValue(chromedp.ID("client_id"), id),
		chromedp.SetValue(chromedp.ID("client_secret"), secret),
		submit(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("main")),
	)
}

// submit clicks what sends a form or follows a link, and waits until the
// page that answers has loaded. Waiting for an element instead can match
// the page still showing (every page has a main, the overview a chart
// before and after a language switch), and a node read from it is gone
// once the answer replaces it ("No node with given id found").
func submit[S chromedp.Selectable](sel S) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
		return chromedp.Void{}, err
	}
}

// fill sets form fields by id, as a user's choices would (selects and
// date pickers included).
func fill(fields map[string]string) chromedp.Action[chromedp.Void] {
	b, _ := json.Marshal(fields)
	return chromedp.Evaluate[chromedp.Void](`(() => { for (const [id, v] of Object.entries(` + string(b) + `)) document.getElementById(id).value = v; })()`)
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return strings.TrimSpace(get(t, ctx, "read "+css, chromedp.Text(chromedp.CSS(css))))
}

// shown is the value behind a status or state cell (its data-status or
// data-state attribute), after checking that the cell shows it in words
// rather than as the raw value.
func shown(t *testing.T, ctx context.Context, css, attr string) string {
	t.Helper()
	a := get(t, ctx, "read "+css+"["+attr+"]", chromedp.AttributeValue(chromedp.CSS(css), attr))
	if w := text(t, ctx, css); !a.Exists || w == "" || w == a.Value {
		t.Fatalf("%s shows %q for %q (attribute present: %v)", css, w, a.Value, a.Exists)
	}
	return a.Value
}

// noSubjectInAddresses checks that the page is at want, and that no
// address the browser has been at this test (its history) names subject.
func noSubjectInAddresses(t *testing.T, ctx context.Context, what, want, subject string) {
	t.Helper()
	if at := get(t, ctx, "location", chromedp.Location()); at != want {
		t.Errorf("%s: the page is at %s, want %s", what, at, want)
	}
	history := get(t, ctx, "history", chromedp.NavigationEntries())
	for _, e := range history.Entries {
		if strings.Contains(e.URL, subject) || strings.Contains(e.URL, url.QueryEscape(subject)) {
			t.Errorf("%s: the browser's history holds %s", what, e.URL)
		}
	}
}

// TestConsoleInBrowser drives the console in headless chromium against
// the real serve wiring: a partner's credential is refused, an
// administrator signs in, lists a subject and sees its measures, creates a
// partner and copies its secret (which then works at the token endpoint),
// rotates that partner's secret and revokes it, imports entries from a
// file with the upload's progress shown, files and rejects an objection
// and sees the measures apply again with the validity end kept, applies for, reviews and approves a
// repair, verifies a receipt in the browser against the pinned key (and
// sees a tampered one fail) and reads the consistency history, has a form
// posted without its CSRF token refused, and signs out. Every act done in
// the console is in the evidence log as the same act over the API is: the
// same act and actor, and details of the same fields (partners created,
// rotated and revoked, an import, an entry created, a repair applied for,
// reviewed and decided: each done both ways and compared). The acts are
// paged and filtered in the console and open their evidence records; the
// webhook deliveries and overdue feedback pages are reached from the
// navigation, in both languages. Screenshots of
// each screen go to docs/console/ (when missing, or with
// CREDGATE_SCREENSHOTS=1).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	// Webhooks may reach the test's receiver on the loopback address, and
	// a delivery is dead after its first failed attempt.
	srv := startInProcess(t, "--webhook-allow", "127.0.0.0/8", "--webhook-max-attempts", "1", "--events-interval", "50ms")
	adminSecret := adminSecretOf(t, srv.dataDir)
	subject := testenv.USCC(t, "91110108MA01C0N50")

	// A partner to be refused, and a check of its whose receipt is verified.
	code, p, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/partners", srv.adminToken,
		map[string]any{"name": "某市公共资源交易中心", "actions": []string{"government_procurement"}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create partner: %d %v %v", code, p, err)
	}
	partnerID, partnerSecret := p["client_id"].(string), p["client_secret"].(string)

	t.Run("a partner's credential cannot sign in", func(t *testing.T) {
		signIn(t, ctx, srv.base, partnerID, partnerSecret)
		msg, url := text(t, ctx, "#problem"), get(t, ctx, "location", chromedp.Location())
		if !strings.Contains(msg, "接入方凭证不能登录控制台") || !strings.HasSuffix(url, "/console/signin") {
			t.Fatalf("partner sign-in: at %s, said %q", url, msg)
		}
		do(t, ctx, "signin page", chromedp.Navigate(srv.base+"/console/overview"), chromedp.WaitVisible(chromedp.ID("signin-form")))
		screenshot(t, ctx, "signin")
	})

	t.Run("sign in", func(t *testing.T) {
		signIn(t, ctx, srv.base, srv.adminID, adminSecret)
		do(t, ctx, "overview", chromedp.WaitVisible(chromedp.ID("chart")))
		if title := get(t, ctx, "title", chromedp.Title()); !strings.Contains(title, "总览") {
			t.Fatalf("after sign-in the page is %q, not the overview in Chinese", title)
		}
		// The health panel says its states in words: the store's ping is
		// "ok" behind the word.
		if st := shown(t, ctx, "#health td[data-state]", "data-state"); st != "ok" {
			t.Fatalf("the first health state is %q", st)
		}
		if h := text(t, ctx, "#health"); strings.Contains(h, "closed") || !strings.Contains(h, "正常") {
			t.Fatalf("the health panel shows raw states: %q", h)
		}
	})

	var entryURL string
	t.Run("list a subject and see its measures", func(t *testing.T) {
		do(t, ctx, "create an entry",
			chromedp.Navigate(srv.base+"/console/entries"),
			chromedp.WaitVisible(chromedp.ID("create-entry")),
			chromedp.SendKeys(chromedp.ID("entry-subject"), subject),
			fill(map[string]string{"entry-list": "safety_production_blacklist", "entry-department": "应急管理部",
				"entry-reason": "发生重大生产安全责任事故", "entry-basis": "《安全生产法》",
				"entry-decided": "2026-01-01T09:00:00", "entry-published": "2026-01-02T09:00:00"}),
			submit(chromedp.ID("create-entry-submit")),
			chromedp.WaitVisible(chromedp.ID("valid-until")),
		)
		entryURL = get(t, ctx, "location", chromedp.Location())
		do(t, ctx, "subject form",
			chromedp.Navigate(srv.base+"/console/subjects"),
			chromedp.WaitVisible(chromedp.ID("subject-form")),
			chromedp.SendKeys(chromedp.ID("subject-id"), subject[:16]+"I"+subject[17:]),
		)
		if valid := text(t, ctx, ".validity[data-for=subject-id]"); !strings.Contains(valid, "不允许") {
			t.Errorf("a character not allowed is not flagged as typed: %q", valid)
		}
		do(t, ctx, "look up",
			chromedp.SetValue(chromedp.ID("subject-id"), subject),
			submit(chromedp.ID("lookup")),
			chromedp.WaitVisible(chromedp.ID("action-government_procurement")),
		)
		measures := get(t, ctx, "measures", chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#action-government_procurement tr.measure code"), e => e.textContent)`))
		if len(measures) == 0 {
			t.Fatal("no measures shown for government_procurement")
		}
		// The ID number was posted: it is in neither the address nor the
		// browser's history (nor, so, a proxy's logs).
		noSubjectInAddresses(t, ctx, "the lookup", srv.base+"/console/subjects", subject)
		screenshot(t, ctx, "subjects")
		do(t, ctx, "entries",
			chromedp.Navigate(srv.base+"/console/entries"),
			chromedp.WaitVisible(chromedp.ID("filter-entries")),
			chromedp.SetValue(chromedp.ID("filter-subject"), subject),
			submit(chromedp.ID("filter-entries-submit")),
			chromedp.WaitVisible(chromedp.ID("entries")),
		)
		if rows := text(t, ctx, "#entries"); !strings.Contains(rows, subject) {
			t.Fatalf("the entries filtered by the subject do not show it: %q", rows)
		}
		noSubjectInAddresses(t, ctx, "the entries filter", srv.base+"/console/entries/filter", subject)
		screenshot(t, ctx, "entries")
		// From an entry, its subject's lookup: a posted form too.
		do(t, ctx, "the entry's subject",
			chromedp.Navigate(entryURL),
			chromedp.WaitVisible(chromedp.ID("lookup-subject")),
			submit(chromedp.CSS(`#lookup-subject button`)),
			chromedp.WaitVisible(chromedp.ID("action-government_procurement")),
		)
		noSubjectInAddresses(t, ctx, "the entry's subject", srv.base+"/console/subjects", subject)
	})

	var newPartner, newSecret string
	t.Run("create a partner and copy its secret", func(t *testing.T) {
		do(t, ctx, "allow the clipboard", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			for _, name := range []string{"clipboard-read", "clipboard-write"} {
				if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
					Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: srv.base}); err != nil {
					return err
				}
			}
			return nil
		}))
		do(t, ctx, "create",
			chromedp.Navigate(srv.base+"/console/partners"),
			chromedp.WaitVisible(chromedp.ID("create-partner")),
			chromedp.SetValue(chromedp.ID("partner-name"), "某银行信贷审批系统"),
			chromedp.Click(chromedp.CSS(`#create-partner input[value=government_procurement]`)),
			submit(chromedp.ID("create-partner-submit")),
			chromedp.WaitVisible(chromedp.ID("secret-box")),
			chromedp.Click(chromedp.ID("copy-secret")),
			chromedp.WaitVisible(chromedp.ID("copied")),
		)
		secret := get(t, ctx, "secret", chromedp.Value(chromedp.ID("client-secret")))
		copied := get(t, ctx, "clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		newPartner, newSecret = text(t, ctx, "h1 code"), copied
		if secret == "" || copied != secret {
			t.Fatalf("clipboard holds %q, the page showed %q", copied, secret)
		}
		screenshot(t, ctx, "partner")
		// The copied secret is a working credential.
		testenv.Token(t, srv.base, newPartner, copied)
		do(t, ctx, "partners", chromedp.Navigate(srv.base+"/console/partners"), chromedp.WaitVisible(chromedp.ID("partners")))
		screenshot(t, ctx, "partners")
	})

	t.Run("rotate a partner's secret and revoke the partner", func(t *testing.T) {
		if newPartner == "" {
			t.Skip("no partner was created")
		}
		do(t, ctx, "rotate",
			chromedp.Navigate(srv.base+"/console/partners/"+newPartner),
			chromedp.WaitVisible(chromedp.ID("rotate-partner")),
			chromedp.SetValue(chromedp.CSS(`#rotate-partner input[name=overlap_hours]`), "1"),
			submit(chromedp.CSS(`#rotate-partner button`)),
			chromedp.WaitVisible(chromedp.ID("secret-box")),
		)
		rotated := get(t, ctx, "new secret", chromedp.Value(chromedp.ID("client-secret")))
		if rotated == "" || rotated == newSecret {
			t.Fatalf("after rotation the page shows %q", rotated)
		}
		// Both work during the overlap.
		testenv.Token(t, srv.base, newPartner, rotated)
		testenv.Token(t, srv.base, newPartner, newSecret)
		screenshot(t, ctx, "partner-rotated")
		do(t, ctx, "revoke",
			submit(chromedp.CSS(`#revoke-partner button`)),
			// A revoked partner's page has no forms left.
			chromedp.WaitNotPresent(chromedp.ID("revoke-partner")),
			chromedp.WaitVisible(chromedp.ID("partner-status")),
		)
		if st := shown(t, ctx, "#partner-status", "data-status"); st != "revoked" {
			t.Fatalf("after revoking, the status is %q", st)
		}
		for _, secret := range []string{rotated, newSecret} {
			if code := tokenStatus(t, srv.base, newPartner, secret); code != http.StatusUnauthorized {
				t.Errorf("a revoked partner's secret gets a token: %d", code)
			}
		}
	})

	t.Run("import entries from a file with progress", func(t *testing.T) {
		const n = 400
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"subject_id":%q,"list":"safety_production_blacklist","originating_department":"应急管理部","reason":"发生较大生产安全责任事故","legal_basis":"《安全生产法》","decided_at":"2026-02-01T09:00:00+08:00","published_at":"2026-02-02T09:00:00+08:00"}`+"\n",
				testenv.USCC(t, fmt.Sprintf("91110108MA01DR%03d", i)))
		}
		file := filepath.Join(t.TempDir(), "entries.ndjson")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "import",
			chromedp.Navigate(srv.base+"/console/entries"),
			chromedp.WaitVisible(chromedp.ID("import-form")),
			// Record what the progress bar shows, across the page the
			// answer replaces.
			chromedp.Evaluate[chromedp.Void](`(() => {
				sessionStorage.removeItem("progress");
				const bar = document.getElementById("import-progress");
				const d = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
				Object.defineProperty(bar, "value", {get() { return d.get.call(this); }, set(v) {
					const seen = JSON.parse(sessionStorage.getItem("progress") || "[]");
					seen.push({v: v, shown: !this.hidden}); sessionStorage.setItem("progress", JSON.stringify(seen)); d.set.call(this, v); }});
			})()`),
			chromedp.SetUploadFiles(chromedp.CSS(`#import-form input[type=file]`), []string{file}),
			chromedp.Click(chromedp.ID("import-submit")),
			chromedp.WaitVisible(chromedp.ID("imported")),
		)
		if msg := text(t, ctx, "#imported"); !strings.Contains(msg, fmt.Sprint(n)) {
			t.Fatalf("after the import the page says %q", msg)
		}
		var seen []struct {
			V     float64 `json:"v"`
			Shown bool    `json:"shown"`
		}
		raw := get(t, ctx, "progress", chromedp.Evaluate[string](`sessionStorage.getItem("progress") || "[]"`))
		if err := json.Unmarshal([]byte(raw), &seen); err != nil || len(seen) == 0 {
			t.Fatalf("the upload showed no progress: %s %v", raw, err)
		}
		if last := seen[len(seen)-1]; last.V != 100 || !last.Shown {
			t.Fatalf("the progress bar ended at %+v (of %s)", last, raw)
		}
		t.Logf("the progress bar showed %s", raw)
		screenshot(t, ctx, "import")
	})

	t.Run("file and reject an objection and see the measures apply again", func(t *testing.T) {
		do(t, ctx, "entry", chromedp.Navigate(entryURL), chromedp.WaitVisible(chromedp.ID("file-objection")))
		before := text(t, ctx, "#valid-until")
		do(t, ctx, "file",
			chromedp.SetValue(chromedp.ID("objection-grounds"), "主体称事故责任认定有误"),
			submit(chromedp.ID("file-objection-submit")),
			chromedp.WaitVisible(chromedp.ID("decide-objection")),
		)
		if due, status := text(t, ctx, "#objections td.due"), shown(t, ctx, "#entry-status", "data-status"); due == "—" || status != "under_objection" {
			t.Fatalf("after filing: due %q, status %q", due, status)
		}
		do(t, ctx, "proceedings", chromedp.Navigate(srv.base+"/console/proceedings?kind=objection"), chromedp.WaitVisible(chromedp.ID("proceedings")))
		screenshot(t, ctx, "proceedings")
		// Were the suspension counted, it would show in seconds.
		time.Sleep(1500 * time.Millisecond)
		do(t, ctx, "reject",
			chromedp.Navigate(entryURL),
			chromedp.WaitVisible(chromedp.ID("decide-objection")),
			fill(map[string]string{"objection-decision": "rejected"}),
			submit(chromedp.ID("decide-objection-submit")),
			chromedp.WaitVisible(chromedp.ID("file-objection")),
		)
		// The safety production list counts its year from publication
		// (no bundled list says an objection's time is added back:
		// objection_extends_validity): the end stays, the measures
		// apply again.
		after := text(t, ctx, "#valid-until")
		if before != after || before == "—" {
			t.Fatalf("validity end moved: before %q, after %q", before, after)
		}
		if status := shown(t, ctx, "#entry-status", "data-status"); status != "active" {
			t.Fatalf("after the rejection the entry is %q", status)
		}
		screenshot(t, ctx, "entry")
	})

	var consoleRepair string
	t.Run("apply for, review and approve a repair", func(t *testing.T) {
		// An entry of a list whose repair rule allows it after a year,
		// decided 13 months ago (over the API: the console's part is the
		// proceeding).
		decided := time.Now().AddDate(-1, -1, 0).UTC()
		code, e, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", srv.adminToken, map[string]any{
			"subject_id": testenv.USCC(t, "91110108MA01RP000"), "list": "urban_management_black",
			"originating_department": "某市城市管理局", "reason": "违法建设拒不整改", "legal_basis": "《城乡规划法》",
			"decided_at": decided.Format(time.RFC3339), "published_at": decided.Add(24 * time.Hour).Format(time.RFC3339)})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("create entry: %d %v %v", code, e, err)
		}
		id := e["id"].(string)
		do(t, ctx, "apply",
			chromedp.Navigate(srv.base+"/console/entries/"+url.PathEscape(id)),
			chromedp.WaitVisible(chromedp.ID("apply-repair")),
			chromedp.SetValue(chromedp.CSS(`#apply-repair input[name=grounds]`), "已整改并作出信用承诺"),
			chromedp.SetValue(chromedp.CSS(`#apply-repair input[name=evidence_refs]`), "承诺书"),
			submit(chromedp.CSS(`#apply-repair button`)),
			chromedp.WaitVisible(chromedp.ID("review-repair")),
		)
		do(t, ctx, "review",
			chromedp.SetValue(chromedp.CSS(`#review-repair input[name=finding]`), "整改到位"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#review-repair select[name=recommendation]").value = "approve"`),
			submit(chromedp.CSS(`#review-repair button`)),
			chromedp.WaitVisible(chromedp.ID("decide-repair")),
			chromedp.WaitNotPresent(chromedp.ID("review-repair")),
		)
		do(t, ctx, "decide",
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#decide-repair select[name=decision]").value = "approved"`),
			chromedp.SetValue(chromedp.CSS(`#decide-repair input[name=note]`), "同意修复"),
			submit(chromedp.CSS(`#decide-repair button`)),
			chromedp.WaitNotPresent(chromedp.ID("decide-repair")),
		)
		if st, status := shown(t, ctx, "#repairs td.state", "data-state"), shown(t, ctx, "#entry-status", "data-status"); st != "approved" || status != "repaired" {
			t.Fatalf("after approving: repair %q, entry %q", st, status)
		}
		consoleRepair = text(t, ctx, "#repairs td code")
		screenshot(t, ctx, "repair")
	})

	t.Run("verify a receipt in the browser", func(t *testing.T) {
		check := mustCheck(t, srv.base, testenv.Token(t, srv.base, partnerID, partnerSecret), subject)
		id := check["check_id"].(string)
		do(t, ctx, "verify",
			chromedp.Navigate(srv.base+"/console/evidence?check="+id),
			chromedp.WaitVisible(chromedp.ID("verifier")),
			chromedp.Click(chromedp.ID("verify-receipt")),
			chromedp.WaitVisible(chromedp.CSS("#verify-result.ok, #verify-result.bad")),
		)
		if result := text(t, ctx, "#verify-result"); !strings.HasPrefix(result, "验证通过") || !strings.Contains(result, id) {
			t.Fatalf("verification: %q", result)
		}
		screenshot(t, ctx, "evidence")
		// The same receipt with its record erased (body and salt deleted,
		// the record hash kept): proven in the log, said to be erased; with
		// a proof hash altered as well, refused.
		var receipt map[string]any
		if err := json.Unmarshal([]byte(get(t, ctx, "the receipt", chromedp.Value(chromedp.ID("receipt")))), &receipt); err != nil {
			t.Fatal(err)
		}
		record := receipt["record"].(map[string]any)
		record["body"], record["salt"] = "", ""
		verifyPasted := func(r map[string]any) string {
			t.Helper()
			b, _ := json.Marshal(r)
			do(t, ctx, "verify a pasted receipt",
				chromedp.Evaluate[chromedp.Void](`document.getElementById("verify-result").className = ""`),
				chromedp.SetValue(chromedp.ID("receipt"), string(b)),
				chromedp.Click(chromedp.ID("verify-receipt")),
				chromedp.WaitVisible(chromedp.CSS("#verify-result.ok, #verify-result.bad")),
			)
			return text(t, ctx, "#verify-result")
		}
		if result := verifyPasted(receipt); !strings.HasPrefix(result, "验证通过，但记录正文已删除") || !strings.Contains(result, id) {
			t.Fatalf("erased record: %q", result)
		}
		if proof, _ := receipt["inclusion_proof"].([]any); len(proof) > 0 {
			h := []byte(proof[0].(string))
			h[0] ^= 1
			if h[0] == '=' || h[0] == '/' || h[0] == '+' {
				h[0] = 'A'
			}
			proof[0] = string(h)
			if result := verifyPasted(receipt); !strings.HasPrefix(result, "验证失败") {
				t.Fatalf("erased record with a forged proof: %q", result)
			}
		}
		// The consistency history: every step between stored checkpoints
		// verified on the server.
		do(t, ctx, "history", chromedp.ScrollIntoView(chromedp.ID("history")), chromedp.WaitVisible(chromedp.ID("history-table")))
		steps := get(t, ctx, "steps", chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#history-table td.step"), e => e.className)`))
		if len(steps) < 2 {
			t.Fatalf("the history shows %d checkpoints", len(steps))
		}
		for i, c := range steps {
			if c != "ok step" && !(i == len(steps)-1 && c == "step") {
				t.Fatalf("history step %d is %q, not verified consistent: %s", i, c, text(t, ctx, "#history"))
			}
		}
		screenshot(t, ctx, "evidence-history")
		do(t, ctx, "back to the verifier", chromedp.ScrollIntoView(chromedp.ID("verifier")))
		// A receipt whose record was altered does not verify.
		do(t, ctx, "tamper",
			chromedp.Evaluate[chromedp.Void](`(() => { const a = document.getElementById("receipt"); const r = JSON.parse(a.value);
				r.record.partner = "someone-else"; a.value = JSON.stringify(r); })()`),
			chromedp.Click(chromedp.ID("verify-receipt")),
			chromedp.WaitVisible(chromedp.CSS("#verify-result.bad")),
		)
		if result := text(t, ctx, "#verify-result"); !strings.Contains(result, "leaf hash mismatch") {
			t.Fatalf("tampered receipt: %q", result)
		}
	})

	t.Run("a form posted without its CSRF token is refused", func(t *testing.T) {
		do(t, ctx, "partners", chromedp.Navigate(srv.base+"/console/partners"), chromedp.WaitVisible(chromedp.ID("create-partner")))
		status := get(t, ctx, "post", chromedp.Evaluate[int](
			`fetch("/console/partners", {method: "POST", body: new URLSearchParams({name: "伪造", role: "admin"})}).then(r => r.status)`,
			chromedp.EvalAwaitPromise))
		if status != http.StatusForbidden {
			t.Fatalf("POST without a CSRF token: %d", status)
		}
	})

	t.Run("every act is in the evidence log as over the API", func(t *testing.T) {
		// The same acts over the API, to compare their records with the
		// console's: a partner created, rotated and revoked; an import; an
		// entry created; a repair applied for, reviewed and decided.
		api := func(path string, body any) map[string]any {
			t.Helper()
			code, m, err := postJSON(http.DefaultClient, srv.base+path, srv.adminToken, body)
			if err != nil || code/100 != 2 {
				t.Fatalf("POST %s: %d %v %v", path, code, m, err)
			}
			return m
		}
		apiPartner := api("/v1/admin/partners", map[string]any{"name": "某县行政审批局", "actions": []string{"government_procurement"}})["client_id"].(string)
		api("/v1/admin/partners/"+apiPartner+":rotate", map[string]any{})
		api("/v1/admin/partners/"+apiPartner+":revoke", map[string]any{})
		line := fmt.Sprintf(`{"subject_id":%q,"list":"safety_production_blacklist","originating_department":"应急管理部","reason":"发生较大生产安全责任事故","legal_basis":"《安全生产法》","decided_at":"2026-02-01T09:00:00+08:00","published_at":"2026-02-02T09:00:00+08:00"}`,
			testenv.USCC(t, "91110108MA01DT000"))
		req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/admin/entries:import", strings.NewReader(line+"\n"))
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+srv.adminToken)
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("import over the API: %v %v", res, err)
		} else {
			res.Body.Close()
		}
		decided := time.Now().AddDate(-1, -1, 0).UTC()
		apiEntry := api("/v1/admin/entries", map[string]any{
			"subject_id": testenv.USCC(t, "91110108MA01RP001"), "list": "urban_management_black",
			"originating_department": "某市城市管理局", "reason": "违法建设拒不整改", "legal_basis": "《城乡规划法》",
			"decided_at": decided.Format(time.RFC3339), "published_at": decided.Add(24 * time.Hour).Format(time.RFC3339)})["id"].(string)
		apiRepair := api("/v1/admin/entries/"+apiEntry+"/repairs", map[string]any{"grounds": "已整改并作出信用承诺", "evidence_refs": []string{"承诺书"}})["repair"].(map[string]any)["id"].(string)
		api("/v1/admin/repairs/"+apiRepair+"/review", map[string]any{"finding": "整改到位", "recommendation": "approve"})
		api("/v1/admin/repairs/"+apiRepair+"/decision", map[string]any{"decision": "approved", "note": "同意修复"})
		eu, err := url.Parse(entryURL)
		if err != nil {
			t.Fatal(err)
		}
		consoleEntry := eu.Path[strings.LastIndex(eu.Path, "/")+1:]
		var page struct {
			Acts []struct {
				Act     string         `json:"act"`
				Actor   string         `json:"actor"`
				Target  string         `json:"target"`
				Details map[string]any `json:"details"`
			} `json:"acts"`
		}
		if code := getJSON(t, srv.base, "/v1/admin/acts?limit=1000", srv.adminToken, &page); code != http.StatusOK {
			t.Fatalf("acts: %d", code)
		}
		seen := map[string]bool{}
		// The detail keys of each act by its target; the two imports (both
		// of target "entries") in order, the console's first.
		keysOf := map[string]string{}
		var imports []string
		for _, a := range page.Acts {
			if a.Actor == srv.adminID {
				seen[a.Act] = true
			}
			if a.Act == "partner_created" && a.Details["name"] == "伪造" {
				t.Error("the refused form created a partner")
			}
			keys := make([]string, 0, len(a.Details))
			for k := range a.Details {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if a.Actor != srv.adminID {
				continue
			}
			if a.Act == "entries_imported" {
				imports = append(imports, strings.Join(keys, ","))
			}
			keysOf[a.Act+" "+a.Target] = strings.Join(keys, ",")
		}
		for _, act := range []string{"partner_created", "partner_credential_rotated", "partner_revoked", "entries_imported",
			"entry_created", "objection_filed", "objection_decided", "repair_applied", "repair_reviewed", "repair_decided"} {
			if !seen[act] {
				b, _ := json.Marshal(page.Acts)
				t.Errorf("no %s act by %s in the evidence log: %s", act, srv.adminID, b)
			}
		}
		same := func(act, fromConsole, overAPI string) {
			t.Helper()
			if fromConsole == "" || fromConsole != overAPI {
				t.Errorf("%s: the console's record has details [%s], the API's [%s]", act, fromConsole, overAPI)
			}
		}
		for _, act := range []string{"partner_created", "partner_credential_rotated", "partner_revoked"} {
			same(act, keysOf[act+" "+newPartner], keysOf[act+" "+apiPartner])
		}
		same("entry_created", keysOf["entry_created "+consoleEntry], keysOf["entry_created "+apiEntry])
		for _, act := range []string{"repair_applied", "repair_reviewed", "repair_decided"} {
			same(act, keysOf[act+" "+consoleRepair], keysOf[act+" "+apiRepair])
		}
		if len(imports) != 2 {
			t.Errorf("%d imports recorded, want the console's and the API's", len(imports))
		} else {
			same("entries_imported", imports[0], imports[1])
		}
	})

	t.Run("acts, deliveries and overdue feedback in both languages", func(t *testing.T) {
		// The administrative acts, from the navigation: filtered to the
		// partners created, each row opening its evidence record.
		do(t, ctx, "acts",
			chromedp.Navigate(srv.base+"/console/overview"),
			chromedp.WaitVisible(chromedp.ID("nav-acts")),
			submit(chromedp.ID("nav-acts")),
			chromedp.WaitVisible(chromedp.ID("acts-filter")),
			fill(map[string]string{"acts-kind": "partner_created", "acts-actor": srv.adminID}),
			submit(chromedp.ID("acts-submit")),
			chromedp.WaitVisible(chromedp.ID("acts")),
		)
		kinds := get(t, ctx, "acts listed", chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#acts tr.act"), e => e.dataset.act)`))
		if len(kinds) < 2 || slices.ContainsFunc(kinds, func(k string) bool { return k != "partner_created" }) {
			t.Fatalf("the acts filtered to partners created: %v", kinds)
		}
		if row := text(t, ctx, "#acts tr.act"); !strings.Contains(row, "新建接入方") || !strings.Contains(row, srv.adminID) {
			t.Fatalf("an act's row says %q", row)
		}
		screenshot(t, ctx, "acts")
		do(t, ctx, "an act's evidence record",
			submit(chromedp.CSS("#acts a.act-record")),
			chromedp.WaitVisible(chromedp.ID("record")),
		)
		if kind := text(t, ctx, "#record dd"); kind != "管理操作" {
			t.Fatalf("the act's record is of kind %q", kind)
		}
		// Webhook deliveries and overdue feedback, from the navigation:
		// each page lists, or says that this server does not do it.
		// Where it lists, a bank's webhook fails, and its dead letter
		// is replayed from the console.
		deadLetterReplayed(t, ctx, srv, partnerID, partnerSecret)
		for _, v := range []struct{ nav, shown string }{
			{"nav-deliveries", "#deliveries-filter, #deliveries-unavailable"},
			{"nav-overdue", "#overdue-filter, #overdue-unavailable"},
		} {
			do(t, ctx, v.nav, submit(chromedp.ID(v.nav)), chromedp.WaitVisible(chromedp.CSS(v.shown)))
			if cur := get(t, ctx, "current", chromedp.AttributeValue(chromedp.ID(v.nav), "aria-current")); cur.Value != "page" {
				t.Errorf("%s is not marked as the current page", v.nav)
			}
			screenshot(t, ctx, strings.TrimPrefix(v.nav, "nav-"))
		}
		// In English, then back to Chinese.
		do(t, ctx, "english", submit(chromedp.ID("lang")), chromedp.WaitVisible(chromedp.CSS("#overdue-filter, #overdue-unavailable")))
		for _, v := range []struct{ nav, h1, shown string }{
			{"nav-overdue", "Overdue feedback", "#overdue-filter, #overdue-unavailable"},
			{"nav-deliveries", "Webhooks", "#deliveries-filter, #deliveries-unavailable"},
			{"nav-acts", "Acts", "#acts-filter"},
		} {
			do(t, ctx, v.nav+" in English", submit(chromedp.ID(v.nav)), chromedp.WaitVisible(chromedp.CSS(v.shown)))
			if h1 := text(t, ctx, "h1"); h1 != v.h1 {
				t.Errorf("%s in English is titled %q", v.nav, h1)
			}
		}
		do(t, ctx, "acts in English", fill(map[string]string{"acts-kind": "partner_created"}), submit(chromedp.ID("acts-submit")),
			chromedp.WaitVisible(chromedp.ID("acts")))
		if row := text(t, ctx, "#acts tr.act"); !strings.Contains(row, "partner created") {
			t.Errorf("an act's row in English says %q", row)
		}
		screenshot(t, ctx, "acts-en")
		do(t, ctx, "chinese", submit(chromedp.ID("lang")), chromedp.WaitVisible(chromedp.ID("acts-filter")))
		if h1 := text(t, ctx, "h1"); h1 != "操作记录" {
			t.Fatalf("after switching back the acts page is titled %q", h1)
		}
	})

	t.Run("overview in English", func(t *testing.T) {
		// Checks for the chart: of the listed subject and of clear ones.
		token := testenv.Token(t, srv.base, partnerID, partnerSecret)
		for i := range 12 {
			s := subject
			if i%3 != 0 {
				s = testenv.USCC(t, "91110108MA01C0N6"+string(rune('0'+i%10)))
			}
			mustCheck(t, srv.base, token, s)
		}
		time.Sleep(2 * time.Second) // the overview's statistics are reread
		do(t, ctx, "english",
			chromedp.Navigate(srv.base+"/console/overview"),
			submit(chromedp.ID("lang")),
			chromedp.WaitVisible(chromedp.ID("chart")),
		)
		if nav := text(t, ctx, "#nav-overview"); nav != "Overview" {
			t.Fatalf("after switching language the nav says %q", nav)
		}
		screenshot(t, ctx, "overview-en")
		do(t, ctx, "chinese", submit(chromedp.ID("lang")), chromedp.WaitVisible(chromedp.ID("chart")))
		if nav := text(t, ctx, "#nav-overview"); nav != "总览" {
			t.Fatalf("after switching back the nav says %q", nav)
		}
		screenshot(t, ctx, "overview")
	})

	t.Run("sign out", func(t *testing.T) {
		do(t, ctx, "sign out",
			submit(chromedp.ID("signout")),
			chromedp.WaitVisible(chromedp.ID("signin-form")),
			chromedp.Navigate(srv.base+"/console/partners"),
			chromedp.WaitVisible(chromedp.ID("signin-form")),
		)
		if url := get(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(url, "/console/signin") {
			t.Fatalf("after sign-out /console/partners is at %s", url)
		}
	})
}

// adminSecretOf reads the administrator's secret serve wrote on its
// first start.
func adminSecretOf(t *testing.T, dataDir string) string {
	t.Helper()
	var cred struct {
		ClientSecret string `json:"client_secret"`
	}
	b, err := os.ReadFile(filepath.Join(dataDir, adminCredentialsFile))
	if err != nil || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("admin credentials: %v", err)
	}
	return cred.ClientSecret
}

// deadLetterReplayed sets a partner's webhook to a receiver that fails,
// has an event made for it (a subject it watches is listed), and once the
// delivery is dead, finds it on the deliveries page with the receiver's
// status, replays it there and sees it delivered. When serve gives the
// console no deliverer, the page says so and there is nothing to replay.
func deadLetterReplayed(t *testing.T, ctx context.Context, srv *inproc, partnerID, partnerSecret string) {
	t.Helper()
	do(t, ctx, "deliveries", chromedp.Navigate(srv.base+"/console/deliveries"),
		chromedp.WaitVisible(chromedp.CSS("#deliveries-filter, #deliveries-unavailable")))
	if n := get(t, ctx, "unavailable", chromedp.Evaluate[int](`document.querySelectorAll("#deliveries-unavailable").length`)); n > 0 {
		t.Log("serve gives the console no deliverer: the deliveries page says so, and no dead letter is replayed")
		return
	}
	var (
		mu   sync.Mutex
		down = true
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "core banking system down", http.StatusServiceUnavailable)
		}
	}))
	defer recv.Close()
	token := testenv.Token(t, srv.base, partnerID, partnerSecret)
	req, _ := http.NewRequest(http.MethodPut, srv.base+"/v1/webhook", strings.NewReader(`{"url":"`+recv.URL+`/credgate"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("set the webhook: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	watched := testenv.USCC(t, "91110108MA01WH900")
	req, _ = http.NewRequest(http.MethodPost, srv.base+"/v1/watchlist", strings.NewReader(watched+"\n"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("watch a subject: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if code, e, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", srv.adminToken, map[string]any{
		"subject_id": watched, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "发生较大生产安全责任事故", "legal_basis": "《安全生产法》",
		"decided_at": time.Now().Add(-2 * time.Hour).Format(time.RFC3339), "published_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}); err != nil || code != http.StatusCreated {
		t.Fatalf("list the watched subject: %d %v %v", code, e, err)
	}
	waitDelivery := func(state string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			var page struct {
				Deliveries []any `json:"deliveries"`
			}
			if getJSON(t, srv.base, "/v1/admin/deliveries?partner="+partnerID+"&state="+state, srv.adminToken, &page) == http.StatusOK && len(page.Deliveries) > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s delivery to %s within a minute", state, partnerID)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitDelivery("dead")
	do(t, ctx, "dead letters",
		chromedp.Navigate(srv.base+"/console/deliveries"),
		chromedp.WaitVisible(chromedp.ID("deliveries-filter")),
		fill(map[string]string{"deliveries-partner": partnerID, "deliveries-state": "dead"}),
		submit(chromedp.ID("deliveries-submit")),
		chromedp.WaitVisible(chromedp.ID("replay-form")),
	)
	if st := shown(t, ctx, "#deliveries td.state", "data-state"); st != "dead" {
		t.Fatalf("the delivery is %q", st)
	}
	if row := text(t, ctx, "#deliveries tr.delivery"); !strings.Contains(row, "503") {
		t.Fatalf("the dead letter does not say the receiver's status: %q", row)
	}
	screenshot(t, ctx, "deliveries-dead")
	mu.Lock()
	down = false
	mu.Unlock()
	do(t, ctx, "replay", submit(chromedp.ID("replay-all")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if msg := text(t, ctx, "p.notice"); !strings.Contains(msg, "死信已重新投递") {
		t.Fatalf("after the replay the page says %q", msg)
	}
	waitDelivery("delivered")
	do(t, ctx, "delivered",
		chromedp.Navigate(srv.base+"/console/deliveries?partner="+url.QueryEscape(partnerID)+"&state=delivered"),
		chromedp.WaitVisible(chromedp.ID("deliveries")),
	)
	if st := shown(t, ctx, "#deliveries td.state", "data-state"); st != "delivered" {
		t.Fatalf("after the replay the delivery is %q", st)
	}
}
