// Package cache is the cache tier in front of the entry store on the check
// path: an in-process W-TinyLFU cache (otter) in front of a shared Redis,
// both holding each subject's compiled entry set, clean subjects included.
//
// Freshness is explicit. Every set carries the time it was read from the
// store; a reconciler reads the store's change log every interval, drops
// the subjects that changed and then records the time of that reading as
// "confirmed": every set still cached is known current as of then. A
// lookup answers with AsOf = max(read time, confirmed), which is what a
// check states as data_as_of, and which stops advancing when the store
// cannot be reached, so that answers age honestly and, past the bound the
// checker applies, become unverifiable instead of silently stale.
//
// Invalidation is two-fold. The process that changes entries calls
// Invalidate (service.WithChangeHook): it bumps the subject's generation
// and deletes its value in Redis, drops its own copy and publishes the
// subjects on Redis pub/sub, so every replica drops its copy within
// milliseconds. Messages can be lost (Redis down, a replica reconnecting),
// so the reconciler is what the correctness rests on; pub/sub only makes
// it fast. Writers that tell no replica (another process, SQL) reach the
// change log all the same; with WithChangeNotices the store says when it
// grew and the reconciler reads it then, not at its next tick
// (notices.go).
//
// With WithListedFilter the tier also keeps a filter of every subject the
// store's entries name, kept current by the same invalidations, so that a
// subject no entry names (most subjects, on their first check) is answered
// clean without a read of Redis or the store (listed.go).
//
// Redis is optional and never required for an answer: its calls go through
// a circuit breaker with short timeouts, and when it fails lookups fall
// through to the store. Values are filled behind the lookup (one round
// trip on the lookup's path) with a compare-and-set on the subject's
// generation, so a load that raced an invalidation cannot put stale data
// back. When a replica could not invalidate in Redis (Redis failing, or a
// reading of the change log lost), or its subscription broke, it stops
// trusting every Redis value read from the store before that moment (they
// are overwritten as they are read), and so does every other replica: the
// moment is kept in Redis (<prefix>:trust_from, raised only, stored as
// soon as Redis answers again), read at each reconcile and before any
// Redis value is trusted, and it reaches local copies read from Redis too.
// A local copy of a Redis value is read again from the store past
// WithRedisTTL, the last bound on anything Redis could hold wrongly. This
// assumes the replicas' clocks agree to well within the reconcile interval
// (NTP).
//
// Redis holds nothing about a subject in the clear: key names carry a keyed
// hash of the subject, values and invalidation messages are sealed under a
// secret the replicas share (WithRedisSecret), and a value that does not
// open is a miss (seal.go).
package cache

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// ChangeFeed is the store's change log (see the adapters' SubjectChanges).
type ChangeFeed interface {
	// ChangeCursor returns a cursor from which SubjectChanges reports
	// every change not visible now.
	ChangeCursor(ctx context.Context) (uint64, error)
	// SubjectChanges returns up to limit changes at or after cursor, and
	// the next cursor; lost when changes since cursor cannot all be
	// known. A change may be returned more than once (same ID).
	SubjectChanges(ctx context.Context, cursor uint64, limit int) ([]service.SubjectChange, uint64, bool, error)
	// PruneSubjectChanges deletes changes before cursor before.
	PruneSubjectChanges(ctx context.Context, before uint64) error
}

// set is a subject's compiled entry set: the entries affecting it (none
// for a clean subject) and when they were read from the store.
type set struct {
	entries  []policy.Entry
	loadedAt int64 // unix nanoseconds, taken before the store read
	// flush is the tier's flush generation when the load began: a set
	// from before a flush is not served.
	flush uint64
	// fromRedis: read from Redis, where another replica put it. This
	// replica's reconciler vouches for it only from its own first
	// reading on, so it is held to the trust mark and to a maximum age.
	fromRedis bool
}

// Defaults.
const (
	DefaultMaxSubjects   = 100_000
	DefaultMaxStaleness  = 30 * time.Second
	DefaultReconcile     = 2 * time.Second
	DefaultRedisTTL      = 10 * time.Minute
	DefaultRedisTimeout  = 100 * time.Millisecond
	DefaultPrefix        = "credgate"
	defaultChangeLimit   = 10_000
	defaultPruneAfter    = time.Hour
	defaultFillQueue     = 4096
	defaultFillBatch     = 128
	maxInvalidateMessage = 1000 // subjects per pub/sub message
)

type config struct {
	maxSubjects    int
	maxStaleness   time.Duration
	reconcile      time.Duration
	changeLimit    int
	pruneAfter     time.Duration
	redis          *redis.Options
	redisClient    *redis.Client // shared, not owned (WithRedisClient)
	redisSecret    []byte        // WithRedisSecret (seal.go)
	redisSecretSet bool
	prefix         string
	redisTTL       time.Duration
	redisTimeout   time.Duration
	breakerOpen    time.Duration
	breakerTrips   uint32
	logger         *slog.Logger
	now            func() time.Time
	fillQueueSize  int
	tracer         trace.Tracer // nil: off (tracing.go)
	listed         ListedSource
	listedMax      int
	notices        ChangeNotifier // nil: the tick only (notices.go)
}

// Option configures a Tier.
type Option func(*config)

// WithMaxSubjects bounds the local tier (subjects held; default 100 000).
func WithMaxSubjects(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxSubjects = n
		}
	}
}

// WithMaxStaleness is the staleness bound of the checks: a cached set
// whose data is older than half of it is re-read from the store before it
// is served, if the store answers (default 30 s).
func WithMaxStaleness(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.maxStaleness = d
		}
	}
}

// WithReconcileInterval sets how often the change log is read (default
// 2 s): the bound on how long a change whose invalidation message was lost
// stays in a replica's cache.
func WithReconcileInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.reconcile = d
		}
	}
}

// WithPruneAfter sets how long change log rows are kept (default 1 h).
func WithPruneAfter(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pruneAfter = d
		}
	}
}

// WithChangeLimit caps the changes one reading handles one by one; past
// it the whole local tier is dropped (default 10 000).
func WithChangeLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.changeLimit = n
		}
	}
}

// WithPrefix prefixes every Redis key and the channel (default
// "credgate"): deployments, and test runs, sharing a Redis keep apart.
func WithPrefix(p string) Option {
	return func(c *config) {
		if p != "" {
			c.prefix = p
		}
	}
}

// WithRedisTTL sets the expiry of Redis values (default 10 min), a last
// bound on anything Redis could hold wrongly: a local copy of a Redis
// value is read again from the store once it is that old.
func WithRedisTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.redisTTL = d
		}
	}
}

// WithRedisTimeout bounds each Redis call on the lookup path (default
// 100 ms); past it the lookup goes to the store.
func WithRedisTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.redisTimeout = d
		}
	}
}

// WithRedisBreaker sets after how many consecutive failures the Redis
// breaker opens (default 3) and how long it stays open before a probe
// (default 1 s).
func WithRedisBreaker(failures uint32, open time.Duration) Option {
	return func(c *config) {
		if failures > 0 {
			c.breakerTrips = failures
		}
		if open > 0 {
			c.breakerOpen = open
		}
	}
}

// WithLogger sets the logger (default slog.Default()). The tier never logs
// subject identifiers.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Tier is the cache tier: a decorator of the check path's entry reading
// (service.EntryLookup), which it implements too. It is safe for
// concurrent use.
type Tier struct {
	cfg    config
	inner  service.EntryLookup
	feed   ChangeFeed
	local  *otter.Cache[string, *set]
	loader otter.Loader[string, *set]
	redis  *redisTier    // nil without Redis
	listed *listedFilter // nil without WithListedFilter (listed.go)

	// confirmed is when the last successful reading of the change log
	// was taken (unix ns): every set cached then is current as of it.
	confirmed atomic.Int64
	// flushGen is bumped when the whole local tier is dropped.
	flushGen atomic.Uint64
	// storeDown: the last reading of the change log failed; stale sets
	// are served without first trying the store.
	storeDown atomic.Bool
	// noticesUp: the change log is watched (notices.go).
	noticesUp atomic.Bool

	stats stats

	kick    chan struct{}
	stop    context.CancelFunc
	done    sync.WaitGroup
	started atomic.Bool

	// Reconciler state, touched by the reconciler goroutine only (and by
	// ReconcileNow, which runs under reconcileMu).
	reconcileMu sync.Mutex
	cursor      uint64
	haveCursor  bool
	seen        map[int64]struct{}
	marks       []pruneMark
}

var _ service.EntryLookup = (*Tier)(nil)

// New returns a tier decorating inner (the store, the source of truth),
// kept current through feed. Start begins
// reconciling (and, with Redis, subscribing); until then lookups work but
// nothing is confirmed.
func New(inner service.EntryLookup, feed ChangeFeed, opts ...Option) (*Tier, error) {
	cfg := config{
		maxSubjects: DefaultMaxSubjects, maxStaleness: DefaultMaxStaleness, reconcile: DefaultReconcile,
		changeLimit: defaultChangeLimit, pruneAfter: defaultPruneAfter, prefix: DefaultPrefix,
		redisTTL: DefaultRedisTTL, redisTimeout: DefaultRedisTimeout, breakerOpen: time.Second, breakerTrips: 3,
		logger: slog.Default(), now: time.Now, fillQueueSize: defaultFillQueue,
	}
	for _, o := range opts {
		o(&cfg)
	}
	var seal *sealer // nil without Redis
	if cfg.redis != nil || cfg.redisClient != nil {
		secret := cfg.redisSecret
		if !cfg.redisSecretSet {
			secret = randomSecret()
			cfg.logger.Warn("cache: Redis without a shared secret (WithRedisSecret); this replica seals its Redis values and messages under a random key of its own, which no other replica can use")
		}
		var err error
		seal, err = newSealer(secret)
		clear(secret) // a copy: only the keys derived from it are kept
		cfg.redisSecret = nil
		if err != nil {
			return nil, err
		}
	}
	local, err := otter.New(&otter.Options[string, *set]{MaximumSize: cfg.maxSubjects})
	if err != nil {
		return nil, err
	}
	t := &Tier{cfg: cfg, inner: inner, feed: feed, local: local, kick: make(chan struct{}, 1), seen: map[int64]struct{}{}}
	t.loader = otter.LoaderFunc[string, *set](t.load)
	if seal != nil {
		t.redis = newRedisTier(t, cfg, seal)
	}
	if cfg.listed != nil && feed != nil {
		// Without the change log nothing would keep it current.
		t.listed = newListedFilter(cfg.listed, cfg.listedMax)
	}
	return t, nil
}

// Start runs the reconciler and, with Redis, the subscriber and the filler,
// until Close. It reads the first cursor synchronously when it can, so
// that sets are confirmed from the first check.
func (t *Tier) Start(ctx context.Context) {
	if !t.started.CompareAndSwap(false, true) {
		return
	}
	ctx, t.stop = context.WithCancel(context.WithoutCancel(ctx))
	t.reconcileOnce(ctx)
	t.done.Go(func() { t.reconcileLoop(ctx) })
	if t.listed != nil {
		t.listed.request()
		t.done.Go(func() { t.listed.loop(ctx, t) })
	}
	if t.cfg.notices != nil && t.feed != nil {
		t.done.Go(func() { t.noticeLoop(ctx) })
	}
	if t.redis != nil {
		t.done.Go(func() { t.redis.subscribe(ctx) })
		t.done.Go(func() { t.redis.fillLoop(ctx) })
	}
}

// Close stops the background work. Lookups keep working (without
// confirmation) but nothing is reconciled any more.
func (t *Tier) Close() {
	if t.stop != nil {
		t.stop()
	}
	t.done.Wait()
	if t.redis != nil {
		_ = t.redis.close()
	}
	t.local.StopAllGoroutines()
}

// LookupEntries returns the entries affecting subject and when they were
// last known current. The entries are shared: callers must not modify
// them. A local hit takes no lock that serialises lookups and does not
// allocate.
func (t *Tier) LookupEntries(ctx context.Context, subject string) (_ service.Lookup, err error) {
	ctx, span := spans.Start(ctx, t.cfg.tracer, spans.CacheLookup)
	defer func() { endSpan(span, err) }()
	// confirmed is read before the set: a reading that completes in
	// between may have dropped the set we then find, and its time must
	// not be claimed for it.
	conf := t.confirmed.Load()
	gen := t.flushGen.Load()
	s, ok := t.local.GetIfPresent(subject)
	if ok && s.flush == gen && (!s.fromRedis || t.redis.trusts(s.loadedAt)) {
		now := t.cfg.now().UnixNano()
		asOf := max(s.loadedAt, conf)
		if s.fromRedis && now-s.loadedAt > int64(t.cfg.redisTTL) {
			// A copy of a Redis value lives no longer than the value
			// would have in Redis: past that, confirmations no longer
			// vouch for it (it may be one that missed an invalidation
			// before this replica's first reading) and it is read again.
			asOf = s.loadedAt
		}
		if now-asOf <= int64(t.cfg.maxStaleness/2) || t.storeDown.Load() {
			t.stats.localHits.Add(1)
			answeredBy(span, spans.TierLocal, true)
			return service.Lookup{Entries: s.entries, AsOf: time.Unix(0, asOf)}, nil
		}
		// Older than half the bound although the store seems up (the
		// reconciler is behind): read it again, keeping this copy if the
		// store fails now.
		answeredBy(span, spans.TierStore, true)
		return t.reload(ctx, subject, s, asOf), nil
	}
	if ok {
		// From before a flush, or a Redis value older than a trust
		// mark raised since it was read.
		t.local.Invalidate(subject)
	}
	if l, ok := t.listedAnswer(subject, conf); ok {
		answeredBy(span, spans.TierListed, false)
		return l, nil
	}
	if span.IsRecording() {
		span.SetAttributes(spans.CacheHit.Bool(false)) // load adds the tier that answered
	}
	s, err = t.local.Get(ctx, subject, t.loader)
	if err != nil {
		t.stats.errors.Add(1)
		return service.Lookup{}, err
	}
	return service.Lookup{Entries: s.entries, AsOf: time.Unix(0, max(s.loadedAt, conf))}, nil
}

// load is the local tier's loader: Redis, then the store. otter calls it
// once for concurrent misses of a subject (the others wait for it) and
// discards its result if the subject is invalidated meanwhile.
func (t *Tier) load(ctx context.Context, subject string) (*set, error) {
	gen := t.flushGen.Load()
	var fill *fillTicket
	if t.redis != nil {
		s, ticket := t.tracedRedisGet(ctx, subject)
		if s != nil {
			s.flush = gen
			t.stats.redisHits.Add(1)
			answeredBy(trace.SpanFromContext(ctx), spans.TierRedis, false)
			return s, nil
		}
		fill = ticket
	}
	answeredBy(trace.SpanFromContext(ctx), spans.TierStore, false)
	entries, start, err := t.read(ctx, subject)
	if err != nil {
		return nil, err
	}
	t.stats.storeLoads.Add(1)
	s := &set{entries: entries, loadedAt: start.UnixNano(), flush: gen}
	if fill != nil {
		t.redis.fill(subject, s, fill)
	}
	return s, nil
}

// read reads subject from the decorated lookup, and when the entries were
// current: its AsOf, or (zero: read by this call) the time taken before.
func (t *Tier) read(ctx context.Context, subject string) (_ []policy.Entry, _ time.Time, err error) {
	ctx, span := spans.Start(ctx, t.cfg.tracer, spans.CacheStore)
	defer func() { endSpan(span, err) }()
	start := t.cfg.now()
	l, err := t.inner.LookupEntries(ctx, subject)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !l.AsOf.IsZero() {
		start = l.AsOf
	}
	return l.Entries, start, nil
}

// reload reads a stale set s again from the store. The new set replaces s
// only if s is still cached (no invalidation came in meanwhile); it is
// answered as of its own read either way. If the store fails, s is
// answered as of asOf, its last confirmation, and the checker judges it.
func (t *Tier) reload(ctx context.Context, subject string, s *set, asOf int64) service.Lookup {
	entries, start, err := t.read(ctx, subject)
	if err != nil {
		t.stats.localHits.Add(1)
		answeredBy(trace.SpanFromContext(ctx), spans.TierLocal, true) // the stale copy after all
		return service.Lookup{Entries: s.entries, AsOf: time.Unix(0, asOf)}
	}
	t.stats.storeLoads.Add(1)
	fresh := &set{entries: entries, loadedAt: start.UnixNano(), flush: s.flush}
	t.local.ComputeIfPresent(subject, func(old *set) (*set, otter.ComputeOp) {
		if old != s {
			return old, otter.CancelOp
		}
		return fresh, otter.WriteOp
	})
	return service.Lookup{Entries: fresh.entries, AsOf: start}
}

// Invalidate drops what every replica holds about subjects: the Redis
// values (bumping their generations), this process's copies, then a
// message to the other replicas. It is the change hook of service.Entries
// and service.Sources, called after the change is committed. Redis
// failures are not errors: the reconcilers catch up.
func (t *Tier) Invalidate(subjects ...string) {
	subjects = uniq(subjects)
	if len(subjects) == 0 {
		return
	}
	// Each Redis call has its own timeout, and the first failure ends
	// the Redis part (the breaker then refuses at once).
	ctx := context.Background()
	if t.redis != nil {
		t.redis.invalidate(ctx, subjects)
	}
	t.dropLocal(subjects, &t.stats.invalidatedWrite)
	if t.redis != nil {
		t.redis.publish(ctx, subjects)
	}
}

// dropLocal drops local copies, counting them under c, and marks the
// subjects in the listed filter: a change may have listed them.
func (t *Tier) dropLocal(subjects []string, c *atomic.Uint64) {
	if t.listed != nil {
		t.listed.mark(subjects)
	}
	for _, s := range subjects {
		t.local.Invalidate(s)
	}
	c.Add(uint64(len(subjects)))
}

// flushLocal drops every local copy, including sets being loaded now, and
// the listed filter.
func (t *Tier) flushLocal() {
	if t.listed != nil {
		t.listed.drop()
	}
	t.flushGen.Add(1)
	for k := range t.local.Keys() {
		t.local.Invalidate(k)
	}
	t.stats.flushes.Add(1)
}

func uniq(ss []string) []string {
	if len(ss) < 2 {
		return ss
	}
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return slices.Compact(ss)
}

// Confirmed returns when the cached data was last confirmed current (zero
// before the first reading of the change log).
func (t *Tier) Confirmed() time.Time {
	if c := t.confirmed.Load(); c > 0 {
		return time.Unix(0, c)
	}
	return time.Time{}
}

// ErrNoChangeFeed is returned by ReconcileNow on a tier without a feed.
var ErrNoChangeFeed = errors.New("cache: no change feed")
