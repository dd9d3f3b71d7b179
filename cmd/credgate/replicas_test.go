package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// sample is one answered check of a watched subject.
type sample struct {
	replica  int
	sent     time.Time
	received time.Time
	outcome  string
	asOf     time.Time
}

// TestReplicasSeeNewEntriesWithinBound runs three credgate processes on one
// fresh PostgreSQL database and the machine's Redis (under a key prefix of
// this run), keeps them busy with checks, and adds a black-list entry
// through one of them: every replica must answer it within a second (the
// invalidation message), while answers that were still "clear" must say
// so honestly (data_as_of before the change). Then an entry written
// straight into the database by `credgate import`, which tells no replica,
// must reach every replica within a second too: the database notifies them
// (migration 0020), long before their next reading of the change log
// (reconcile, 12 s here, so that a replica the notice missed fails).
func TestReplicasSeeNewEntriesWithinBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three servers")
	}
	redisURL := testenv.Redis(t)
	pg := testenv.FreshDatabase(t, "credgate_crash")
	bin := buildBinary(t)
	seed := make([]byte, 32)
	rand.Read(seed)
	// Replicas share the evidence key, or all but the first refuse to start.
	skey, err := evidence.GenerateSignerKey("credgate.test")
	if err != nil {
		t.Fatal(err)
	}
	const reconcile = 12 * time.Second
	env := []string{
		"CREDGATE_POSTGRES_URL=" + pg, "CREDGATE_REDIS_URL=" + redisURL, "CREDGATE_EVIDENCE_KEY=" + skey,
		fmt.Sprintf("CREDGATE_REDIS_PREFIX=credgate-test-%d", time.Now().UnixNano()),
		fmt.Sprintf("CREDGATE_RATE_LIMIT_PREFIX=credgate-test-rl-%d", time.Now().UnixNano()),
		"CREDGATE_RATE_LIMIT=1000000-M",
		"CREDGATE_TOKEN_KEY=" + base64.StdEncoding.EncodeToString(seed),
		"CREDGATE_CACHE_RECONCILE=" + reconcile.String(),
	}
	var replicas []*proc
	for range 3 {
		replicas = append(replicas, startServer(t, bin, t.TempDir(), env...))
	}
	admin := testenv.Token(t, replicas[0].base, testAdminID, testAdminSecret)
	viaAPI, viaImport := testenv.USCC(t, "91110108MA01REPL1"), testenv.USCC(t, "91110108MA01REPL2")
	subjects := []string{viaAPI, viaImport}
	for i := range 10 {
		subjects = append(subjects, testenv.USCC(t, fmt.Sprintf("91110108MA01FLR%02d", i)))
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	check := func(r int, subject string) (sample, error) {
		s := sample{replica: r, sent: time.Now()}
		code, m, err := postJSON(client, replicas[r].base+"/v1/checks", admin, map[string]any{
			"subject": map[string]string{"id": subject}, "action": "government_procurement"})
		s.received = time.Now()
		if err != nil || code != http.StatusOK {
			return s, fmt.Errorf("check on replica %d: %d %v %v", r, code, err, m)
		}
		s.outcome, _ = m["outcome"].(string)
		s.asOf, _ = time.Parse(time.RFC3339Nano, m["data_as_of"].(string))
		return s, nil
	}
	// Every replica holds both watched subjects, as clean, before the
	// changes: what follows tests invalidation, not a first read.
	for r := range replicas {
		for _, s := range subjects[:2] {
			for range 3 {
				if a, err := check(r, s); err != nil || a.outcome != "clear" {
					t.Fatalf("warming replica %d: %+v %v", r, a, err)
				}
			}
		}
	}

	var (
		mu      sync.Mutex
		samples = map[string][]sample{}
		fails   atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for r := range replicas {
		for w := range 2 {
			wg.Go(func() {
				for i := w; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					subject := subjects[i%len(subjects)]
					if i%3 == 0 {
						subject = subjects[(i/3)%2] // the watched ones, often
					}
					s, err := check(r, subject)
					if err != nil {
						if fails.Add(1) < 5 {
							t.Log(err)
						}
						continue
					}
					if subject == viaAPI || subject == viaImport {
						mu.Lock()
						samples[subject] = append(samples[subject], s)
						mu.Unlock()
					}
				}
			})
		}
	}
	time.Sleep(500 * time.Millisecond)

	// 1. Through the API of replica 0.
	changed := time.Now()
	code, body, err := postJSON(client, replicas[0].base+"/v1/admin/entries", admin, map[string]any{
		"subject_id": viaAPI, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "发生重大生产安全责任事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z"})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create entry: %d %v %v", code, err, body)
	}
	committed := time.Now()
	time.Sleep(1500 * time.Millisecond)

	// 2. Straight into the database, telling no replica.
	file := filepath.Join(t.TempDir(), "entries.csv")
	if err := os.WriteFile(file, []byte("subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"+
		viaImport+",safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	imported := time.Now()
	out, err := exec.Command(bin, "import", "--postgres-url", pg, "--data-dir", t.TempDir(), file).CombinedOutput()
	if err != nil {
		t.Fatalf("credgate import: %v\n%s", err, out)
	}
	importDone := time.Now()
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := fails.Load(); n > 0 {
		t.Fatalf("%d checks failed under load", n)
	}
	verify := func(how, subject string, start, done time.Time, bound time.Duration) {
		t.Helper()
		first := make([]time.Duration, len(replicas))
		for _, s := range samples[subject] {
			switch {
			case s.outcome == "clear":
				// A stale answer must be honest: its data predates the change.
				if s.asOf.After(done) {
					t.Errorf("replica %d answered clear with data_as_of %v, after the change committed at %v", s.replica, s.asOf, done)
				}
				// And none may come once the bound has passed.
				if s.sent.After(done.Add(bound)) {
					t.Errorf("replica %d answered clear %v after the change (bound %v)", s.replica, s.sent.Sub(done), bound)
				}
			case s.outcome == "unverifiable":
				t.Errorf("replica %d: unverifiable with every dependency up", s.replica)
			default:
				if s.received.Before(start) {
					t.Errorf("replica %d restricted %s before the change", s.replica, subject)
				}
				if first[s.replica] == 0 {
					first[s.replica] = s.received.Sub(done)
				}
			}
		}
		for r, d := range first {
			if d == 0 {
				t.Errorf("replica %d never answered the change to %s", r, subject)
			}
			t.Logf("%s: replica %d answered the change %v after it committed", how, r, d.Round(time.Millisecond))
		}
	}
	verify("through the API", viaAPI, changed, committed, time.Second)
	verify("straight into the database", viaImport, imported, importDone, time.Second)
	for r, p := range replicas {
		// Stopped first: Wait ends the copying of its output, which the
		// read below would otherwise race.
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if strings.Contains(p.logs.String(), viaAPI) {
			t.Errorf("replica %d logged a subject identifier", r)
		}
	}
	t.Logf("%d and %d samples of the watched subjects", len(samples[viaAPI]), len(samples[viaImport]))
}

// TestImportBesideServeReachesItAtOnce: on the embedded SQLite, `credgate
// import` run beside `serve` on the same data dir (README step 8) writes
// past the server, which sees it at its next look at the change log's end
// (a tenth of a second), not at its next reading of the log (reconcile,
// 12 s here). The subject was checked clean before, so the import must
// reach both the cached answer and the listed filter.
func TestImportBesideServeReachesItAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	srv := startServer(t, bin, dir, "CREDGATE_CACHE_RECONCILE=12s", "CREDGATE_REDIS_URL=")
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	client := &http.Client{Timeout: 5 * time.Second}
	subject, person := testenv.USCC(t, "91110108MA01BE7D1"), "440304198001010017"
	// The person is restricted through the company's entry, as its legal
	// representative (README step 9).
	action := map[string]string{subject: "government_procurement", person: "air_travel"}
	check := func(id string) string {
		t.Helper()
		code, m, err := postJSON(client, srv.base+"/v1/checks", admin, map[string]any{
			"subject": map[string]string{"id": id}, "action": action[id]})
		if err != nil || code != http.StatusOK {
			t.Fatalf("check: %d %v %v", code, err, m)
		}
		return m["outcome"].(string)
	}
	for _, id := range []string{subject, person} {
		if o := check(id); o != "clear" {
			t.Fatalf("before the import: %s", o)
		}
	}
	file := filepath.Join(t.TempDir(), "entries.csv")
	if err := os.WriteFile(file, []byte("subject_id,list,originating_department,reason,legal_basis,decided_at,published_at,responsible_persons\n"+
		subject+",court_dishonest_debtor,深圳市中级人民法院,拒不履行,《最高人民法院关于公布失信被执行人名单信息的若干规定》第一条,2026-09-01,2026-09-02,legal_representative:"+person+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "import", "--data-dir", dir, file).CombinedOutput(); err != nil {
		t.Fatalf("credgate import: %v\n%s", err, out)
	}
	done := time.Now()
	for _, id := range []string{subject, person} {
		for check(id) == "clear" {
			if time.Since(done) > 3*time.Second {
				t.Fatalf("still clear %v after the import (the next reading of the log is 12 s away)", time.Since(done).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("the import reached the answers %v after it returned", time.Since(done).Round(time.Millisecond))
}
