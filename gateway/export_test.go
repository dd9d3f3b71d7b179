package gateway

import (
	"context"

	"github.com/ulule/limiter/v3"
)

// ChargeQuota charges n units of clientID's quota as a request would (the
// quota tests drive the limiter without HTTP).
func (l *RateLimiter) ChargeQuota(ctx context.Context, clientID string, n int64, rate string) (limiter.Context, error) {
	return l.quota.charge(ctx, clientID, n, l.rateFor(rate).rate)
}

// IncrementQuota charges n units straight to the shared counter, one
// round trip each: how every request was charged before leases.
func (l *RateLimiter) IncrementQuota(ctx context.Context, clientID string, n int64, rate string) (limiter.Context, error) {
	return l.store.Increment(ctx, quotaKey(clientID), n, l.rateFor(rate).rate)
}
