package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
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
// a laptop's screen without scrolling.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
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
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("main")),
	)
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

// TestConsoleInBrowser drives the console in headless chromium against
// the real serve wiring: a partner's credential is refused, an
// administrator signs in, lists a subject and sees its measures, creates a
// partner and copies its secret (which then works at the token endpoint),
// files and rejects an objection and sees the validity end move, verifies
// a receipt in the browser against the pinned key (and sees a tampered one
// fail), has a form posted without its CSRF token refused, and signs out.
// Every act done in the console is in the evidence log as the API's acts
// are. Screenshots of each screen go to docs/console/.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ctx := newBrowser(t)
	srv := startInProcess(t)
	adminSecret := adminSecretOf(t, srv.dataDir)
	subject := validUSCC(t, "91110108MA01C0N50")

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
			chromedp.Click(chromedp.ID("create-entry-submit")),
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
			chromedp.Click(chromedp.ID("lookup")),
			chromedp.WaitVisible(chromedp.ID("action-government_procurement")),
		)
		measures := get(t, ctx, "measures", chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#action-government_procurement tr.measure code"), e => e.textContent)`))
		if len(measures) == 0 {
			t.Fatal("no measures shown for government_procurement")
		}
		screenshot(t, ctx, "subjects")
		do(t, ctx, "entries", chromedp.Navigate(srv.base+"/console/entries?subject_id="+subject), chromedp.WaitVisible(chromedp.ID("entries")))
		screenshot(t, ctx, "entries")
	})

	var newPartner string
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
			chromedp.Click(chromedp.ID("create-partner-submit")),
			chromedp.WaitVisible(chromedp.ID("secret-box")),
			chromedp.Click(chromedp.ID("copy-secret")),
			chromedp.WaitVisible(chromedp.ID("copied")),
		)
		secret := get(t, ctx, "secret", chromedp.Value(chromedp.ID("client-secret")))
		copied := get(t, ctx, "clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		newPartner = text(t, ctx, "h1 code")
		if secret == "" || copied != secret {
			t.Fatalf("clipboard holds %q, the page showed %q", copied, secret)
		}
		screenshot(t, ctx, "partner")
		// The copied secret is a working credential.
		getToken(t, srv.base, newPartner, copied)
		do(t, ctx, "partners", chromedp.Navigate(srv.base+"/console/partners"), chromedp.WaitVisible(chromedp.ID("partners")))
		screenshot(t, ctx, "partners")
	})

	t.Run("file and reject an objection and see the deadline move", func(t *testing.T) {
		do(t, ctx, "entry", chromedp.Navigate(entryURL), chromedp.WaitVisible(chromedp.ID("file-objection")))
		before := text(t, ctx, "#valid-until")
		do(t, ctx, "file",
			chromedp.SetValue(chromedp.ID("objection-grounds"), "主体称事故责任认定有误"),
			chromedp.Click(chromedp.ID("file-objection-submit")),
			chromedp.WaitVisible(chromedp.ID("decide-objection")),
		)
		if due, status := text(t, ctx, "#objections td.due"), text(t, ctx, "#entry-status"); due == "—" || status != "under_objection" {
			t.Fatalf("after filing: due %q, status %q", due, status)
		}
		do(t, ctx, "proceedings", chromedp.Navigate(srv.base+"/console/proceedings?kind=objection"), chromedp.WaitVisible(chromedp.ID("proceedings")))
		screenshot(t, ctx, "proceedings")
		// The suspension must last long enough to show in seconds.
		time.Sleep(1500 * time.Millisecond)
		do(t, ctx, "reject",
			chromedp.Navigate(entryURL),
			chromedp.WaitVisible(chromedp.ID("decide-objection")),
			fill(map[string]string{"objection-decision": "rejected"}),
			chromedp.Click(chromedp.ID("decide-objection-submit")),
			chromedp.WaitVisible(chromedp.ID("file-objection")),
		)
		after := text(t, ctx, "#valid-until")
		if before == after || before == "—" {
			t.Fatalf("validity end did not move: before %q, after %q", before, after)
		}
		t.Logf("validity end moved from %s to %s", before, after)
		screenshot(t, ctx, "entry")
	})

	t.Run("verify a receipt in the browser", func(t *testing.T) {
		check := mustCheck(t, srv.base, getToken(t, srv.base, partnerID, partnerSecret), subject)
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
		for _, a := range page.Acts {
			if a.Actor == srv.adminID {
				seen[a.Act] = true
			}
			if a.Act == "partner_created" && a.Details["name"] == "伪造" {
				t.Error("the refused form created a partner")
			}
		}
		for _, act := range []string{"partner_created", "entry_created", "objection_filed", "objection_decided"} {
			if !seen[act] {
				b, _ := json.Marshal(page.Acts)
				t.Errorf("no %s act by %s in the evidence log: %s", act, srv.adminID, b)
			}
		}
	})

	t.Run("overview in English", func(t *testing.T) {
		// Checks for the chart: of the listed subject and of clear ones.
		token := getToken(t, srv.base, partnerID, partnerSecret)
		for i := range 12 {
			s := subject
			if i%3 != 0 {
				s = validUSCC(t, "91110108MA01C0N6"+string(rune('0'+i%10)))
			}
			mustCheck(t, srv.base, token, s)
		}
		time.Sleep(2 * time.Second) // the overview's statistics are reread
		do(t, ctx, "english",
			chromedp.Navigate(srv.base+"/console/overview"),
			chromedp.Click(chromedp.ID("lang")),
			chromedp.WaitVisible(chromedp.ID("chart")),
		)
		if nav := text(t, ctx, "#nav-overview"); nav != "Overview" {
			t.Fatalf("after switching language the nav says %q", nav)
		}
		screenshot(t, ctx, "overview-en")
		do(t, ctx, "chinese", chromedp.Click(chromedp.ID("lang")), chromedp.WaitVisible(chromedp.ID("chart")))
		if nav := text(t, ctx, "#nav-overview"); nav != "总览" {
			t.Fatalf("after switching back the nav says %q", nav)
		}
		screenshot(t, ctx, "overview")
	})

	t.Run("sign out", func(t *testing.T) {
		do(t, ctx, "sign out",
			chromedp.Click(chromedp.ID("signout")),
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
