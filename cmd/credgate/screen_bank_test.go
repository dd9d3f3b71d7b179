package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
)

// resolveCredential takes the client id and its secret from one source:
// --credentials FILE wins over the administrator's environment, and an id
// is never paired with another credential's secret.
func TestResolveCredentialOneSource(t *testing.T) {
	dir := t.TempDir()
	bank := filepath.Join(dir, "risk2.json")
	if err := os.WriteFile(bank, []byte(`{"client_id":"bank","client_secret":"bank-secret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, adminCredentialsFile), []byte(`{"client_id":"admin","client_secret":"admin-file-secret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                             string
		flagID, envID, envSecret, path   string
		wantID, wantSecret, wantErrWords string
	}{
		{name: "the file wins over both variables", envID: "admin", envSecret: "admin-secret", path: bank, wantID: "bank", wantSecret: "bank-secret"},
		{name: "the file wins over the id alone", envID: "admin", path: bank, wantID: "bank", wantSecret: "bank-secret"},
		{name: "the file wins over the secret alone", envSecret: "admin-secret", path: bank, wantID: "bank", wantSecret: "bank-secret"},
		{name: "--client-id of the file", flagID: "bank", envID: "admin", envSecret: "admin-secret", path: bank, wantID: "bank", wantSecret: "bank-secret"},
		{name: "--client-id not the file's", flagID: "admin", path: bank, wantErrWords: "--client-id \"admin\" is not the client id of --credentials"},
		{name: "the variables", envID: "admin", envSecret: "admin-secret", wantID: "admin", wantSecret: "admin-secret"},
		{name: "--client-id with the secret variable", flagID: "other", envID: "admin", envSecret: "admin-secret", wantID: "other", wantSecret: "admin-secret"},
		{name: "the secret variable alone", envSecret: "admin-secret", wantErrWords: "without a client id"},
		{name: "an id without its secret", envID: "someone", wantErrWords: "CREDGATE_ADMIN_CLIENT_ID \"someone\" has no secret"},
		{name: "the data dir's file", wantID: "admin", wantSecret: "admin-file-secret"},
		{name: "the data dir's file, its id named", envID: "admin", wantID: "admin", wantSecret: "admin-file-secret"},
	} {
		id, secret, err := resolveCredential(tc.flagID, tc.envID, tc.envSecret, tc.path, dataDir)
		switch {
		case tc.wantErrWords != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErrWords) || !strings.Contains(err.Error(), "--credentials") {
				t.Errorf("%s: %q %q %v, want an error saying %q and naming --credentials", tc.name, id, secret, err, tc.wantErrWords)
			}
		case err != nil || id != tc.wantID || secret != tc.wantSecret:
			t.Errorf("%s: %q %q %v, want %q %q", tc.name, id, secret, err, tc.wantID, tc.wantSecret)
		}
	}
}

// refusalText tells a bank refused for its quota when to send the file
// again, as a time and a wait, and keeps what the server said.
func TestScreenQuotaRefusalText(t *testing.T) {
	now := time.Date(2026, 12, 7, 23, 23, 0, 0, time.UTC)
	e := &client.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Detail: "rate limited: 2000000 requests per 24h0m0s (49796 remain); wait Retry-After seconds", RetryAfter: 23*time.Hour + 48*time.Minute + 30*time.Second}
	got := refusalText(e, now)
	want := "429 rate_limited: rate limited: 2000000 requests per 24h0m0s (49796 remain); retry after 2026-12-08T23:12Z, in 23 h 49 min"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	e.RetryAfter = 90 * time.Second
	if got := refusalText(e, now); !strings.HasSuffix(got, "retry after 2026-12-07T23:25Z, in 2 min") {
		t.Errorf("90 s: %q", got)
	}
	e.RetryAfter = 0
	if got := refusalText(e, now); !strings.HasSuffix(got, "; retry later") || strings.Contains(got, "Retry-After") {
		t.Errorf("no Retry-After: %q", got)
	}
	other := &client.Error{Status: http.StatusUnprocessableEntity, Code: "screening_exceeds_quota", Detail: "split the file"}
	if got := refusalText(other, now); got != other.Error() {
		t.Errorf("another refusal: %q", got)
	}
}

// A bank's screening, run after run, on a real server: the credential
// named with --credentials is the one screening (not an administrator's
// of the environment), a job that cannot be resumed is not re-attached to
// for ever, a --receipts directory holds one screening's receipts, a quota
// refusal says when to retry, and re-attaching to a finished job shows
// no rate of subjects screened in no time.
func TestScreenBankReruns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	f := newScreenFixture(t, 40)
	ctx := t.Context()
	bankID := f.partner.ClientID()
	book := filepath.Join(f.dir, "book.csv")
	reversed := filepath.Join(f.dir, "book2.csv")
	var cs, rs bytes.Buffer
	cs.WriteString("id\n")
	rs.WriteString("id\n")
	for i := range f.subjects {
		cs.WriteString(f.subjects[i] + "\n")
		rs.WriteString(f.subjects[len(f.subjects)-1-i] + "\n")
	}
	if err := os.WriteFile(book, cs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reversed, rs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--url", f.srv.base, "--credentials", f.partnerCred, "--poll", "100ms"}
	screen := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, append(append([]string{"screen"}, args...), common...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	partnerOf := func(t *testing.T, out string) (partner, screening string) {
		t.Helper()
		r, root, err := jobReceiptTree(out + ".receipt.json")
		if err != nil {
			t.Fatal(err)
		}
		return r.Record.Partner, root.ScreeningID
	}

	var firstJob string
	receipts := filepath.Join(f.dir, "hits")
	t.Run("credentials file wins over the administrator's environment", func(t *testing.T) {
		adminSecret := adminSecretOf(t, f.srv.dataDir)
		for i, env := range [][2]string{{f.srv.adminID, adminSecret}, {f.srv.adminID, ""}} {
			t.Setenv("CREDGATE_ADMIN_CLIENT_ID", env[0])
			t.Setenv("CREDGATE_ADMIN_CLIENT_SECRET", env[1])
			out := filepath.Join(f.dir, fmt.Sprintf("env%d.csv", i))
			code, stdout, stderr := screen(book, "--action", "bank_credit", "--out", out)
			if code != 0 {
				t.Fatalf("secret set %v: exit %d\n%s%s", env[1] != "", code, stdout, stderr)
			}
			if partner, _ := partnerOf(t, out); partner != bankID {
				t.Fatalf("secret set %v: the job's record names %q, not the bank %q of --credentials", env[1] != "", partner, bankID)
			}
		}
	})

	t.Run("receipts of one screening in DIR", func(t *testing.T) {
		out := filepath.Join(f.dir, "first.csv")
		code, stdout, stderr := screen(book, "--action", "bank_credit", "--out", out, "--receipts", receipts)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		_, firstJob = partnerOf(t, out)
		names := func() []string {
			entries, err := os.ReadDir(receipts)
			if err != nil {
				t.Fatal(err)
			}
			var n []string
			for _, e := range entries {
				n = append(n, e.Name())
			}
			return n
		}
		before := names()
		if len(before) != len(f.subjects)/10 {
			t.Fatalf("%d receipts: %v", len(before), before)
		}
		// Another file's screening into the same DIR is refused before
		// the file is sent, and leaves DIR as it was.
		code, stdout, stderr = screen(reversed, "--action", "bank_credit", "--out", filepath.Join(f.dir, "second.csv"), "--receipts", receipts)
		if code != exitUsage || !strings.Contains(stderr, "a receipt of screening "+firstJob) || strings.Contains(stderr, "accepted") {
			t.Fatalf("another screening into the same DIR: exit %d\n%s%s", code, stdout, stderr)
		}
		if after := names(); !slices.Equal(after, before) {
			t.Fatalf("DIR changed: %v, was %v", after, before)
		}
		// Another record's receipt is refused too: the README's loop would
		// verify it as one of this file's hits.
		other := filepath.Join(f.dir, "other-hits")
		if err := os.MkdirAll(other, 0o700); err != nil {
			t.Fatal(err)
		}
		rb, err := os.ReadFile(out + ".receipt.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, "check.json"), rb, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := screen("--job", firstJob, "--out", filepath.Join(f.dir, "third.csv"), "--receipts", other); code != exitUsage ||
			!strings.Contains(stderr, "check.json is a receipt of record ") {
			t.Fatalf("a single record's receipt in DIR: exit %d\n%s", code, stderr)
		}
		// The same job re-attached into the same DIR is its own receipts
		// again.
		code, stdout, stderr = screen("--job", firstJob, "--out", filepath.Join(f.dir, "again.ndjson"), "--receipts", receipts)
		if code != 0 || !strings.Contains(stdout, "4 chained receipts in "+receipts) {
			t.Fatalf("the same job into the same DIR: exit %d\n%s%s", code, stdout, stderr)
		}
		if after := names(); !slices.Equal(after, before) {
			t.Fatalf("DIR changed: %v, was %v", after, before)
		}
	})

	t.Run("re-attaching to a finished job shows no rate", func(t *testing.T) {
		if firstJob == "" {
			t.Skip("no first job")
		}
		code, stdout, stderr := screen("--job", firstJob, "--out", filepath.Join(f.dir, "rate.csv"))
		if code != 0 || !strings.Contains(stderr, "screening "+firstJob+" had finished (done) before this run") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if m := regexp.MustCompile(`(?m)^screen.*subjects/s.*$`).FindString(stderr); m != "" {
			t.Fatalf("a rate of subjects screened while none was: %q", m)
		}
	})

	t.Run("a job the server does not have is forgotten", func(t *testing.T) {
		if firstJob == "" {
			t.Skip("no first job")
		}
		out := filepath.Join(f.dir, "gone.csv")
		missing := firstJob[:len(firstJob)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", firstJob[len(firstJob)-1])+1)%16])
		b, _ := json.Marshal(screenJobFile{ID: missing, File: book, Action: "bank_credit"})
		if err := os.WriteFile(out+".job", b, 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := screen(book, "--action", "bank_credit", "--out", out)
		if code != 1 || !strings.Contains(stderr, "re-attaching to screening "+missing) || !strings.Contains(stderr, out+".job removed") ||
			!strings.Contains(stderr, "run the same command again to submit the file afresh") {
			t.Fatalf("a job not found: exit %d\n%s%s", code, stdout, stderr)
		}
		if _, err := os.Stat(out + ".job"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the job file is left: %v", err)
		}
		code, stdout, stderr = screen(book, "--action", "bank_credit", "--out", out)
		if code != 0 || strings.Contains(stderr, "re-attaching") || !strings.Contains(stderr, "accepted") {
			t.Fatalf("the same command again: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("a quota refusal says when to retry", func(t *testing.T) {
		code, m, err := postJSON(http.DefaultClient, f.srv.base+"/v1/admin/partners", f.srv.adminToken,
			map[string]any{"name": "某农村商业银行", "actions": []string{"bank_credit"}, "rate_limit": "60-D"})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("create partner: %d %v %v", code, m, err)
		}
		cred := filepath.Join(f.dir, "small.json")
		b, _ := json.Marshal(map[string]any{"client_id": m["client_id"], "client_secret": m["client_secret"]})
		if err := os.WriteFile(cred, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args := func(out string) []string {
			return []string{"screen", book, "--action", "bank_credit", "--out", out, "--url", f.srv.base, "--credentials", cred, "--poll", "100ms"}
		}
		if code, _, stderr := runCmd(t, args(filepath.Join(f.dir, "q1.csv"))...); code != 0 {
			t.Fatalf("first file: exit %d\n%s", code, stderr)
		}
		code, _, stderr := runCmd(t, args(filepath.Join(f.dir, "q2.csv"))...)
		if code != 1 || !strings.Contains(stderr, "429 rate_limited") || strings.Contains(stderr, "wait Retry-After seconds") ||
			!regexp.MustCompile(`retry after 20\d\d-\d\d-\d\dT\d\d:\d\dZ, in (\d+ h )?\d+ min`).MatchString(stderr) {
			t.Fatalf("over the quota: exit %d\n%s", code, stderr)
		}
	})
}

// A job that failed, or whose results expired, is not re-attached to for
// ever: OUT.job is removed, the message says so, and the same command then
// submits the file again.
func TestScreenForgetsEndedJob(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem := func(status int, code, detail string) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "code": code, "title": code, "detail": detail})
		}
		job := func(v map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		switch {
		case r.URL.Path == "/v1/oauth/token":
			job(map[string]any{"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
		case r.Method == http.MethodPost && r.URL.Path == "/v1/screenings":
			posts.Add(1)
			w.WriteHeader(http.StatusAccepted)
			job(map[string]any{"id": "job-new", "action": "bank_credit", "state": "queued", "total": 3})
		case r.URL.Path == "/v1/screenings/job-failed" || r.URL.Path == "/v1/screenings/job-new":
			job(map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/v1/screenings/"), "action": "bank_credit", "state": "failed", "total": 300000, "done": 132000,
				"error": "the partner's scope was narrowed: it may no longer check action bank_credit: the job stopped after 132000 of 300000 subjects and their answers were discarded"})
		case r.URL.Path == "/v1/screenings/job-expired":
			size := uint64(3)
			job(map[string]any{"id": "job-expired", "action": "bank_credit", "state": "done", "total": 3, "done": 3, "tree_size": size, "root": strings.Repeat("ab", 32)})
		case r.URL.Path == "/v1/screenings/job-expired/results":
			problem(http.StatusGone, "screening_expired", "the results of screening job-expired were kept 7 days and are deleted")
		default:
			problem(http.StatusNotFound, "not_found", "no such thing")
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cred := filepath.Join(dir, "risk2.json")
	if err := os.WriteFile(cred, []byte(`{"client_id":"bank","client_secret":"s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	book := filepath.Join(dir, "book.csv")
	if err := os.WriteFile(book, []byte("id\nA\nB\nC\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ job, says string }{
		{"job-failed", "screening job-failed failed: the partner's scope was narrowed"},
		{"job-expired", "410 screening_expired"},
	} {
		posts.Store(0)
		out := filepath.Join(dir, tc.job+".csv")
		b, _ := json.Marshal(screenJobFile{ID: tc.job, File: book, Action: "bank_credit", ClientID: "bank"})
		if err := os.WriteFile(out+".job", b, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"screen", book, "--action", "bank_credit", "--out", out, "--url", srv.URL, "--credentials", cred, "--poll", "100ms"}
		code, _, stderr := runCmd(t, args...)
		if code != 1 || !strings.Contains(stderr, tc.says) || !strings.Contains(stderr, out+".job removed: run the same command again to submit the file afresh") {
			t.Fatalf("%s: exit %d\n%s", tc.job, code, stderr)
		}
		if _, err := os.Stat(out + ".job"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the job file is left: %v", tc.job, err)
		}
		// The same command submits the file again (here to a job that
		// fails too, and is forgotten in its turn).
		code, _, stderr = runCmd(t, args...)
		if code != 1 || posts.Load() != 1 || strings.Contains(stderr, "re-attaching") || !strings.Contains(stderr, "screening job-new failed") {
			t.Fatalf("%s, again: exit %d, %d submissions\n%s", tc.job, code, posts.Load(), stderr)
		}
		if _, err := os.Stat(out + ".job"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s, again: the job file is left: %v", tc.job, err)
		}
	}
}
