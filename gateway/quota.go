package gateway

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/ulule/limiter/v3"
)

// Leases of quota. Charging every request to the shared counter costs a
// Redis round trip per request: at saturation that was a fifth of the
// server's CPU, and as much again in redis-server. Instead each replica
// takes quota from the shared counter in blocks (leases) with one
// ulule/limiter Increment each, and charges requests against the block in
// memory. A lease doubles in size after each one taken in a window (1, 2,
// 4, … up to maxLease), so a partner sending a few requests takes a few
// units at a time and a busy one makes a round trip every maxLease
// requests.
//
// Every unit a request uses was counted in the shared counter before it
// was used, so replicas together never let a partner past its quota
// (no overshoot). The price is the other way: units leased by a replica
// and not used there by the end of the window are lost to the others, at
// most maxLease per replica and window, so with R replicas a partner
// whose traffic moves between them may be refused up to R × maxLease
// requests before the shared counter's limit. maxLease is a sixty-fourth
// of the quota (at most 1024), so that is R/64 of the quota at worst.
// While Redis does not answer, leases come from this replica's memory
// (the failover store), as counting did before: limits loosen to the
// quota per replica.
const (
	maxLeaseUnits  = 1024
	leaseFraction  = 64
	maxQuotaLeases = 100_000 // partners whose leases are kept
)

type quotaLeases struct {
	store  *failoverStore
	leases *otter.Cache[string, *lease]
}

// lease is one partner's block of quota for the current window.
type lease struct {
	mu sync.Mutex
	// key is the partner's counter in the store under its current rate
	// (rateQuotaKey), made once per rate rather than on every request.
	key string
	// limit and period are the rate key counts under: when the partner's
	// rate changes, the lease starts over on the new rate's counter.
	limit  int64
	period time.Duration
	// window is when the block's window ends (Unix seconds); 0: none.
	window int64
	// tokens are the units leased and not yet used here.
	tokens int64
	// count is the shared counter after the last lease (all replicas'
	// leases), for RateLimit-Remaining.
	count int64
	// size is the next lease's size.
	size int64
	// shared is whether the block came from Redis, so that a block
	// counted in memory during an outage is not used once Redis is back
	// (and the other way round).
	shared bool
	// spent: the shared counter refused a lease of this many units this
	// window; a request needing as many is refused here without asking
	// again until the window ends (a smaller one still asks).
	spent int64
}

func newQuotaLeases(store *failoverStore) *quotaLeases {
	return &quotaLeases{store: store, leases: otter.Must(&otter.Options[string, *lease]{
		MaximumSize: maxQuotaLeases, ExpiryCalculator: otter.ExpiryAccessing[string, *lease](time.Hour),
	})}
}

// charge takes n units of clientID's quota: from the lease when it holds
// them, else from a new lease (one round trip). The context it returns is
// what the RateLimit headers say; Reached means refused (nothing taken).
func (q *quotaLeases) charge(ctx context.Context, clientID string, n int64, rate limiter.Rate) (limiter.Context, error) {
	le, ok := q.leases.GetIfPresent(clientID)
	if !ok {
		le, _ = q.leases.Compute(clientID, func(old *lease, found bool) (*lease, otter.ComputeOp) {
			if found {
				return old, otter.CancelOp
			}
			return &lease{}, otter.WriteOp
		})
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.limit != rate.Limit || le.period != rate.Period {
		// A new rate (the partner's quota was changed, or this is the
		// lease's first use): the old counter's count and window are not
		// this rate's, and what was leased from it stays there.
		le.key, le.limit, le.period, le.window = rateQuotaKey(clientID, rate), rate.Limit, rate.Period, 0
	}
	key := le.key
	now := time.Now().Unix()
	if le.window <= now || le.shared != q.store.shared() {
		// Field by field: the lease's mutex is held.
		le.window, le.tokens, le.count, le.size, le.spent = 0, 0, 0, 1, 0
		le.shared = q.store.shared()
	}
	if le.tokens >= n {
		le.tokens -= n
		return le.context(rate, false), nil
	}
	if le.spent > 0 && n-le.tokens >= le.spent {
		return le.context(rate, true), nil
	}
	// One lease covering the request and, beyond it, the lease size; near
	// the limit a smaller one, exactly the request, is tried before
	// refusing. A refused lease is given back whole.
	wants := []int64{max(n-le.tokens, min(le.size, q.maxLease(rate)))}
	if wants[0] > n-le.tokens {
		wants = append(wants, n-le.tokens)
	}
	for _, want := range wants {
		lc, err := q.store.Increment(ctx, key, want, rate)
		if err != nil {
			return limiter.Context{}, err
		}
		if lc.Reset != le.window {
			// A new window: what was left belongs to the old one, and the
			// request needs the units it counted on from there too.
			le.window, le.tokens = lc.Reset, 0
			if extra := n - want; extra > 0 {
				if lc, err = q.store.Increment(ctx, key, extra, rate); err != nil {
					return limiter.Context{}, err
				}
				want = n
			}
		}
		le.shared = q.store.shared()
		if !lc.Reached {
			le.count = lc.Limit - lc.Remaining
			le.tokens += want - n
			le.size = min(2*le.size, q.maxLease(rate))
			return le.context(rate, false), nil
		}
		if back, err := q.store.Increment(context.WithoutCancel(ctx), key, -want, rate); err == nil {
			le.count = back.Limit - back.Remaining
		}
		// Near the limit: lease small again, so that the last units are
		// not asked for in blocks the counter refuses.
		le.size = 1
	}
	le.spent = n - le.tokens
	return le.context(rate, true), nil
}

// quotaKey is the prefix of a partner's quota counters in the store.
func quotaKey(clientID string) string { return "quota:" + clientID }

// rateQuotaKey is the store's counter of a partner's quota at rate
// ("quota:<client id>:<limit>-<seconds>s"). The rate is part of the key so
// that a changed quota starts on a counter of its own: on one key for
// every rate, a quota shortened from 1000-D to 3-M kept the day's count
// and expiry, and the partner was refused for the rest of the day.
func rateQuotaKey(clientID string, rate limiter.Rate) string {
	return quotaKey(clientID) + ":" + strconv.FormatInt(rate.Limit, 10) + "-" + strconv.FormatInt(int64(rate.Period/time.Second), 10) + "s"
}

func (q *quotaLeases) maxLease(rate limiter.Rate) int64 {
	return max(1, min(maxLeaseUnits, rate.Limit/leaseFraction))
}

// context is the limiter.Context of the lease as the headers report it:
// what the shared counter had when last asked, less what is unused here.
func (le *lease) context(rate limiter.Rate, reached bool) limiter.Context {
	used := min(max(0, le.count-le.tokens), rate.Limit)
	return limiter.Context{Limit: rate.Limit, Remaining: rate.Limit - used, Reset: le.window, Reached: reached}
}

// refund gives n units back to clientID's lease they were taken from, if
// its window (ending at window) is still the current one and its rate
// still rate: a refusal decided before any work costs nothing, and no
// round trip either.
func (q *quotaLeases) refund(clientID string, rate limiter.Rate, n, window int64) {
	le, ok := q.leases.GetIfPresent(clientID)
	if !ok {
		return
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.window == window && window > time.Now().Unix() && le.limit == rate.Limit && le.period == rate.Period {
		le.tokens += n
	}
}
