package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"github.com/ulule/limiter/v3"
	memorystore "github.com/ulule/limiter/v3/drivers/store/memory"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/internal/breaker"
	"github.com/credgate/credgate/service"
)

// ErrRateLimited: the caller used up its quota (or its failed
// authentication allowance) for the current window.
var ErrRateLimited = errors.New("rate limited")

// Defaults of the rate limiter.
const (
	// DefaultRateLimit is the request quota of a partner without its own.
	DefaultRateLimit = "6000-M"
	// Failed client authentications allowed before the token endpoint
	// refuses, per address and per client id.
	DefaultAuthFailuresPerAddress = "10-M"
	DefaultAuthFailuresPerClient  = "60-M"
)

// RateLimiter enforces per-partner request quotas and throttles failed
// client authentication at the token endpoint, with
// github.com/ulule/limiter/v3. With Redis the counters are shared by every
// replica; without it, or while Redis does not answer, each replica counts
// alone in memory (limits loosen to the quota per replica, and checks keep
// flowing). The same Redis, through the same breaker, shares the replay
// set of client assertions.
type RateLimiter struct {
	def        *quotaRate
	failAddr   limiter.Rate
	failClient limiter.Rate
	store      *failoverStore
	quota      *quotaLeases // partners' quotas, leased from store (quota.go)
	// rates are the parsed per-partner overrides.
	rates  *otter.Cache[string, *quotaRate]
	replay *access.ReplaySet

	rejected *prometheus.CounterVec
}

// maxRates bounds the parsed quota overrides kept; there are as many as
// distinct quotas among partners, a handful in practice.
const maxRates = 10_000

type rateConfig struct {
	failAddr, failClient string
	redis                redis.UniversalClient
	prefix               string
	timeout, retry       time.Duration
	logger               *slog.Logger
}

// RateLimitOption configures a RateLimiter.
type RateLimitOption func(*rateConfig)

// WithRateLimitLogger sets where the limiter reports Redis going away and
// coming back (default slog.Default()).
func WithRateLimitLogger(l *slog.Logger) RateLimitOption { return func(c *rateConfig) { c.logger = l } }

// WithRedisStore shares counters (and the replay set of client
// assertions) through Redis, under keys starting with prefix (so that
// deployments or tests sharing a Redis do not collide). The limiter does
// not own the client: it may be shared (serve shares it with the cache
// tier) and its owner closes it. Each round trip is bounded by the
// limiter's own timeout (WithRedisTimeout).
func WithRedisStore(client redis.UniversalClient, prefix string) RateLimitOption {
	return func(c *rateConfig) { c.redis, c.prefix = client, prefix }
}

// WithAuthFailureLimits sets how many failed client authentications the
// token endpoint accepts per address and per client id ("10-M" style).
func WithAuthFailureLimits(perAddress, perClient string) RateLimitOption {
	return func(c *rateConfig) { c.failAddr, c.failClient = perAddress, perClient }
}

// WithRedisTimeout bounds each Redis round trip of the limiter (default
// 50ms): past it the request is counted in memory instead.
func WithRedisTimeout(d time.Duration) RateLimitOption { return func(c *rateConfig) { c.timeout = d } }

// WithRedisRetry sets how long the limiter counts in memory after Redis
// failed before it tries Redis again (default 1s): how long its circuit
// breaker stays open.
func WithRedisRetry(d time.Duration) RateLimitOption { return func(c *rateConfig) { c.retry = d } }

// NewRateLimiter returns a limiter with defaultRate ("6000-M": requests per
// S, M, H or D) for partners without their own quota.
func NewRateLimiter(defaultRate string, opts ...RateLimitOption) (*RateLimiter, error) {
	cfg := rateConfig{failAddr: DefaultAuthFailuresPerAddress, failClient: DefaultAuthFailuresPerClient,
		prefix: "credgate:ratelimit", timeout: 50 * time.Millisecond, retry: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	parse := func(what, s string) (limiter.Rate, error) {
		if _, _, err := service.ParseRate(s); err != nil {
			return limiter.Rate{}, fmt.Errorf("%s: %w", what, err)
		}
		return limiter.NewRateFromFormatted(s)
	}
	l := &RateLimiter{rates: otter.Must(&otter.Options[string, *quotaRate]{
		MaximumSize: maxRates, ExpiryCalculator: otter.ExpiryAccessing[string, *quotaRate](time.Hour),
	})}
	def, err := parse("default rate limit", defaultRate)
	if err != nil {
		return nil, err
	}
	l.def = newQuotaRate(def)
	if l.failAddr, err = parse("failed authentications per address", cfg.failAddr); err != nil {
		return nil, err
	}
	if l.failClient, err = parse("failed authentications per client", cfg.failClient); err != nil {
		return nil, err
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.Default()
	}
	l.store = newFailoverStore(cfg, logger)
	l.quota = newQuotaLeases(l.store)
	var replayOpts []access.ReplayOption
	if cfg.redis != nil {
		l.store.redisStore() // connect now rather than on the first request
		replayOpts = append(replayOpts, access.WithSharedReplay(l.store))
	}
	l.replay = access.NewReplaySet(replayOpts...)
	l.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "credgate_rate_limited_total", Help: "Requests refused with 429, by kind (quota, authentication failures).",
	}, []string{"kind"})
	return l, nil
}

// Collectors are the limiter's metrics.
func (l *RateLimiter) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{l.rejected}
	if l.store.client != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "credgate_rate_limit_redis_up",
			Help: "1 while rate limits are shared through Redis, 0 while this replica counts alone in memory.",
		}, func() float64 {
			if l.store.shared() {
				return 1
			}
			return 0
		}))
	}
	return cs
}

// Shared reports whether counters currently go through Redis.
func (l *RateLimiter) Shared() bool { return l.store.shared() }

// quotaRate is a quota with what its RateLimit-Policy header says, which
// is the same for every request under it.
type quotaRate struct {
	rate   limiter.Rate
	policy string
	// limit is RateLimit-Limit's value, made once rather than per request.
	limit string
}

func newQuotaRate(r limiter.Rate) *quotaRate {
	limit := strconv.FormatInt(r.Limit, 10)
	return &quotaRate{rate: r, policy: limit + ";w=" + strconv.FormatInt(int64(r.Period/time.Second), 10), limit: limit}
}

// rateFor returns a partner's quota: its override, else the default.
func (l *RateLimiter) rateFor(override string) *quotaRate {
	if override == "" {
		return l.def
	}
	if r, ok := l.rates.GetIfPresent(override); ok {
		return r
	}
	r, err := limiter.NewRateFromFormatted(override)
	if err != nil || r.Limit < 1 {
		// Validated when stored; an unreadable override is the default.
		return l.def
	}
	q := newQuotaRate(r)
	l.rates.Set(override, q)
	return q
}

// The RateLimit headers' names as net/http canonicalises them (and
// writes them): "RateLimit-Limit" is sent as "Ratelimit-Limit".
const (
	hdrRateLimitLimit     = "Ratelimit-Limit"
	hdrRateLimitRemaining = "Ratelimit-Remaining"
	hdrRateLimitReset     = "Ratelimit-Reset"
	hdrRateLimitPolicy    = "Ratelimit-Policy"
)

// ctxCharge is the request's charge to the quota (*quotaCharge), so that
// what was taken can be given back when the request is refused.
const ctxCharge = "credgate.charge"

// quotaCharge is what a request took from its partner's quota.
type quotaCharge struct {
	units int64
	// window is when the counter's window ends (Unix seconds): a refund
	// after it would credit the next window instead.
	window int64
}

// rateLimit is the middleware that enforces the caller's quota and tells it
// where it stands (RateLimit-Limit, -Remaining, -Reset). Administrators are
// operators, not clients: they run imports and load tests, and are limited
// only when given a quota of their own.
//
// Only work accepted is paid for. The request is charged before it runs
// (so that concurrent requests cannot overrun the quota) and the charge is
// given back when the answer is a refusal decided on the request's face,
// before any work (refunded): a malformed body, a forbidden action, a
// batch too large, another quota refusal. Answers decided by reading
// stored state (404, 409, 410, 422) and every 2xx and 5xx stay charged.
func (s *Server) rateLimit(c *gin.Context) {
	id := identityOf(c)
	var p service.Partner
	if id != nil {
		p = id.partner
	}
	if exempt(p) {
		c.Next()
		return
	}
	var charge *quotaCharge
	if id != nil {
		charge = &id.charge // allocated with the identity
	} else {
		charge = &quotaCharge{}
	}
	if !s.charge(c, p, 1, charge) {
		return
	}
	c.Set(ctxCharge, charge)
	c.Next()
	if charge.units > 0 && refunded(c.Writer.Status()) && time.Now().Unix() < charge.window {
		s.limits.quota.refund(p.ClientID, s.limits.rateFor(p.RateLimit).rate, charge.units, charge.window)
	}
}

// refunded reports whether an answer is a refusal decided before the
// work, which costs the caller nothing.
func refunded(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
		http.StatusTooManyRequests, http.StatusRequestHeaderFieldsTooLarge:
		return true
	}
	return false
}

func exempt(p service.Partner) bool { return p.Role == service.RoleAdmin && p.RateLimit == "" }

// charge takes n requests from the partner's quota, sets the RateLimit
// headers and, when the quota is used up, gives the n back, answers 429
// and reports false; what it took is added to into.
func (s *Server) charge(c *gin.Context, p service.Partner, n int64, into *quotaCharge) bool {
	l := s.limits
	q := l.rateFor(p.RateLimit)
	rate := q.rate
	lc, err := l.quota.charge(c.Request.Context(), p.ClientID, n, rate)
	if err != nil {
		// Only a cancelled request gets here (memory never fails).
		fail(c, err)
		return false
	}
	reset := max(0, lc.Reset-time.Now().Unix())
	// Set in the header map under their canonical names, the four values
	// in one allocation: through Header.Set each header cost a
	// canonicalised copy of its name and a slice of its own on every
	// request.
	limit := q.limit
	if lc.Limit != rate.Limit {
		limit = strconv.FormatInt(lc.Limit, 10)
	}
	vals := [...]string{limit, strconv.FormatInt(lc.Remaining, 10), strconv.FormatInt(reset, 10), q.policy}
	h, all := c.Writer.Header(), vals[:]
	h[hdrRateLimitLimit], h[hdrRateLimitRemaining], h[hdrRateLimitReset], h[hdrRateLimitPolicy] = all[0:1:1], all[1:2:2], all[2:3:3], all[3:4:4]
	if lc.Reached {
		// A refused request took nothing (quota.go gives a refused lease
		// back): a batch larger than what remains does not use the rest of
		// the window up unanswered.
		l.rejected.WithLabelValues("quota").Inc()
		c.Header("Retry-After", strconv.FormatInt(max(1, reset), 10))
		// What the caller needs to decide: how many units this request
		// needed (with the one the middleware took), how many were left
		// of the window's, and when the window ends. A bank refused a
		// file of 300 000 subjects reads "needs 300000 units; 49796 of
		// 2000000 a day are left until 2026-12-08T23:12:00Z".
		needed, left := into.units+n, lc.Remaining+into.units
		fail(c, fmt.Errorf("%w: this request needs %d units of the quota; %d of %d %s are left until %s",
			ErrRateLimited, needed, left, rate.Limit, perPeriod(rate.Period), time.Unix(lc.Reset, 0).UTC().Format(time.RFC3339)))
		return false
	}
	into.units += n
	into.window = lc.Reset
	return true
}

// chargeBatch takes the rest of a batch's subjects from the quota (the
// middleware took one): a batch of n subjects costs n checks. A batch the
// service will refuse for its size (empty, or over service.MaxBatch) is
// not charged: it is answered 400 or 413, not 429, and the middleware
// gives back its one unit.
func (s *Server) chargeBatch(c *gin.Context, subjects int) bool {
	if subjects <= 1 || subjects > service.MaxBatch {
		return true
	}
	return s.chargeMore(c, int64(subjects-1))
}

// chargeMore takes n more units from the caller's quota, beside the one
// the middleware took (a batch's or a screening's other subjects); past
// the quota it answers 429 and reports false.
func (s *Server) chargeMore(c *gin.Context, n int64) bool {
	p := partnerOf(c)
	if exempt(p) {
		return true
	}
	v, _ := c.Get(ctxCharge)
	charge, _ := v.(*quotaCharge)
	if charge == nil {
		charge = &quotaCharge{}
	}
	return s.charge(c, p, n, charge)
}

// addressKey is the throttling key of the caller's address (see
// throttleAddress). Which address is the caller's depends on the trusted
// proxies (WithTrustedProxies).
func addressKey(c *gin.Context) string { return throttleAddress(c.ClientIP()) }

// throttled reports (and answers 429) when the caller's address has used
// up its failed-authentication allowance: a cheap refusal before the
// request's credentials are read. It only reads the counter; what bounds
// the guesses is admitAuth.
func (l *RateLimiter) throttled(c *gin.Context) bool {
	lc, err := l.store.Peek(c.Request.Context(), addressFailKey(c), l.failAddr)
	if err != nil || (lc.Remaining > 0 && !lc.Reached) {
		return false
	}
	l.refuseAuth(c, lc.Reset)
	return true
}

// refuseAuth answers 429 to a client authentication past its allowance,
// whose window ends at reset (Unix seconds).
func (l *RateLimiter) refuseAuth(c *gin.Context, reset int64) {
	l.rejected.WithLabelValues("authentication").Inc()
	c.Header("Retry-After", strconv.FormatInt(max(1, reset-time.Now().Unix()), 10))
	fail(c, fmt.Errorf("%w: too many failed authentications; retry later", ErrRateLimited))
}

// authAttempt is a client authentication's hold on the failed-
// authentication allowances of its address and client id (admitAuth):
// kept when the credentials are wrong, given back otherwise.
type authAttempt struct {
	l    *RateLimiter
	keys [2]string
	// rates and resets (the windows' ends, Unix seconds) of keys.
	rates  [2]limiter.Rate
	resets [2]int64
	n      int
}

// admitAuth takes one unit of the address's and the client id's
// failed-authentication allowances before the credentials are verified,
// and answers 429 (taking nothing) when either is used up. A unit taken
// before the check, rather than counted after it, is what stops guessing:
// counted after, every request of a burst passed the read while the
// others were still being verified, and 200 simultaneous guesses from one
// address got 108 verified against an allowance of 10. The price is that
// an address or client id has at most its allowance of authentications in
// flight at once; release gives the unit back to one that did not fail.
// Past the allowance a correct secret is refused too until the window
// ends: otherwise the throttle would only slow guessing down, not stop it.
func (l *RateLimiter) admitAuth(c *gin.Context, clientID string) (*authAttempt, bool) {
	ctx := c.Request.Context()
	a := &authAttempt{l: l}
	take := func(key string, rate limiter.Rate) bool {
		lc, err := l.store.Increment(ctx, key, 1, rate)
		if err != nil {
			// Only a cancelled request gets here (memory never fails).
			a.release(ctx)
			fail(c, err)
			return false
		}
		a.keys[a.n], a.rates[a.n], a.resets[a.n] = key, rate, lc.Reset
		a.n++
		if lc.Reached {
			a.release(ctx)
			l.refuseAuth(c, lc.Reset)
			return false
		}
		return true
	}
	if !take(addressFailKey(c), l.failAddr) {
		return nil, false
	}
	if clientID != "" && len(clientID) <= service.MaxClientIDLen && !take(clientFailKey(clientID), l.failClient) {
		return nil, false
	}
	return a, true
}

// release gives back the units an attempt took, within their windows (a
// unit given back to the next window would be an extra guess there).
func (a *authAttempt) release(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	now := time.Now().Unix()
	for i := range a.n {
		if a.resets[i] > now {
			_, _ = a.l.store.Increment(ctx, a.keys[i], -1, a.rates[i])
		}
	}
	a.n = 0
}

// recordFailure counts a failed client authentication that was refused
// before any lookup (no credentials, a malformed assertion) against the
// address.
func (l *RateLimiter) recordFailure(c *gin.Context) {
	_, _ = l.store.Increment(c.Request.Context(), addressFailKey(c), 1, l.failAddr)
}

// addressFailKey is the counter of failed authentications from the
// caller's address.
func addressFailKey(c *gin.Context) string { return "authfail:addr:" + addressKey(c) }

// clientFailKey is the counter of failed authentications for a client id,
// under a hash of the id: a "client id" that names no partner is often a
// secret pasted into the wrong field, and it must not become a key in
// Redis (where it outlives the window in dumps and monitoring). The hash
// is the same on every replica, so the count is shared.
func clientFailKey(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return "authfail:client:" + hex.EncodeToString(sum[:16])
}

// failoverStore is a limiter.Store that counts in Redis while Redis
// answers and in this replica's memory otherwise. Redis calls go through a
// circuit breaker that opens on a failure and stays open for the retry
// interval, so that a dead Redis costs one timeout per interval and not
// one per request; it also serves the replay set (access.SharedReplay).
type failoverStore struct {
	local   limiter.Store
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	cb      *gobreaker.CircuitBreaker[any]

	primary    atomic.Pointer[limiter.Store]
	connecting atomic.Bool
	lastErr    atomic.Pointer[string] // why Redis last failed, for the log
}

func newFailoverStore(cfg rateConfig, logger *slog.Logger) *failoverStore {
	f := &failoverStore{
		local:  memorystore.NewStoreWithOptions(limiter.StoreOptions{Prefix: cfg.prefix, CleanUpInterval: limiter.DefaultCleanUpInterval}),
		client: cfg.redis, prefix: cfg.prefix, timeout: cfg.timeout,
	}
	f.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "ratelimit-redis",
		MaxRequests: 1,
		Timeout:     cfg.retry,
		// One failure is enough: every request waits for the timeout while
		// Redis does not answer, and checks must not.
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		// A caller that gave up says nothing about Redis.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				why := ""
				if p := f.lastErr.Load(); p != nil {
					why = *p
				}
				logger.Warn("rate limiting falls back to this replica's memory: Redis does not answer",
					"breaker_from", breaker.StateName(from), "err", why)
			case gobreaker.StateClosed:
				logger.Info("rate limiting is shared through Redis again")
			}
		},
	})
	return f
}

// shared reports whether counts currently go to Redis.
func (f *failoverStore) shared() bool {
	return f.client != nil && f.primary.Load() != nil && f.cb.State() == gobreaker.StateClosed
}

// execute runs op against Redis through the breaker, bounded by the
// Redis timeout.
func (f *failoverStore) execute(ctx context.Context, op func(context.Context) (any, error)) (any, error) {
	return f.cb.Execute(func() (any, error) {
		rctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		v, err := op(rctx)
		if err != nil {
			msg := err.Error()
			f.lastErr.Store(&msg)
		}
		return v, err
	})
}

// redisStore returns the Redis store when Redis is to be tried now. The
// limiter's Redis store loads its scripts when built, which needs Redis:
// it is built in the background, the first time and after failures, and
// requests count in memory meanwhile.
func (f *failoverStore) redisStore() limiter.Store {
	if f.client == nil || f.cb.State() == gobreaker.StateOpen {
		return nil
	}
	if p := f.primary.Load(); p != nil {
		return *p
	}
	if f.connecting.CompareAndSwap(false, true) {
		go func() {
			defer f.connecting.Store(false)
			_, _ = f.execute(context.Background(), func(context.Context) (any, error) {
				st, err := redisstore.NewStoreWithOptions(f.client, limiter.StoreOptions{Prefix: f.prefix})
				if err != nil {
					return nil, fmt.Errorf("load the rate limit scripts: %w", err)
				}
				f.primary.Store(&st)
				return nil, nil
			})
		}()
	}
	return nil
}

func (f *failoverStore) do(ctx context.Context, op func(context.Context, limiter.Store) (limiter.Context, error)) (limiter.Context, error) {
	if st := f.redisStore(); st != nil {
		v, err := f.execute(ctx, func(rctx context.Context) (any, error) { return op(rctx, st) })
		if err == nil {
			return v.(limiter.Context), nil
		}
		if ctx.Err() != nil {
			return limiter.Context{}, ctx.Err()
		}
		// Open breaker, or this call failed: count here.
	}
	return op(ctx, f.local)
}

// FirstUse implements access.SharedReplay with SET NX in Redis.
func (f *failoverStore) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	v, err := f.execute(ctx, func(rctx context.Context) (any, error) {
		return f.client.SetNX(rctx, f.prefix+":replay:"+key, 1, ttl).Result()
	})
	if err != nil {
		return false, fmt.Errorf("replay set in Redis: %w", err)
	}
	return v.(bool), nil
}

// Get implements limiter.Store.
func (f *failoverStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Get(ctx, key, rate) })
}

// Peek implements limiter.Store.
func (f *failoverStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Peek(ctx, key, rate) })
}

// Reset implements limiter.Store.
func (f *failoverStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) { return s.Reset(ctx, key, rate) })
}

// Increment implements limiter.Store.
func (f *failoverStore) Increment(ctx context.Context, key string, n int64, rate limiter.Rate) (limiter.Context, error) {
	return f.do(ctx, func(ctx context.Context, s limiter.Store) (limiter.Context, error) {
		return s.Increment(ctx, key, n, rate)
	})
}

var (
	_ limiter.Store       = (*failoverStore)(nil)
	_ access.SharedReplay = (*failoverStore)(nil)
)
