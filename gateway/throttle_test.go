package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/credgate/credgate/gateway"
)

// guessBurst sends n wrong secrets for clientID at once from one address
// and counts the answers by status.
func guessBurst(t *testing.T, h *harness, clientID string, n int) map[int]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			body := secretForm(clientID, fmt.Sprintf("guess-%d-0123456789abcdef", i)).Encode()
			req := httptest.NewRequest(http.MethodPost, "/v1/oauth/token", strings.NewReader(body))
			req.RemoteAddr = "203.0.113.9:4000"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			<-start
			h.handler.ServeHTTP(rec, req)
			mu.Lock()
			counts[rec.Code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// A burst of simultaneous guesses from one address gets at most the
// address's allowance of them verified: the unit is taken before the
// secret is checked. Successful authentications take nothing: a client
// that succeeds more often than the allowance is never refused.
func TestConcurrentGuessesBoundedByAllowance(t *testing.T) {
	const burst = 60
	run := func(t *testing.T, l *gateway.RateLimiter) {
		h := newHarness(t, withGateway(gateway.WithRateLimiter(l)))
		created := h.createPartner(map[string]any{"name": "被攻击的伙伴", "actions": []string{"bank_credit"}})
		id, secret := created["client_id"].(string), created["client_secret"].(string)
		counts := guessBurst(t, h, id, burst)
		if counts[http.StatusUnauthorized] > 10 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != burst {
			t.Fatalf("%d simultaneous guesses from one address: %v, want at most 10 × 401 and the rest 429", burst, counts)
		}
		// The right secret from that address is refused too, for now.
		problemCode(t, h.tokenForm("203.0.113.9:4000", secretForm(id, secret)), http.StatusTooManyRequests, "rate_limited")
		// A legitimate client succeeding many times is not charged.
		for i := range 15 {
			if res := h.tokenForm("198.51.100.20:5000", secretForm(id, secret)); res.Status != http.StatusOK {
				t.Fatalf("success %d: %d %s", i, res.Status, res.Body)
			}
		}
	}
	t.Run("memory", func(t *testing.T) {
		l, err := gateway.NewRateLimiter(gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("10-M", "60-M"))
		if err != nil {
			t.Fatal(err)
		}
		run(t, l)
	})
	t.Run("redis", func(t *testing.T) {
		l, _, _ := sharedLimiter(t, gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("10-M", "60-M"))
		run(t, l)
	})
}

// A "client id" that names no partner (often a secret pasted into the
// wrong field) does not become a Redis key: failures are counted under a
// hash of it, which still throttles guesses at one id from many addresses.
func TestFailedClientIDIsNotARedisKey(t *testing.T) {
	l, client, prefix := sharedLimiter(t, gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("10-M", "3-M"))
	h := newHarness(t, withGateway(gateway.WithRateLimiter(l)))
	pasted := "LEAKEDSECRET_" + randHex()
	for i := range 3 {
		problemCode(t, h.tokenForm(fmt.Sprintf("192.0.2.%d:1", 10+i), secretForm(pasted, "x-0123456789abcdef")), http.StatusUnauthorized, "invalid_client")
	}
	problemCode(t, h.tokenForm("192.0.2.99:1", secretForm(pasted, "x-0123456789abcdef")), http.StatusTooManyRequests, "rate_limited")
	keys, err := client.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	counted := false
	for _, k := range keys {
		if strings.Contains(k, pasted) {
			t.Errorf("Redis key %q holds the client id as typed", k)
		}
		counted = counted || strings.Contains(k, ":authfail:client:")
	}
	if !counted {
		t.Errorf("no per-client failure counter among %v", keys)
	}
}
