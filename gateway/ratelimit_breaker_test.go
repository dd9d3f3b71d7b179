package gateway_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

// ownRedis runs a redis-server of the test's own on addr, with nothing
// saved; stop ends that process (and only it). The test skips when
// redis-server is not installed, except under CI=true.
func ownRedis(t *testing.T, addr string) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Need(t, "redis-server is not installed: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("own redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop
}

// The limiter's circuit breaker opens when its Redis goes away: checks keep
// flowing, counted in this replica's memory, without waiting on Redis; it
// closes again once Redis is back.
func TestRateLimitBreakerOpensWhenRedisGoesDown(t *testing.T) {
	addr := testenv.FreeAddr(t)
	stop := ownRedis(t, addr)
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	var logs testenv.SyncBuffer
	prefix := "credgate-test:" + randHex()
	l, err := gateway.NewRateLimiter("50-M", gateway.WithRedisStore(client, prefix),
		gateway.WithRedisRetry(300*time.Millisecond), gateway.WithRateLimitLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withGateway(gateway.WithRateLimiter(l)))
	clean := testenv.USCC(t, "91110000MA0000012")
	_, tok := h.partner("某银行", "bank_credit")
	check := func() response {
		t.Helper()
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
		if res.Status != http.StatusOK {
			t.Fatalf("check: %d %s", res.Status, res.Body)
		}
		return res
	}
	waitShared := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for l.Shared() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Shared() stayed %v; log: %s", !want, logs.String())
			}
			h.doJSON(http.MethodGet, "/v1/catalog", tok, nil)
			time.Sleep(20 * time.Millisecond)
		}
	}
	inRedis := func() int {
		t.Helper()
		keys, err := client.Keys(context.Background(), prefix+"*quota*").Result()
		if err != nil {
			t.Fatalf("read own Redis: %v", err)
		}
		return len(keys)
	}
	waitShared(true)
	check()
	if inRedis() != 1 {
		t.Fatal("the quota is not counted in Redis")
	}

	stop()
	// The first check after Redis went away fails over within the Redis
	// timeout and opens the breaker; later ones do not try Redis at all.
	check()
	if l.Shared() {
		t.Fatal("breaker did not open on a Redis that is down")
	}
	if !strings.Contains(logs.String(), "falls back to this replica's memory") {
		t.Fatalf("no fallback logged: %s", logs.String())
	}
	start := time.Now()
	var last response
	for range 5 {
		last = check()
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("5 checks took %s with the breaker open: Redis is still being tried", d)
	}
	// Counted in memory, from a fresh window: the quota still holds.
	if got, _ := strconv.Atoi(last.Header.Get("RateLimit-Remaining")); got >= 50 || got < 0 {
		t.Fatalf("remaining %d while counting in memory", got)
	}
	m := h.do(http.MethodGet, "/metrics", "", "", nil)
	if !strings.Contains(string(m.Body), "credgate_rate_limit_redis_up 0") {
		t.Fatalf("metrics do not show Redis down")
	}

	// Redis returns (empty): after the open interval the breaker lets a
	// request through, and closes.
	ownRedis(t, addr)
	waitShared(true)
	if !strings.Contains(logs.String(), "shared through Redis again") {
		t.Fatalf("no recovery logged: %s", logs.String())
	}
	// The new Redis is empty: a check is counted there again.
	check()
	if inRedis() != 1 {
		t.Fatal("the quota is not counted in Redis after it came back")
	}
}
