package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

// sharedLimiter is a limiter counting in the machine's Redis under a
// prefix of its own, connected. Its round trips may take a second: on a
// loaded machine the 50 ms default sends some to the replica's memory
// (the breaker's fallback), which is not what these tests count.
func sharedLimiter(t *testing.T, rate string, opts ...gateway.RateLimitOption) (*gateway.RateLimiter, *redis.Client, string) {
	t.Helper()
	client := testRedis(t)
	prefix := "credgate-test:" + randHex()
	dropPrefix(t, client, prefix)
	l, err := gateway.NewRateLimiter(rate, append(opts, gateway.WithRedisStore(client, prefix), gateway.WithRedisTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !l.Shared() {
		if time.Now().After(deadline) {
			t.Fatal("the limiter did not connect to Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l, client, prefix
}

// A partner's quota shortened within a window (1000 a day, then 3 a
// minute) is counted afresh at the new rate: the old window's count and
// expiry do not lock the partner out for the rest of the day. In memory
// and through Redis.
func TestQuotaRateChangeStartsAfresh(t *testing.T) {
	run := func(t *testing.T, l *gateway.RateLimiter) {
		ctx := context.Background()
		for i := range 6 {
			if lc, err := l.ChargeQuota(ctx, "bank", 1, "1000-D"); err != nil || lc.Reached {
				t.Fatalf("request %d at 1000-D: %+v %v", i, lc, err)
			}
		}
		for i := range 4 {
			lc, err := l.ChargeQuota(ctx, "bank", 1, "3-M")
			if err != nil {
				t.Fatal(err)
			}
			if reset := lc.Reset - time.Now().Unix(); reset > 60 || reset < 0 {
				t.Fatalf("request %d at 3-M: resets in %d s, want within the minute", i, reset)
			}
			if lc.Reached != (i == 3) || lc.Limit != 3 {
				t.Fatalf("request %d at 3-M: %+v, want the 4th refused", i, lc)
			}
		}
		// Back to the daily quota: the day's count resumes where it was.
		if lc, err := l.ChargeQuota(ctx, "bank", 1, "1000-D"); err != nil || lc.Reached || lc.Remaining > 1000-7 {
			t.Fatalf("back at 1000-D: %+v %v", lc, err)
		}
	}
	t.Run("memory", func(t *testing.T) {
		l, err := gateway.NewRateLimiter(gateway.DefaultRateLimit)
		if err != nil {
			t.Fatal(err)
		}
		run(t, l)
	})
	t.Run("redis", func(t *testing.T) {
		l, client, prefix := sharedLimiter(t, gateway.DefaultRateLimit)
		run(t, l)
		ttl, err := client.TTL(context.Background(), prefix+":"+l.QuotaCounterKey("bank", "3-M")).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Fatalf("TTL of the 3-M counter: %v %v, want within the minute", ttl, err)
		}
	})
}

// The same over the API: an administrator shortens a partner's quota and
// the partner's next requests are counted in the new, short window.
func TestQuotaPatchedShorterAppliesAtOnce(t *testing.T) {
	h := newHarness(t, withLimiter(t, gateway.DefaultRateLimit))
	clean := testenv.USCC(t, "91110000MA0000005")
	p := h.createPartner(map[string]any{"name": "日额度", "actions": []string{"bank_credit"}, "rate_limit": "1000-D"})
	id := p["client_id"].(string)
	tok := h.token(id, p["client_secret"].(string))
	for i := range 6 {
		if res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit")); res.Status != http.StatusOK {
			t.Fatalf("check %d: %d %s", i, res.Status, res.Body)
		}
	}
	if res := h.doJSON(http.MethodPatch, "/v1/admin/partners/"+id, h.adminTok, map[string]any{"rate_limit": "3-M"}); res.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	for i := range 3 {
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
		if res.Status != http.StatusOK || res.Header.Get("RateLimit-Limit") != "3" || res.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("check %d at 3-M: %d %v %s", i, res.Status, res.Header, res.Body)
		}
	}
	res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
	problemCode(t, res, http.StatusTooManyRequests, "rate_limited")
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q, want within the minute", res.Header.Get("Retry-After"))
	}
}
