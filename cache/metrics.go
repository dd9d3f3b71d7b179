package cache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/credgate/credgate/internal/breaker"
)

// stats are the tier's counters. localHits, bumped on every local hit,
// sits on a cache line of its own so that it does not make the others'
// line bounce between cores.
type stats struct {
	localHits atomic.Uint64
	_         [56]byte
	// listedHits is bumped on every answer of the listed filter, which
	// is every check of a subject on no list: a line of its own too.
	listedHits atomic.Uint64
	_          [56]byte

	redisHits, redisMisses, redisErrors, redisBadValues, redisDistrusted atomic.Uint64
	redisRejected, messagesReceived, messagesRejected                    atomic.Uint64
	storeLoads, errors                                                   atomic.Uint64
	fillsWritten, fillsDropped, publishErrors                            atomic.Uint64
	invalidatedWrite, invalidatedPubSub, invalidatedReconcile            atomic.Uint64
	flushes, reconciles, reconcileErrors                                 atomic.Uint64
	listedBuilds, listedErrors                                           atomic.Uint64
	notices, noticeErrors                                                atomic.Uint64
}

// Stats is a snapshot of the tier's counters.
type Stats struct {
	LocalHits, RedisHits, RedisMisses, StoreLoads, Errors uint64
	// ListedHits: answered clean by the listed filter (no entry names
	// the subject), without a lookup.
	ListedHits uint64
	// RedisRoundTrips by reason: lookup (on a check's path), fill (written
	// behind, batched), invalidate (writes and reconciliation), other.
	RedisRoundTrips map[string]uint64
}

// Stats returns the counters.
func (t *Tier) Stats() Stats {
	s := Stats{
		LocalHits: t.stats.localHits.Load(), RedisHits: t.stats.redisHits.Load(),
		RedisMisses: t.stats.redisMisses.Load(), StoreLoads: t.stats.storeLoads.Load(), Errors: t.stats.errors.Load(),
		ListedHits:      t.stats.listedHits.Load(),
		RedisRoundTrips: map[string]uint64{},
	}
	if t.redis != nil {
		for i, p := range paths {
			s.RedisRoundTrips[p] = t.redis.roundTrips[i].Load()
		}
	}
	return s
}

// Breakers reports the tier's circuit breaker (Redis), for /readyz and
// /metrics; none without Redis.
func (t *Tier) Breakers() map[string]string {
	if t.redis == nil {
		return nil
	}
	return map[string]string{"redis": breaker.StateName(t.redis.cb.State())}
}

// Status is the tier's state as /readyz shows it.
type Status struct {
	// Redis is ok, down or disabled.
	Redis string `json:"redis"`
	// Invalidation is pubsub (subscribed, and Redis answering with its
	// breaker closed) or reconcile_only.
	Invalidation string `json:"invalidation"`
	// StoreReachable: the last reading of the change log succeeded.
	StoreReachable bool `json:"store_reachable"`
	// ConfirmedAt: the cached data is current as of this time.
	ConfirmedAt   *time.Time `json:"confirmed_at,omitempty"`
	LocalSubjects int        `json:"local_subjects"`
	MaxStaleness  string     `json:"max_staleness"`
	// ListedFilter is ready, building, off (the store names more
	// subjects than it holds) or disabled.
	ListedFilter string `json:"listed_filter"`
	// ChangeNotices is listening (the store tells the tier when its
	// change log grows), down (reading it every reconcile interval until
	// listening again) or disabled.
	ChangeNotices string `json:"change_notices"`
}

// Status reports the tier's state for /readyz. It informs, it does not
// decide readiness: the tier answers without Redis, and from cache without
// the store, within the staleness bound.
func (t *Tier) Status(context.Context) any {
	st := Status{Redis: "disabled", Invalidation: "reconcile_only", StoreReachable: !t.storeDown.Load(),
		LocalSubjects: t.local.EstimatedSize(), MaxStaleness: t.cfg.maxStaleness.String(), ListedFilter: "disabled",
		ChangeNotices: t.noticeState()}
	if t.listed != nil {
		st.ListedFilter, _ = t.listed.state()
	}
	if c := t.Confirmed(); !c.IsZero() {
		c = c.UTC()
		st.ConfirmedAt = &c
	}
	if t.redis != nil {
		st.Redis = "down"
		if t.redis.up.Load() {
			st.Redis = "ok"
		}
		// A subscription shows no error while Redis is frozen or cut off
		// without a reset: messages count only while Redis answers.
		if t.redis.subscribed.Load() && t.redis.up.Load() && t.redis.cb.State() == gobreaker.StateClosed {
			st.Invalidation = "pubsub"
		}
	}
	return st
}

// Collector exposes the tier's counters to Prometheus.
func (t *Tier) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Tier }

var (
	descLookups = prometheus.NewDesc("credgate_cache_lookups_total",
		"Cache lookups by where they were answered: local (in-process hit), listed (the listed filter: no entry names the subject; screening batches' subjects included), redis (shared tier), store (read from the database), error.",
		[]string{"result"}, nil)
	descRoundTrips = prometheus.NewDesc("credgate_cache_redis_roundtrips_total",
		"Redis round trips (a command or a pipeline) by reason: lookup (on a check's path), fill (written behind), invalidate, other.",
		[]string{"path"}, nil)
	descInvalidations = prometheus.NewDesc("credgate_cache_invalidations_total",
		"Subjects dropped from the local tier, by what told it: write (this replica changed them), pubsub, reconcile.",
		[]string{"via"}, nil)
	descRedisValues = prometheus.NewDesc("credgate_cache_redis_values_total",
		"Redis values by fate: miss, written, dropped (fill queue full or Redis failing), rejected (does not open under this replica's secret: forged, altered, moved to another key, or written under another secret or by an older release), bad (malformed), distrusted (read from the store before the trust mark, or older than cache.redis_ttl).",
		[]string{"fate"}, nil)
	descMessages = prometheus.NewDesc("credgate_cache_pubsub_messages_total",
		"Invalidation messages received from other replicas, by result: ok, or rejected (does not open under this replica's secret: from an older release, a replica with another secret, or forged; the change log is read at once instead).",
		[]string{"result"}, nil)
	descFlushes = prometheus.NewDesc("credgate_cache_flushes_total",
		"Times the whole local tier was dropped (lost or pruned change log, first cursor).", nil, nil)
	descReconciles = prometheus.NewDesc("credgate_cache_reconciles_total",
		"Readings of the change log, by result.", []string{"result"}, nil)
	descConfirmed = prometheus.NewDesc("credgate_cache_confirmed_timestamp_seconds",
		"When the cached data was last confirmed current (the last good reading of the change log).", nil, nil)
	descSubjects = prometheus.NewDesc("credgate_cache_local_subjects",
		"Subjects held in the local tier (estimate).", nil, nil)
	descListed = prometheus.NewDesc("credgate_cache_listed_filter_subjects",
		"Distinct subjects in the listed filter (estimated: a subject it already seemed to hold, a false positive, is not counted again); absent while it is not ready.", nil, nil)
	descListedBuilds = prometheus.NewDesc("credgate_cache_listed_filter_builds_total",
		"Readings of the listed subjects, by result.", []string{"result"}, nil)
	descNotices = prometheus.NewDesc("credgate_cache_change_notices_total",
		"Notices from the store that its change log grew, each followed by a reading (one more each time a watch begins), and watches that failed (result error).",
		[]string{"result"}, nil)
	descRedisUp = prometheus.NewDesc("credgate_cache_redis_up",
		"1 if Redis answered the last health check.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLookups, descRoundTrips, descInvalidations, descRedisValues, descMessages,
		descFlushes, descReconciles, descConfirmed, descSubjects, descRedisUp, descListed, descListedBuilds, descNotices} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.t.stats
	counter := func(d *prometheus.Desc, v *atomic.Uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	counter(descLookups, &s.localHits, "local")
	counter(descLookups, &s.listedHits, "listed")
	counter(descLookups, &s.redisHits, "redis")
	counter(descLookups, &s.storeLoads, "store")
	counter(descLookups, &s.errors, "error")
	counter(descInvalidations, &s.invalidatedWrite, "write")
	counter(descInvalidations, &s.invalidatedPubSub, "pubsub")
	counter(descInvalidations, &s.invalidatedReconcile, "reconcile")
	counter(descRedisValues, &s.redisMisses, "miss")
	counter(descRedisValues, &s.fillsWritten, "written")
	counter(descRedisValues, &s.fillsDropped, "dropped")
	counter(descRedisValues, &s.redisBadValues, "bad")
	counter(descRedisValues, &s.redisDistrusted, "distrusted")
	counter(descRedisValues, &s.redisRejected, "rejected")
	counter(descMessages, &s.messagesReceived, "ok")
	counter(descMessages, &s.messagesRejected, "rejected")
	counter(descFlushes, &s.flushes)
	counter(descReconciles, &s.reconciles, "ok")
	counter(descReconciles, &s.reconcileErrors, "error")
	counter(descNotices, &s.notices, "ok")
	counter(descNotices, &s.noticeErrors, "error")
	if r := c.t.redis; r != nil {
		for i, p := range paths {
			counter(descRoundTrips, &r.roundTrips[i], p)
		}
		up := 0.0
		if r.up.Load() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descRedisUp, prometheus.GaugeValue, up)
	}
	if conf := c.t.confirmed.Load(); conf > 0 {
		ch <- prometheus.MustNewConstMetric(descConfirmed, prometheus.GaugeValue, float64(conf)/1e9)
	}
	ch <- prometheus.MustNewConstMetric(descSubjects, prometheus.GaugeValue, float64(c.t.local.EstimatedSize()))
	if f := c.t.listed; f != nil {
		counter(descListedBuilds, &s.listedBuilds, "ok")
		counter(descListedBuilds, &s.listedErrors, "error")
		if state, held := f.state(); state == "ready" {
			ch <- prometheus.MustNewConstMetric(descListed, prometheus.GaugeValue, float64(held))
		}
	}
}
