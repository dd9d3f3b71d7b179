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
// fails, and none waits past the Redis bounds (a few hundred
// milliseconds) plus a second (and the machine's own slowness).
func TestRedisAwayFailsNoCheck(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	pgURL := testenv.FreshDatabase(t, "credgate_faults_redis")
	srv := startServer(t, "CREDGATE_POSTGRES_URL="+pgURL, "CREDGATE_REDIS_URL="+rs.URL(),
		"CREDGATE_REDIS_PREFIX=faults", "CREDGATE_RATE_LIMIT_PREFIX=faults:ratelimit")
	a := newAPI(srv.base)
	tok := a.partner(t, a.adminToken(t), nil, action)
	cached := warm(t, a, tok, 9, 20)

	l := startLoad(a, tok, 50, cached, func(i int) string { return subject(t, 10, i) }, 5)
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

	// The Redis bounds are a few hundred milliseconds; a second on top, and
	// the machine's own slowness before Redis went (store_test.go).
	bound := time.Second + baseline(answers, nil, stoppedAt)
	for _, as := range [][]answer{answers, asAnswers(tokens)} {
		for _, x := range as {
			if x.err != nil || x.status != http.StatusOK || x.took > bound {
				t.Errorf("%s: %s", x.subject, x.reply)
			}
		}
	}
	if skipped > 0 {
		t.Errorf("%d checks not sent: over %d open requests", skipped, maxInFlight)
	}
	t.Logf("FIGURES Redis stopped 8 s: checks %s", summarise(within(answers, stoppedAt, stoppedAt.Add(8*time.Second))))
	t.Logf("FIGURES Redis frozen 8 s: checks %s", summarise(within(answers, frozeAt, frozeAt.Add(8*time.Second))))
	t.Logf("FIGURES Redis away, all: checks %s; token requests %s", summarise(answers), summarise(asAnswers(tokens)))
}

func asAnswers(rs []reply) []answer {
	out := make([]answer, len(rs))
	for i, r := range rs {
		out[i] = answer{subject: "token", reply: r}
	}
	return out
}
