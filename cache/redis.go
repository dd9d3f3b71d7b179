package cache

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/credgate/credgate/internal/breaker"
)

// WithRedis adds the shared Redis tier, connecting with opts (from
// redis.ParseURL). The tier owns the client: unset timeouts default to
// the Redis timeout, and commands are not retried (the store is the
// fallback, not a second try). The replicas of a deployment give it the
// secret they share (WithRedisSecret).
func WithRedis(opts *redis.Options) Option {
	return func(c *config) { c.redis = opts }
}

// WithRedisClient adds the shared Redis tier over a client that others use
// too (serve builds one client from one URL for the cache and the rate
// limiter). The tier talks through a clone of it that shares its
// connection pool, with the Redis timeout as read and write timeout and
// its own round-trip metrics; it does not close the client. The client
// should not retry commands (MaxRetries -1) and should honour context
// deadlines (ContextTimeoutEnabled), as WithRedis makes its own do.
func WithRedisClient(client *redis.Client) Option {
	return func(c *config) { c.redisClient = client }
}

// Key layout. The hash tag is the subject's tag (a keyed hash of it,
// seal.go), so that a subject's value and generation live in one slot
// (Redis Cluster) and one script sees both, and no key name says whose
// they are. The trust mark is one key of the deployment's.
func (r *redisTier) keys(subject string) (value, gen string) {
	base := r.prefix + ":{" + r.seal.tag(subject) + "}"
	return base + ":e", base + ":g"
}
func (r *redisTier) valueKey(subject string) string { v, _ := r.keys(subject); return v }
func (r *redisTier) trustKey() string               { return r.prefix + ":trust_from" }

// trustScript raises the deployment's trust mark (unix microseconds: Lua's
// numbers are doubles, exact to 2^53) to ARGV[1] if it is lower, and
// returns the mark; ARGV[1] = 0 only reads it. The mark expires with the
// generations: by then every value older than it is past cache.redis_ttl,
// which lookups refuse anyway.
var trustScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local t = tonumber(ARGV[1])
if t > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return t
end
return cur`)

// fillScript stores a value only if the subject's generation is the one
// read before the store read: an invalidation in between (which bumps it)
// means the value may predate the change, so it is dropped. The value is
// sealed with that generation as associated data, so the generation must
// outlive it: its expiry is pushed past the value's if it is sooner.
var fillScript = redis.NewScript(`
local g = redis.call('GET', KEYS[2])
if (g or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if g and redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
  end
  return 1
end
return 0`)

// invalidateScript bumps a subject's generation and deletes its value,
// atomically.
var invalidateScript = redis.NewScript(`
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1`)

// pathKey tags a context with the reason of its Redis calls, for the
// round-trip metrics.
type pathKey struct{}

// Reasons of Redis round trips.
const (
	pathLookup     = "lookup"
	pathFill       = "fill"
	pathInvalidate = "invalidate"
	pathOther      = "other"
)

var paths = []string{pathLookup, pathFill, pathInvalidate, pathOther}

type redisTier struct {
	t       *Tier
	rdb     *redis.Client
	owned   bool // rdb is the tier's own, closed with it
	prefix  string
	channel string
	ttl     time.Duration
	genTTL  time.Duration
	timeout time.Duration
	cb      *gobreaker.CircuitBreaker[any]
	fills   chan fillReq
	seal    *sealer // names, seals and opens what Redis holds (seal.go)
	// rejectedOnce, unopenedOnce: the first value and the first message
	// that did not open are logged; the others are only counted.
	rejectedOnce, unopenedOnce sync.Once

	// trustFrom (unix ns): values read from the store before it are not
	// trusted (see the package doc): the higher of this replica's own
	// mark and the deployment's (trustKey), as last read.
	trustFrom atomic.Int64
	// pending (unix ns): this replica's mark not yet stored in Redis
	// (Redis failed when it was set); 0 when none.
	pending atomic.Int64
	// trustKnown: the deployment's mark has been read once. Until then
	// no Redis value is trusted: it may be one that some replica,
	// before this one started, could not invalidate.
	trustKnown atomic.Bool
	subscribed atomic.Bool
	up         atomic.Bool      // the last call succeeded
	roundTrips [4]atomic.Uint64 // by paths index
}

// fillTicket carries what the lookup read from Redis to the fill: the
// subject's generation before the store read.
type fillTicket struct{ gen string }

// fillReq is a set to write to Redis, encoded and sealed by the filler
// (off the lookup's path).
type fillReq struct {
	subject string
	set     *set
	gen     string
}

func newRedisTier(t *Tier, cfg config, seal *sealer) *redisTier {
	var rdb *redis.Client
	owned := cfg.redisClient == nil
	if owned {
		o := *cfg.redis
		if o.DialTimeout == 0 {
			o.DialTimeout = max(250*time.Millisecond, cfg.redisTimeout)
		}
		if o.ReadTimeout == 0 {
			o.ReadTimeout = cfg.redisTimeout
		}
		if o.WriteTimeout == 0 {
			o.WriteTimeout = cfg.redisTimeout
		}
		if o.PoolTimeout == 0 {
			o.PoolTimeout = cfg.redisTimeout
		}
		o.MaxRetries = -1
		o.ContextTimeoutEnabled = true
		rdb = redis.NewClient(&o)
	} else {
		// A clone shares the pool; the hook added below stays on the clone.
		rdb = cfg.redisClient.WithTimeout(cfg.redisTimeout)
	}
	r := &redisTier{
		t: t, rdb: rdb, owned: owned, prefix: cfg.prefix, channel: cfg.prefix + ":invalidate",
		ttl: cfg.redisTTL, genTTL: max(cfg.redisTTL, time.Hour), timeout: cfg.redisTimeout,
		fills: make(chan fillReq, cfg.fillQueueSize), seal: seal,
	}
	r.rdb.AddHook(rtHook{r})
	r.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cfg.breakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.breakerTrips },
		// A caller that gave up says nothing about Redis.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			cfg.logger.Warn("cache: Redis circuit breaker", "from", breaker.StateName(from), "to", breaker.StateName(to))
		},
	})
	return r
}

// call runs f through the breaker with the Redis timeout.
func (r *redisTier) call(ctx context.Context, path string, timeout time.Duration, f func(ctx context.Context) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, pathKey{}, path), timeout)
	defer cancel()
	v, err := r.cb.Execute(func() (any, error) { return f(ctx) })
	// Every call says whether Redis answers (a refusal by the open
	// breaker says it did not); a caller that gave up says nothing.
	if !errors.Is(err, context.Canceled) {
		r.up.Store(err == nil)
	}
	return v, err
}

// get reads a subject's value and generation in one round trip. It
// returns the set if Redis has a trusted one, else a ticket for filling
// Redis after the store read (nil when Redis is not answering).
func (r *redisTier) get(ctx context.Context, subject string) (*set, *fillTicket) {
	vk, gk := r.keys(subject)
	v, err := r.call(ctx, pathLookup, r.timeout, func(ctx context.Context) (any, error) {
		return r.rdb.MGet(ctx, vk, gk).Result()
	})
	if err != nil {
		r.t.stats.redisErrors.Add(1)
		return nil, nil
	}
	vals := v.([]any)
	ticket := &fillTicket{}
	if g, ok := vals[1].(string); ok {
		ticket.gen = g
	}
	raw, ok := vals[0].(string)
	if !ok {
		r.t.stats.redisMisses.Add(1)
		return nil, ticket
	}
	plain, err := r.seal.openValue(vk, subject, ticket.gen, []byte(raw))
	if err != nil {
		// Forged, altered, moved from another key or generation, sealed
		// under another secret or by an older release: a miss, which the
		// fill overwrites.
		r.t.stats.redisRejected.Add(1)
		r.rejectedOnce.Do(func() {
			r.t.cfg.logger.Warn("cache: a Redis value does not open under this replica's secret (forged, altered, moved to another key, or written under another secret or by an older release); it is treated as a miss, and further ones are only counted in credgate_cache_redis_values_total{fate=\"rejected\"}")
		})
		return nil, ticket
	}
	s, err := decodeSet(plain)
	if err != nil {
		r.t.stats.redisBadValues.Add(1)
		return nil, ticket
	}
	if !r.trusts(s.loadedAt) || r.t.cfg.now().UnixNano()-s.loadedAt > int64(r.ttl) {
		r.t.stats.redisDistrusted.Add(1)
		return nil, ticket
	}
	s.fromRedis = true
	return s, nil
}

// trusts reports whether a value read from the store at loadedAt (unix
// ns), found in Redis, may be served.
func (r *redisTier) trusts(loadedAt int64) bool {
	return r.trustKnown.Load() && loadedAt >= r.trustFrom.Load()
}

// fill queues s to be written behind the lookup; when the queue is full
// the fill is dropped (it is only a cache).
func (r *redisTier) fill(subject string, s *set, ticket *fillTicket) {
	select {
	case r.fills <- fillReq{subject: subject, set: s, gen: ticket.gen}:
	default:
		r.t.stats.fillsDropped.Add(1)
	}
}

// fillLoop writes queued fills, as many as are waiting in one pipeline.
func (r *redisTier) fillLoop(ctx context.Context) {
	batch := make([]fillReq, 0, defaultFillBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-r.fills:
			batch = append(batch[:0], f)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case f := <-r.fills:
				batch = append(batch, f)
			default:
				break drain
			}
		}
		ttl := r.ttl.Milliseconds()
		type sealed struct{ vk, gk, gen, value string }
		values := make([]sealed, 0, len(batch))
		for _, f := range batch {
			b, err := encodeSet(f.set)
			if err != nil {
				r.t.stats.fillsDropped.Add(1)
				continue
			}
			vk, gk := r.keys(f.subject)
			values = append(values, sealed{vk, gk, f.gen, string(r.seal.sealValue(vk, f.subject, f.gen, b))})
		}
		clear(batch) // the sets are not held until the next batch
		if len(values) == 0 {
			continue
		}
		_, err := r.call(ctx, pathFill, 10*r.timeout, func(ctx context.Context) (any, error) {
			pipe := r.rdb.Pipeline()
			for _, v := range values {
				fillScript.Eval(ctx, pipe, []string{v.vk, v.gk}, v.gen, v.value, ttl)
			}
			_, err := pipe.Exec(ctx)
			return nil, err
		})
		if err != nil {
			r.t.stats.fillsDropped.Add(uint64(len(values)))
			continue
		}
		r.t.stats.fillsWritten.Add(uint64(len(values)))
	}
}

// invalidate bumps the generations and deletes the values of subjects.
// If that fails, this replica stops trusting every value written before
// now, since some of them may be of these subjects.
func (r *redisTier) invalidate(ctx context.Context, subjects []string) {
	genTTL := r.genTTL.Milliseconds()
	for chunk := range slices.Chunk(subjects, 1000) {
		_, err := r.call(ctx, pathInvalidate, 10*r.timeout, func(ctx context.Context) (any, error) {
			pipe := r.rdb.Pipeline()
			for _, s := range chunk {
				vk, gk := r.keys(s)
				invalidateScript.Eval(ctx, pipe, []string{vk, gk}, genTTL)
			}
			_, err := pipe.Exec(ctx)
			return nil, err
		})
		if err != nil {
			r.distrust()
			return
		}
	}
}

// distrust stops trusting values read from the store before now, here at
// once and, through the deployment's mark, in every replica, those started
// later included: syncTrust stores it as soon as Redis answers.
func (r *redisTier) distrust() {
	now := r.t.cfg.now().UnixNano()
	raise(&r.trustFrom, now)
	raise(&r.pending, now)
}

// raise sets a to v if v is higher.
func raise(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if old >= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// syncTrust stores this replica's pending mark in the deployment's (a
// max-only update) and takes the deployment's mark, in one round trip. It
// is each reconcile's health check of Redis, so a mark set while Redis
// failed reaches it at the first reconcile after Redis answers again (at
// once when the subscription's return asks for one), and every other
// replica, those started later included, refuses the values it covers
// from its next reconcile on.
func (r *redisTier) syncTrust(ctx context.Context) {
	p := r.pending.Load()
	v, err := r.call(ctx, pathOther, 2*r.timeout, func(ctx context.Context) (any, error) {
		return trustScript.Run(ctx, r.rdb, []string{r.trustKey()}, (p+999)/1000, r.genTTL.Milliseconds()).Int64()
	})
	if err != nil {
		return
	}
	raise(&r.trustFrom, v.(int64)*1000)
	r.trustKnown.Store(true)
	if p != 0 {
		r.pending.CompareAndSwap(p, 0) // a mark set meanwhile waits for the next
	}
}

// publish tells the other replicas to drop subjects, in sealed messages.
// A lost message is covered by their reconcilers.
func (r *redisTier) publish(ctx context.Context, subjects []string) {
	for chunk := range slices.Chunk(subjects, maxInvalidateMessage) {
		payload := r.seal.sealMessage(r.channel, []byte(strings.Join(chunk, "\n")))
		if _, err := r.call(ctx, pathInvalidate, 10*r.timeout, func(ctx context.Context) (any, error) {
			return r.rdb.Publish(ctx, r.channel, payload).Result()
		}); err != nil {
			r.t.stats.publishErrors.Add(1)
			return
		}
	}
}

// subscribe drops the subjects other replicas publish, until ctx ends.
// go-redis reconnects and resubscribes by itself; messages sent while the
// subscription was down are lost, so on resubscribing the tier distrusts
// older Redis values and reconciles at once.
func (r *redisTier) subscribe(ctx context.Context) {
	ps := r.rdb.Subscribe(ctx, r.channel)
	// A blocked Receive does not watch ctx; closing the subscription
	// ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	broken := false
	backoff := 50 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.subscribed.Store(false)
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.subscribed.Store(true)
				backoff = 50 * time.Millisecond
				if broken {
					broken = false
					r.distrust()
					r.t.Reconcile()
				}
			}
		case *redis.Message:
			plain, err := r.seal.openMessage(r.channel, []byte(m.Payload))
			if err != nil {
				// Not from a replica sharing this secret (an older
				// release, another secret, a forgery): what changed is
				// unknown, so read the change log now, as after a
				// message lost.
				r.t.stats.messagesRejected.Add(1)
				r.unopenedOnce.Do(func() {
					r.t.cfg.logger.Warn("cache: an invalidation message does not open under this replica's secret (from an older release, a replica with another secret, or forged); the change log is read instead, and further ones are only counted in credgate_cache_pubsub_messages_total{result=\"rejected\"}")
				})
				r.t.Reconcile()
				continue
			}
			r.t.stats.messagesReceived.Add(1)
			subjects := strings.Split(string(plain), "\n")
			if len(subjects) > maxInvalidateMessage {
				subjects = subjects[:maxInvalidateMessage]
			}
			r.t.dropLocal(subjects, &r.t.stats.invalidatedPubSub)
		}
	}
}

func (r *redisTier) close() error {
	if !r.owned {
		return nil
	}
	return r.rdb.Close()
}

// rtHook counts Redis round trips: one per command, one per pipeline.
type rtHook struct{ r *redisTier }

func (h rtHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h rtHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(ctx)
		return next(ctx, cmd)
	}
}

func (h rtHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count(ctx)
		return next(ctx, cmds)
	}
}

func (h rtHook) count(ctx context.Context) {
	p, _ := ctx.Value(pathKey{}).(string)
	for i, name := range paths {
		if name == p {
			h.r.roundTrips[i].Add(1)
			return
		}
	}
	h.r.roundTrips[len(paths)-1].Add(1)
}
