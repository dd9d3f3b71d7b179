package faults

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// needSpool skips a test of the evidence spool (docs/EVIDENCE.md, "When
// the database is away") on a credgate built without one.
func needSpool(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(credgateBinary(t), "serve", "--help").CombinedOutput()
	if !strings.Contains(string(out), "-spool") {
		t.Skip("this credgate has no evidence spool (serve --help lists no --spool)")
	}
}

// spoolState is /readyz's report of the evidence spool.
func spoolState(a *api) (state string, pending int) {
	r := a.get("/readyz", "")
	sp, _ := r.body["spool"].(map[string]any)
	state, _ = sp["state"].(string)
	p, _ := sp["pending"].(float64)
	return state, int(p)
}

// answered keeps the checks answered 200, with their receipts' state.
func answered(as []answer) (ids []string, spooled int) {
	for _, a := range as {
		if a.status != http.StatusOK {
			continue
		}
		id, _ := a.body["check_id"].(string)
		ids = append(ids, id)
		if rc, _ := a.body["receipt"].(map[string]any); rc["state"] == "spooled" {
			spooled++
		}
	}
	return ids, spooled
}

// allVerify waits until every answered check has a full receipt that
// verifies with the log's keys (spooled ones once integrated): nothing
// answered is lost. It returns how long that took.
func allVerify(t *testing.T, a *api, token string, ids []string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	vkeys := a.verifiers(t)
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
	)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				var err error
				for deadline := start.Add(limit); ; {
					if err = a.verifyReceipt(token, ids[i], vkeys); err == nil || time.Now().After(deadline) {
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d answered checks have no verifying receipt after %s: first: %v", n, len(ids), limit, first)
	}
	return time.Since(start)
}

// The acceptance test of the spool: PostgreSQL stopped for 60 s
// under 200 checks/s. No check of a subject in the cache fails; every
// answered check (spooled ones included) is integrated into the log
// after PostgreSQL is back, and its receipt verifies.
func TestDatabaseStoppedMinuteUnderLoad(t *testing.T) {
	t.Parallel()
	needSpool(t)
	const outage = 60 * time.Second
	pg := testenv.StartPostgres(t)
	srv := startServer(t, "CREDGATE_POSTGRES_URL="+pg.URL(), "CREDGATE_STORE_TIMEOUT="+storeTimeout.String(),
		"CREDGATE_MAX_STALENESS=5m")
	a := newAPI(srv.base)
	tok := a.partner(t, a.adminToken(t), nil, action)
	cached := warm(t, a, tok, 11, 200)

	l := startLoad(a, tok, 200, cached, func(i int) string { return subject(t, 12, i) }, 20)
	time.Sleep(2 * time.Second)
	stoppedAt := time.Now()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage)
	startedAt := time.Now()
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	answers, skipped := l.finish()

	var cachedFailed []answer
	for _, x := range answers {
		if x.cached && (x.err != nil || x.status != http.StatusOK) {
			cachedFailed = append(cachedFailed, x)
		}
	}
	for i, x := range cachedFailed {
		if i == 5 {
			break
		}
		t.Errorf("check of cached %s failed: %s", x.subject, x.reply)
	}
	if skipped > 0 {
		t.Errorf("%d checks not sent: over %d open requests", skipped, maxInFlight)
	}
	ids, spooled := answered(answers)
	if spooled == 0 {
		t.Errorf("no answer was spooled: was PostgreSQL stopped?")
	}
	took := allVerify(t, a, tok, ids, 3*time.Minute)
	state, pending := spoolState(a)
	if pending != 0 {
		t.Errorf("spool after recovery: %s, %d pending", state, pending)
	}
	during := summarise(within(answers, stoppedAt, startedAt))
	t.Logf("FIGURES PostgreSQL stopped %s under 200 checks/s: checks sent during the outage: %s; cached subjects failed: %d of the run's %d",
		outage, during, len(cachedFailed), len(answers))
	t.Logf("FIGURES answered %d, spooled %d; all integrated and verifying %s after PostgreSQL was back", len(ids), spooled, took.Round(time.Second))
}

// SIGKILL of credgate while PostgreSQL is down (answers spooled), and
// again while the spool is being integrated: after each restart every
// check answered before the kill has a verifying receipt.
func TestSIGKILLDuringOutageAndIntegration(t *testing.T) {
	t.Parallel()
	needSpool(t)
	pg := testenv.StartPostgres(t)
	srv := startServer(t, "CREDGATE_POSTGRES_URL="+pg.URL(), "CREDGATE_STORE_TIMEOUT="+storeTimeout.String(),
		"CREDGATE_MAX_STALENESS=5m")
	a := newAPI(srv.base)
	tok := a.partner(t, a.adminToken(t), nil, action)
	cached := warm(t, a, tok, 13, 50)
	var all []string
	for round, phase := range []string{"during the outage", "during integration"} {
		if round > 0 {
			// The restart emptied the in-process cache: fill it again, as
			// traffic would before the next outage.
			cached = warm(t, a, tok, 13, 50)
		}
		if err := pg.Stop("fast"); err != nil {
			t.Fatal(err)
		}
		l := startLoad(a, tok, 100, cached, func(i int) string { return subject(t, 14+round, i) }, 10)
		time.Sleep(8 * time.Second)
		if phase == "during the outage" {
			srv.kill()
		}
		answers, _ := l.finish()
		ids, spooled := answered(answers)
		if spooled == 0 {
			t.Fatalf("%s: no answer was spooled: %s", phase, summarise(answers))
		}
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		if phase == "during integration" {
			// Kill as soon as integration has begun, before it ends.
			eventually(t, "integration begins", 30*time.Second, func() error {
				if _, pending := spoolState(a); pending >= spooled {
					return fmt.Errorf("%d pending", pending)
				}
				return nil
			})
			_, pending := spoolState(a)
			srv.kill()
			t.Logf("%s: killed with %d of %d spooled records pending", phase, pending, spooled)
		}
		srv.start()
		all = append(all, ids...)
		took := allVerify(t, a, tok, all, 2*time.Minute)
		t.Logf("FIGURES SIGKILL %s: %d answered (%d spooled), all verifying %s after the restart", phase, len(ids), spooled, took.Round(time.Second))
	}
}
