package faults

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// Redis (shared cache tier, shared quotas, the assertion replay set) is
// optional: checks go on without it. Under a load of checks of cached
// and uncached subjects, Redis is stopped for 8 s, started again, then
// frozen (SIGSTOP: connections open, nothing answered) for 8 s: no check
// fails, and none is held in the server past the Redis bounds (a few
// hundred milliseconds) plus a second (and the machine's own slowness).
//
// What counts as held is taken from the server's own spans of each
// request: its time in the server, less its waits on the database (the
// evidence commit, entries read behind the cache, violation records).
// Those waits are not Redis's doing, and on a CI machine whose other
// packages load the same PostgreSQL one commit can take a second; holding
// the whole answer to the bound failed on such a stall. A hang anywhere
// still fails.
func TestRedisAwayFailsNoCheck(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	pgURL := testenv.FreshDatabase(t, "credgate_faults_redis")
	sp := newSpanLog(t)
	srv := startServer(t, append(sp.serverEnv(), "CREDGATE_POSTGRES_URL="+pgURL, "CREDGATE_REDIS_URL="+rs.URL(),
		"CREDGATE_REDIS_PREFIX=faults", "CREDGATE_RATE_LIMIT_PREFIX=faults:ratelimit")...)
	a := newAPI(srv.base)
	a.traced = true
	admin := a.adminToken(t)
	tok := a.partner(t, admin, nil, action)
	// Every subject checked is listed, so that each lookup goes past the
	// listed filter to the cache tier: the cached ones are answered from
	// memory, each new one asks Redis, then the store.
	uncached := func(i int) string { return subject(t, 10, i) }
	listed := make([]string, 0, 2000)
	for i := range 2000 {
		listed = append(listed, uncached(i))
	}
	a.list(t, admin, append(listed, func() (s []string) {
		for i := range 20 {
			s = append(s, subject(t, 9, i))
		}
		return s
	}()...))
	cached := warm(t, a, tok, 9, 20)

	l := startLoad(a, tok, 50, cached, uncached, 5)
	var tokens []reply
	stopTokens := make(chan struct{})
	tokensDone := make(chan struct{})
	go func() {
		defer close(tokensDone)
		for {
			select {
			case <-stopTokens:
				return
			case <-time.After(200 * time.Millisecond):
			}
			tokens = append(tokens, a.tokenReply(adminID, adminSecret))
		}
	}()
	time.Sleep(time.Second)
	stoppedAt := time.Now()
	rs.Stop()
	time.Sleep(8 * time.Second)
	rs.Start()
	time.Sleep(2 * time.Second)
	frozeAt := time.Now()
	rs.Signal(syscall.SIGSTOP)
	time.Sleep(8 * time.Second)
	rs.Signal(syscall.SIGCONT)
	time.Sleep(2 * time.Second)
	close(stopTokens)
	<-tokensDone
	answers, skipped := l.finish()

	tokenAnswers := asAnswers(tokens)
	var ids []string
	for _, as := range [][]answer{answers, tokenAnswers} {
		for _, x := range as {
			if x.err == nil {
				ids = append(ids, x.trace)
			}
		}
	}
	sp.await(t, ids, 15*time.Second)

	// The Redis bounds are a few hundred milliseconds; a second on top, and
	// the machine's own slowness before Redis went (store_test.go). A hang
	// is an answer past the commit's bound, whatever held it.
	slow := baseline(answers, nil, stoppedAt)
	bound, hang := slack+slow, commitTimeout+slow
	bad := 0
	for _, as := range [][]answer{answers, tokenAnswers} {
		for _, x := range as {
			tr, _ := sp.lookup(x.trace)
			switch {
			case x.err != nil || x.status != http.StatusOK || x.took > hang:
				bad++
				if bad <= 10 {
					t.Errorf("%s: %s", x.subject, x.reply)
				}
			case tr.held() > bound:
				bad++
				if bad <= 10 {
					t.Errorf("%s: held %s in the server (bound %s): %s; answered %d after %s", x.subject,
						tr.held().Round(time.Millisecond), bound.Round(time.Millisecond), tr, x.status, x.took.Round(time.Millisecond))
				}
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d answers failed or out of bounds in all", bad)
	}
	if skipped > 0 {
		t.Errorf("%d checks not sent: over %d open requests", skipped, maxInFlight)
	}
	stopped, frozen := within(answers, stoppedAt, stoppedAt.Add(8*time.Second)), within(answers, frozeAt, frozeAt.Add(8*time.Second))
	t.Logf("FIGURES Redis stopped 8 s: checks %s; in the server %s", summarise(stopped), sp.figures(stopped))
	t.Logf("FIGURES Redis frozen 8 s: checks %s; in the server %s", summarise(frozen), sp.figures(frozen))
	t.Logf("FIGURES Redis away, all: checks %s; token requests %s; in the server: checks %s, token requests %s",
		summarise(answers), summarise(tokenAnswers), sp.figures(answers), sp.figures(tokenAnswers))
}

func asAnswers(rs []reply) []answer {
	out := make([]answer, len(rs))
	for i, r := range rs {
		out[i] = answer{subject: "token", reply: r}
	}
	return out
}
