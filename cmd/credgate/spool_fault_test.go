package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// spoolAnswer is a check answered during the spool test.
type spoolAnswer struct {
	id, hash string
	promise  json.RawMessage // set when the evidence was spooled
}

// spoolLoad runs checks against a server until stopped: mostly subjects
// the server has cached, some never seen. It counts what was answered and
// what failed, by kind of subject.
type spoolLoad struct {
	mu       sync.Mutex
	answered []spoolAnswer
	// failedCached: a cached subject's check that the server (while up)
	// did not answer; refusedNew: an uncached subject's 503s, by code.
	failedCached []string
	refusedNew   map[string]int
	spooled      int
	base         string
	stop, done   chan struct{}
}

func startSpoolLoad(t *testing.T, base, token string, cached []string) *spoolLoad {
	l := &spoolLoad{base: base, refusedNew: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.mu.Lock()
				base := l.base
				l.mu.Unlock()
				subject, isNew := cached[(w+i)%len(cached)], false
				if i%10 == 9 {
					s, err := benchSubject(100000 + w*100000 + i)
					if err != nil {
						t.Error(err)
						return
					}
					subject, isNew = s, true
				}
				code, m, err := postJSON(client, base+"/v1/checks", token, map[string]any{
					"subject": map[string]string{"id": subject}, "action": "government_procurement"})
				if err != nil {
					// The server was killed, or is restarting: not an answer.
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				switch {
				case code == http.StatusOK:
					rc, _ := m["receipt"].(map[string]any)
					a := spoolAnswer{id: m["check_id"].(string)}
					a.hash, _ = rc["record_hash"].(string)
					if p, ok := rc["promise"]; ok {
						a.promise, _ = json.Marshal(p)
						l.spooled++
					}
					l.answered = append(l.answered, a)
				case isNew && code == http.StatusServiceUnavailable:
					c, _ := m["code"].(string)
					l.refusedNew[c]++
				default:
					l.failedCached = append(l.failedCached, fmt.Sprintf("%s: %d %v", subject, code, m["code"]))
				}
				l.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func (l *spoolLoad) retarget(base string) {
	l.mu.Lock()
	l.base = base
	l.mu.Unlock()
}

func (l *spoolLoad) counts() (answered, spooled int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.answered), l.spooled
}

func (l *spoolLoad) end() {
	close(l.stop)
	<-l.done
}

// spoolState reads the spool section of /readyz.
func spoolState(base string) (status int, pending int, state string) {
	res, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, -1, ""
	}
	defer res.Body.Close()
	var body struct {
		Spool struct {
			Pending int    `json:"pending"`
			State   string `json:"state"`
		} `json:"spool"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Spool.Pending, body.Spool.State
}

// TestSpoolOutage stops the server's own PostgreSQL twice under a load of
// checks (cached subjects, and some never seen) and kills credgate with
// SIGKILL during the first outage and again while it integrates the
// second's spool. Checks of cached subjects never fail; every answered
// check, spooled or not, is in the log afterwards with the hash it was
// answered with, and its receipt verifies; every promise verifies.
func TestSpoolOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL and kills servers")
	}
	longTest(t)
	bin := buildBinary(t)
	pg := testenv.StartPostgres(t)
	dataDir := t.TempDir()
	env := []string{"CREDGATE_POSTGRES_URL=" + pg.URL(), "CREDGATE_STORE_TIMEOUT=1s", "CREDGATE_RATE_LIMIT=1000000-M",
		"CREDGATE_EVIDENCE_ORIGIN=" + testOrigin, "CREDGATE_LOG_LEVEL=warn"}
	srv := startServer(t, bin, dataDir, env...)
	token := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	listed := testenv.USCC(t, "91110108MA01TPL00")
	if code, _, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", token, map[string]any{
		"subject_id": listed, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "重大事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z",
	}); err != nil || code != http.StatusCreated {
		t.Fatalf("create entry: %d %v", code, err)
	}
	cached := []string{listed}
	for i := range 15 {
		s, err := benchSubject(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		cached = append(cached, s)
	}
	// Warm the cache: every one of these is read from the store once.
	for _, s := range cached {
		if code, m, err := postJSON(http.DefaultClient, srv.base+"/v1/checks", token, map[string]any{
			"subject": map[string]string{"id": s}, "action": "government_procurement"}); err != nil || code != http.StatusOK {
			t.Fatalf("warm %s: %d %v %v", s, code, m, err)
		}
	}
	vkeys := fetchVerifierKeys(t, srv.base)

	load := startSpoolLoad(t, srv.base, token, cached)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.end()
		}
	}()
	time.Sleep(time.Second)

	// Outage 1, ended for this server by SIGKILL.
	outage1 := time.Now()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	a0, s0 := load.counts()
	time.Sleep(5 * time.Second)
	a1, s1 := load.counts()
	if code, pending, state := spoolState(srv.base); code != http.StatusOK || pending == 0 || state != "integrating" {
		t.Errorf("readyz during the outage: %d, %d pending, %q", code, pending, state)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	t.Logf("outage 1 (%s until SIGKILL): %d checks answered, %d spooled", time.Since(outage1).Round(100*time.Millisecond), a1-a0, s1-s0)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}

	// The restarted server integrates the killed one's spool; outage 2
	// comes while it serves.
	srv = startServer(t, bin, dataDir, env...)
	load.retarget(srv.base)
	time.Sleep(time.Second)
	outage2 := time.Now()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	a2, s2 := load.counts()
	time.Sleep(5 * time.Second)
	a3, s3 := load.counts()
	t.Logf("outage 2 (%s): %d checks answered, %d spooled", time.Since(outage2).Round(100*time.Millisecond), a3-a2, s3-s2)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGKILL while the spool is being integrated: as soon as it shrinks.
	_, before, _ := spoolState(srv.base)
	killDeadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(killDeadline) {
		if _, p, _ := spoolState(srv.base); p < before || p == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, atKill, _ := spoolState(srv.base)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	t.Logf("SIGKILL during integration: %d of %d spooled records still pending", atKill, before)

	// The last restart integrates what is left.
	back := time.Now()
	srv = startServer(t, bin, dataDir, env...)
	load.retarget(srv.base)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, p, state := spoolState(srv.base); code == http.StatusOK && p == 0 && state == "empty" {
			break
		}
		if time.Now().After(deadline) {
			_, p, state := spoolState(srv.base)
			t.Fatalf("spool not integrated 30 s after restart: %d pending, %q\n%s", p, state, srv.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("spool integrated %s after the last restart", time.Since(back).Round(100*time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	load.end()

	load.mu.Lock()
	defer load.mu.Unlock()
	if len(load.failedCached) > 0 {
		t.Errorf("%d checks of cached subjects failed, e.g. %v", len(load.failedCached), load.failedCached[:min(5, len(load.failedCached))])
	}
	for code := range load.refusedNew {
		if code != "data_unavailable" && code != "store_unavailable" {
			t.Errorf("uncached subjects refused with %q", code)
		}
	}
	if load.spooled == 0 {
		t.Fatal("nothing was spooled: was the database away?")
	}

	// Every answered check is in the log with its hash; its receipt and
	// (when spooled) its promise verify.
	vs, err := evidence.Verifiers(vkeys...)
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	client := &http.Client{Timeout: 10 * time.Second}
	verify := func(a spoolAnswer) error {
		r, code, err := fetchReceipt(client, srv.base, admin, a.id)
		// 503 says retry (a signing round or a read past its bound under
		// the race detector on a loaded machine): a receipt that is there
		// comes on a retry; one that is not stays 404.
		for try := 0; code == http.StatusServiceUnavailable && try < 10; try++ {
			t.Logf("receipt of %s: 503 (%v), retrying", a.id, err)
			time.Sleep(200 * time.Millisecond)
			r, code, err = fetchReceipt(client, srv.base, admin, a.id)
		}
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("answered check %s has no receipt: %d %v", a.id, code, err)
		}
		if r.RecordHash != a.hash {
			return fmt.Errorf("check %s: record hash %s in the log, %s when answered", a.id, r.RecordHash, a.hash)
		}
		if _, err := evidence.VerifyReceipt(r, vs); err != nil {
			return fmt.Errorf("check %s: receipt: %w", a.id, err)
		}
		if a.promise != nil {
			p, err := evidence.ParsePromise(a.promise)
			if err == nil {
				_, err = evidence.VerifyPromise(p, vs)
			}
			if err != nil {
				return fmt.Errorf("check %s: promise: %w", a.id, err)
			}
		}
		return nil
	}
	// Every one of the ~20 000, four at a time: each is a round trip to
	// the server's proof reads and a signature and proof to verify, and
	// one at a time they took three quarters of the test's minute and a
	// half under the race detector.
	var (
		next     sync.Mutex
		i        int
		firstErr error
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				next.Lock()
				if i == len(load.answered) || firstErr != nil {
					next.Unlock()
					return
				}
				a := load.answered[i]
				i++
				next.Unlock()
				if err := verify(a); err != nil {
					next.Lock()
					if firstErr == nil {
						firstErr = err
					}
					next.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	refused := 0
	for _, n := range load.refusedNew {
		refused += n
	}
	t.Logf("%d checks answered (%d spooled), all in the log with verifying receipts; %d checks of uncached subjects refused during the outages (%v); 0 of cached subjects failed",
		len(load.answered), load.spooled, refused, load.refusedNew)
}

// fetchVerifierKeys reads the log's verifier keys.
func fetchVerifierKeys(t *testing.T, base string) []string {
	t.Helper()
	keys, err := audit.ParseKeys(getBody(t, base+"/v1/evidence/keys"))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
