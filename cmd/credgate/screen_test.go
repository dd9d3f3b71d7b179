package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// screenSubjects is the size of the screening tests' file:
// CREDGATE_TEST_SCREEN_SUBJECTS, or n.
func screenSubjects(t *testing.T, n int) int {
	t.Helper()
	if v := os.Getenv("CREDGATE_TEST_SCREEN_SUBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 20 {
			t.Fatalf("CREDGATE_TEST_SCREEN_SUBJECTS=%q: want a number ≥ 20", v)
		}
	}
	return n
}

// screenQuota is the screening tests' partners' quota: a job costs one
// unit a subject, and the default quota (6000-M) covers no test's file.
const screenQuota = "2000000-M"

// screenFixture is a server with a partner allowed bank_credit, and the
// subjects of a screening file of which every tenth is listed.
type screenFixture struct {
	srv         *inproc
	n           int
	subjects    []string
	listed      map[string]bool
	partnerCred string // credential file
	partner     *client.Client
	vkey        string
	dir         string
}

func newScreenFixture(t *testing.T, n int, serveArgs ...string) *screenFixture {
	t.Helper()
	f := &screenFixture{srv: startInProcess(t, serveArgs...), n: n, listed: map[string]bool{}, dir: t.TempDir()}
	ctx := t.Context()
	code, m, err := postJSON(http.DefaultClient, f.srv.base+"/v1/admin/partners", f.srv.adminToken,
		map[string]any{"name": "某商业银行", "actions": []string{"bank_credit"}, "rate_limit": screenQuota})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create partner: %d %v %v", code, m, err)
	}
	f.partnerCred = filepath.Join(f.dir, "bank.json")
	b, _ := json.Marshal(map[string]any{"client_id": m["client_id"], "client_secret": m["client_secret"]})
	if err := os.WriteFile(f.partnerCred, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.partner, err = client.New(f.srv.base, client.WithClientSecret(m["client_id"].(string), m["client_secret"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(f.srv.base, client.WithTimeout(5*time.Minute), client.WithClientSecret(f.srv.adminID, adminSecretOf(t, f.srv.dataDir)))
	if err != nil {
		t.Fatal(err)
	}
	var imp bytes.Buffer
	f.subjects = make([]string, n)
	for i := range n {
		f.subjects[i] = mustSubject(t, i)
		if i%10 == 3 {
			f.listed[f.subjects[i]] = true
			fmt.Fprintf(&imp, `{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"有履行能力而拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00+08:00","published_at":"2026-01-02T00:00:00+08:00"}`+"\n", f.subjects[i])
		}
	}
	if _, err := admin.ImportEntries(ctx, "application/x-ndjson", imp.Bytes()); err != nil {
		t.Fatalf("import the listed subjects: %v", err)
	}
	f.vkey = verifierKey(t, f.srv.base)
	return f
}

// checkResult checks one result against the known listed set.
func (f *screenFixture) checkResult(t *testing.T, a service.ScreenedAnswer, root string, size uint64) {
	t.Helper()
	i := int(a.Line) - 1
	if i < 0 || i >= f.n || a.SubjectID != f.subjects[i] {
		t.Fatalf("result line %d is about %q", a.Line, a.SubjectID)
	}
	if a.Error != nil || a.LeafIndex == nil {
		t.Fatalf("line %d: %+v", a.Line, a.Error)
	}
	if listed := f.listed[a.SubjectID]; listed == (a.Outcome == "clear") || a.Outcome == "" {
		t.Fatalf("line %d (%s, listed %v): outcome %q", a.Line, a.SubjectID, listed, a.Outcome)
	}
	// Every proof is checked; the chained receipts of a sample go through
	// credgate verify below.
	if err := service.VerifyScreenedAnswer(a.Answer, *a.LeafIndex, size, a.Proof, root); err != nil {
		t.Fatalf("line %d: %v", a.Line, err)
	}
}

// verifySample writes the chained receipts of about 20 results (listed and
// not) and runs credgate verify on them, and on one tampered in each link.
func (f *screenFixture) verifySample(t *testing.T, job evidence.Receipt, size uint64, sample []service.ScreenedAnswer) {
	t.Helper()
	dir := filepath.Join(f.dir, "receipts-"+job.Record.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"verify", "--key", f.vkey}
	var first evidence.ScreeningReceipt
	for k, a := range sample {
		r, err := chainedReceipt(job, size, a)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			first = r
		}
		path := filepath.Join(dir, strconv.FormatInt(a.Line, 10)+".json")
		b, _ := json.Marshal(r)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	if code, out := runCLI(args...); code != 0 || strings.Count(out, ": OK: subject ") != len(sample) {
		t.Fatalf("verify of %d chained receipts: exit %d\n%s", len(sample), code, out)
	}
	tampered := map[string]func(r *evidence.ScreeningReceipt){
		"the answer's leaf": func(r *evidence.ScreeningReceipt) {
			b, _ := base64.StdEncoding.DecodeString(r.Answer)
			r.Answer = base64.StdEncoding.EncodeToString(bytes.Replace(b, []byte(`"outcome":"`), []byte(`"outcome":"x`), 1))
		},
		"the job's record": func(r *evidence.ScreeningReceipt) { r.JobReceipt.Record.Partner = "someone-else" },
		"the tree's size":  func(r *evidence.ScreeningReceipt) { r.TreeSize++ },
	}
	for name, tamper := range tampered {
		r := first
		r.JobReceipt.InclusionProof = append([]string(nil), first.JobReceipt.InclusionProof...)
		tamper(&r)
		path := filepath.Join(dir, "tampered.json")
		b, _ := json.Marshal(r)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out := runCLI("verify", "--key", f.vkey, path); code != 1 || !strings.Contains(out, "FAILED") {
			t.Fatalf("tampered %s: exit %d\n%s", name, code, out)
		}
	}
}

// TestScreeningAtScale screens CREDGATE_TEST_SCREEN_SUBJECTS subjects
// (default 100,000; every tenth listed) through the API and then through
// `credgate screen`, on a real server on PostgreSQL: every answer's
// outcome matches the known listed set, every proof verifies under the
// recorded root, and a sample of chained receipts verifies offline with
// `credgate verify` (a tampered one in each link does not). About 18 s on
// two cores at the default size (load average 7 to 9).
func TestScreeningAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("screens 100,000 subjects twice")
	}
	longTest(t)
	screenAtScale(t, screenSubjects(t, 100_000), "--postgres-url", testenv.FreshDatabase(t, "credgate_screen"))
}

// TestScreeningAtScaleSQLite is TestScreeningAtScale on SQLite, with
// 25,000 subjects by default: the same job, batches and proofs, but
// SQLite under the race detector (which instruments the whole database
// engine, compiled from C to Go) made 100,000 cost minutes of every CI
// run; the 100,000-subject run through the API and the CLI is
// TestScreeningAtScale's.
func TestScreeningAtScaleSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("screens 25,000 subjects twice")
	}
	longTest(t)
	screenAtScale(t, screenSubjects(t, 25_000))
}

func screenAtScale(t *testing.T, n int, serveArgs ...string) {
	f := newScreenFixture(t, n, serveArgs...)
	ctx := t.Context()

	// The same file, as NDJSON for the API and CSV for the command.
	ndjson := filepath.Join(f.dir, "book.ndjson")
	csvFile := filepath.Join(f.dir, "book.csv")
	var nd, cs bytes.Buffer
	cs.WriteString("name,id\n")
	for i, s := range f.subjects {
		fmt.Fprintf(&nd, "{\"id\":%q}\n", s)
		fmt.Fprintf(&cs, "借款人%d,%s\n", i, s)
	}
	if err := os.WriteFile(ndjson, nd.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csvFile, cs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("api", func(t *testing.T) {
		start := time.Now()
		file, err := os.Open(ndjson)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		job, err := f.partner.SubmitScreening(ctx, "bank_credit", "application/x-ndjson", file, -1)
		if err != nil || job.State != "queued" || job.Total != int64(n) {
			t.Fatalf("submit: %+v %v", job, err)
		}
		for !job.Finished() {
			time.Sleep(200 * time.Millisecond)
			if job, err = f.partner.GetScreening(ctx, job.ID); err != nil {
				t.Fatal(err)
			}
		}
		screened := time.Since(start)
		if job.State != "done" || job.Counts["clear"] != int64(n-n/10) || job.TreeSize == nil || *job.TreeSize != uint64(n) {
			t.Fatalf("job %+v", job)
		}
		var out bytes.Buffer
		if _, err := f.partner.ScreeningResults(ctx, job.ID, "ndjson", &out); err != nil {
			t.Fatal(err)
		}
		rb, err := f.partner.Receipt(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		receiptPath := filepath.Join(f.dir, "api.receipt.json")
		if err := os.WriteFile(receiptPath, rb, 0o600); err != nil {
			t.Fatal(err)
		}
		jr, size, err := jobReceipt(receiptPath)
		if err != nil || size != uint64(n) {
			t.Fatalf("job receipt: size %d, %v", size, err)
		}
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		lines := 0
		var sample []service.ScreenedAnswer
		for sc.Scan() {
			lines++
			var a service.ScreenedAnswer
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			f.checkResult(t, a, job.Root, uint64(n))
			if a.Line%int64(max(n/20, 1)) == 4 || a.Line == int64(n) {
				sample = append(sample, a)
			}
		}
		if lines != n {
			t.Fatalf("%d result lines, want %d", lines, n)
		}
		f.verifySample(t, jr, size, sample)
		t.Logf("%d subjects screened through the API in %s (results and checks: %s)", n, screened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})

	t.Run("cli", func(t *testing.T) {
		start := time.Now()
		out := filepath.Join(f.dir, "book.results.csv")
		receipts := filepath.Join(f.dir, "receipts")
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"screen", csvFile, "--action", "bank_credit", "--out", out, "--url", f.srv.base,
			"--credentials", f.partnerCred, "--receipts", receipts, "--poll", "200ms"}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), fmt.Sprintf("%d subjects screened for bank_credit: %d clear", n, n-n/10)) {
			t.Fatalf("stdout: %s", stdout.String())
		}
		// Not a terminal: progress as plain lines, and the job file gone.
		if strings.Contains(stderr.String(), "\r") {
			t.Fatalf("carriage returns in a non-terminal's progress: %q", stderr.String())
		}
		if _, err := os.Stat(out + ".job"); !os.IsNotExist(err) {
			t.Fatalf("the job file is left: %v", err)
		}
		jr, size, err := jobReceipt(out + ".receipt.json")
		if err != nil || size != uint64(n) {
			t.Fatalf("job receipt: size %d, %v", size, err)
		}
		var root evidence.ScreeningRoot
		body, _ := base64.StdEncoding.DecodeString(jr.Record.Body)
		_ = json.Unmarshal(body, &root)
		lines := 0
		var sample []service.ScreenedAnswer
		if err := eachResult(out, "csv", func(a service.ScreenedAnswer) error {
			lines++
			f.checkResult(t, a, root.Root, size)
			if a.Line%int64(max(n/20, 1)) == 7 {
				sample = append(sample, a)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if lines != n {
			t.Fatalf("%d result rows, want %d", lines, n)
		}
		f.verifySample(t, jr, size, sample)
		// A chained receipt for every listed subject, written by the
		// command itself, verifies too (a few of them, by name).
		entries, err := os.ReadDir(receipts)
		if err != nil || len(entries) != n/10 {
			t.Fatalf("%d chained receipts, want %d: %v", len(entries), n/10, err)
		}
		args := []string{"verify", "--key", f.vkey}
		for _, e := range entries[:5] {
			args = append(args, filepath.Join(receipts, e.Name()))
		}
		if code, vout := runCLI(args...); code != 0 {
			t.Fatalf("verify the command's receipts: exit %d\n%s", code, vout)
		}
		t.Logf("%d subjects screened through credgate screen in %s (with the checks)", n, time.Since(start).Round(time.Millisecond))
	})
}

// TestWriteScreeningFiles writes, when CREDGATE_SCREEN_FILES_DIR is set,
// the files of the measured screening run (docs/PERFORMANCE.md, "Screening
// jobs"): book.csv of CREDGATE_TEST_SCREEN_SUBJECTS subjects (default
// 100,000) and entries.csv listing every tenth of them, for `credgate
// import`.
func TestWriteScreeningFiles(t *testing.T) {
	dir := os.Getenv("CREDGATE_SCREEN_FILES_DIR")
	if dir == "" {
		t.Skip("CREDGATE_SCREEN_FILES_DIR is not set")
	}
	n := screenSubjects(t, 100_000)
	write := func(name string, fill func(w *bufio.Writer)) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		fill(w)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("book.csv", func(w *bufio.Writer) {
		w.WriteString("name,id\n")
		for i := range n {
			fmt.Fprintf(w, "借款人%d,%s\n", i, mustSubject(t, i))
		}
	})
	write("entries.csv", func(w *bufio.Writer) {
		w.WriteString("subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n")
		for i := 3; i < n; i += 10 {
			fmt.Fprintf(w, "%s,court_dishonest_debtor,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02\n", mustSubject(t, i))
		}
	})
}

// TestScreenCommandExits: the command's exit statuses a batch job relies
// on, on SQLite: a refused file is 1 with its lines named, an interrupt
// after the job was accepted is 3 and says how to resume, and the same
// command then re-attaches to the job (OUT.job) instead of sending the
// file again.
func TestScreenCommandExits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	// The jobs' files go where store.screenings_dir says, not under the
	// data dir (serve once ignored the setting).
	jobsDir := t.TempDir()
	f := newScreenFixture(t, 40, "--screenings-dir", jobsDir)
	ctx := t.Context()
	bad := filepath.Join(f.dir, "bad.ndjson")
	if err := os.WriteFile(bad, []byte("{\"id\":\"x\"}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--url", f.srv.base, "--credentials", f.partnerCred, "--poll", "100ms"}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, append([]string{"screen", bad, "--action", "bank_credit"}, common...), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "bad.ndjson:2:") {
		t.Fatalf("refused file: exit %d\n%s", code, stderr.String())
	}
	if code := run(ctx, []string{"screen", "--action", "bank_credit"}, &stdout, &stderr); code != 2 {
		t.Fatalf("no file: exit %d", code)
	}

	book := filepath.Join(f.dir, "book.csv")
	var cs bytes.Buffer
	cs.WriteString("id\n")
	for _, s := range f.subjects {
		cs.WriteString(s + "\n")
	}
	if err := os.WriteFile(book, cs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "out.ndjson")
	// Interrupted as soon as the job is accepted: the upload is done, the
	// job goes on.
	ictx, cancel := context.WithCancel(ctx)
	stderr.Reset()
	w := writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("accepted")) {
			cancel()
		}
		return stderr.Write(p)
	})
	code := run(ictx, append([]string{"screen", book, "--action", "bank_credit", "--out", out}, common...), &stdout, w)
	if code != exitResumable || !strings.Contains(stderr.String(), "run the same command again") {
		t.Fatalf("interrupted: exit %d\n%s", code, stderr.String())
	}
	var saved screenJobFile
	b, err := os.ReadFile(out + ".job")
	if err != nil || json.Unmarshal(b, &saved) != nil || saved.ID == "" {
		t.Fatalf("job file: %s %v", b, err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, append([]string{"screen", book, "--action", "bank_credit", "--out", out}, common...), &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "re-attaching to screening "+saved.ID) || strings.Contains(stderr.String(), "accepted") {
		t.Fatalf("resumed: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	lines := 0
	if err := eachResult(out, "ndjson", func(a service.ScreenedAnswer) error {
		lines++
		return nil
	}); err != nil || lines != len(f.subjects) {
		t.Fatalf("%d results: %v", lines, err)
	}
	// --job re-attaches explicitly, here to a done job: its results again.
	again := filepath.Join(f.dir, "again.csv")
	if code := run(ctx, append([]string{"screen", "--job", saved.ID, "--out", again}, common...), &stdout, &stderr); code != 0 {
		t.Fatalf("--job: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(jobsDir, saved.ID, "results")); err != nil {
		t.Fatalf("the job's results are not in store.screenings_dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.srv.dataDir, "screenings", saved.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the job's files are under the data dir too: %v", err)
	}
}
