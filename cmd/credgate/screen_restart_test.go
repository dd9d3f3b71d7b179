package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestScreeningResumesAfterSIGKILL kills a real credgate process with
// SIGKILL while it screens a file, starts it again on the same data (and
// database), and holds the job to what a bank relies on: it finishes, every
// subject is answered exactly once (no line lost or screened twice across
// the kill, the tree has one leaf per line), every outcome matches the
// known listed set and every proof verifies under the recorded root.
func TestScreeningResumesAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills servers")
	}
	longTest(t)
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { screenKillRun(t, bin, nil) })
	t.Run("postgres", func(t *testing.T) {
		screenKillRun(t, bin, []string{"CREDGATE_POSTGRES_URL=" + testenv.FreshDatabase(t, "credgate_screen_kill")})
	})
}

func screenKillRun(t *testing.T, bin string, env []string) {
	const n = 30_000
	ctx := t.Context()
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir, env...)
	adminToken := testenv.Token(t, srv.base, testAdminID, testAdminSecret)

	code, m, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/partners", adminToken,
		map[string]any{"name": "某商业银行", "actions": []string{"bank_credit"}, "rate_limit": screenQuota})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create partner: %d %v %v", code, m, err)
	}
	clientID, secret := m["client_id"].(string), m["client_secret"].(string)

	f := &screenFixture{n: n, subjects: make([]string, n), listed: map[string]bool{}}
	var entries, book bytes.Buffer
	for i := range n {
		f.subjects[i] = mustSubject(t, i)
		fmt.Fprintf(&book, "{\"id\":%q}\n", f.subjects[i])
		if i%10 == 3 {
			f.listed[f.subjects[i]] = true
			fmt.Fprintf(&entries, `{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"有履行能力而拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00+08:00","published_at":"2026-01-02T00:00:00+08:00"}`+"\n", f.subjects[i])
		}
	}
	admin, err := client.New(srv.base, client.WithTimeout(2*time.Minute), client.WithClientSecret(testAdminID, testAdminSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ImportEntries(ctx, "application/x-ndjson", entries.Bytes()); err != nil {
		t.Fatalf("import the listed subjects: %v", err)
	}

	partner, err := client.New(srv.base, client.WithClientSecret(clientID, secret))
	if err != nil {
		t.Fatal(err)
	}
	job, err := partner.SubmitScreening(ctx, "bank_credit", "application/x-ndjson", bytes.NewReader(book.Bytes()), int64(book.Len()))
	if err != nil || job.Total != n {
		t.Fatalf("submit: %+v %v", job, err)
	}

	// Kill once part of the file is screened and part is not.
	var before client.Screening
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if before, err = partner.GetScreening(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		if before.Done > 0 || before.Finished() || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	if before.Done == 0 || before.Finished() {
		t.Fatalf("the kill was to fall in the middle of the job, which was %+v", before)
	}

	srv2 := startServer(t, bin, dataDir, env...)
	partner, err = client.New(srv2.base, client.WithClientSecret(clientID, secret))
	if err != nil {
		t.Fatal(err)
	}
	var after client.Screening
	deadline = time.Now().Add(5 * time.Minute)
	for {
		if after, err = partner.GetScreening(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		if after.Finished() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not finish after the restart: %+v\n%s", after, srv2.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.State != "done" || after.Done != n || after.Counts["clear"] != n-n/10 || after.TreeSize == nil || *after.TreeSize != n {
		t.Fatalf("job after the restart: %+v", after)
	}

	var out bytes.Buffer
	if _, err := partner.ScreeningResults(ctx, job.ID, "ndjson", &out); err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, n)
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var a service.ScreenedAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		f.checkResult(t, a, after.Root, n)
		if seen[a.Line-1] {
			t.Fatalf("line %d answered twice", a.Line)
		}
		seen[a.Line-1] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != n {
		t.Fatalf("%d result lines, want %d", lines, n)
	}
	t.Logf("killed with %d of %d screened; after the restart all %d answered once, each proof verifying", before.Done, n, n)
}
