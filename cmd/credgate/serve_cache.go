package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// cacheConfig configures the cache tier in front of the entry store and
// the upstream sources that feed it.
type cacheConfig struct {
	redisPrefix  string
	maxSubjects  int
	maxStaleness time.Duration
	reconcile    time.Duration
	redisTTL     time.Duration
	sourcesFile  string
}

func (c *cacheConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.redisPrefix, "redis-prefix", envOr("CREDGATE_REDIS_PREFIX", cache.DefaultPrefix),
		"prefix of the cache tier's Redis keys and channel; replicas of one deployment share it (env CREDGATE_REDIS_PREFIX)")
	fs.IntVar(&c.maxSubjects, "cache-subjects", cache.DefaultMaxSubjects, "subjects the in-process cache holds")
	fs.DurationVar(&c.maxStaleness, "max-staleness", envDuration("CREDGATE_MAX_STALENESS", cache.DefaultMaxStaleness),
		"staleness bound: an answer resting on entry data older than this is unverifiable (env CREDGATE_MAX_STALENESS)")
	fs.DurationVar(&c.reconcile, "cache-reconcile", envDuration("CREDGATE_CACHE_RECONCILE", cache.DefaultReconcile),
		"how often the store's change log is read: the bound on a change whose invalidation message was lost (env CREDGATE_CACHE_RECONCILE)")
	fs.DurationVar(&c.redisTTL, "cache-redis-ttl", cache.DefaultRedisTTL, "expiry of the cache tier's Redis values")
	fs.StringVar(&c.sourcesFile, "sources", os.Getenv("CREDGATE_SOURCES"),
		"JSON file of upstream sources (data feeds, platform APIs) to keep current (env CREDGATE_SOURCES)")
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// cacheWiring is the cache tier and the sources, ready to be wired.
type cacheWiring struct {
	tier   *cache.Tier
	runner *upstream.Runner // nil without sources
	// checker, entries and gateway are the options that wire them in.
	checker []service.CheckerOption
	entries []service.EntriesOption
	gateway []gateway.Option
}

// close stops the runner, then the tier.
func (w *cacheWiring) close() {
	if w.runner != nil {
		w.runner.Close()
	}
	w.tier.Close()
}

// start builds and starts the cache tier over st (with Redis through rdb,
// serve's one client, if set) and the sources of the sources file, if any.
func (c *cacheConfig) start(ctx context.Context, st store, cat *policy.Catalog, rdb *redis.Client, logger *slog.Logger) (*cacheWiring, error) {
	// Sets are confirmed every reconcile; one older than half the bound is
	// read again, which a slower reconciler would make every hit do.
	if c.reconcile >= c.maxStaleness/2 {
		return nil, fmt.Errorf("--cache-reconcile (%s) must be less than half of --max-staleness (%s)", c.reconcile, c.maxStaleness)
	}
	opts := []cache.Option{cache.WithMaxSubjects(c.maxSubjects), cache.WithMaxStaleness(c.maxStaleness),
		cache.WithReconcileInterval(c.reconcile), cache.WithRedisTTL(c.redisTTL), cache.WithPrefix(c.redisPrefix),
		cache.WithLogger(logger)}
	if rdb != nil {
		opts = append(opts, cache.WithRedisClient(rdb))
	}
	// The tier decorates the store's entry reading and reconciles from its
	// change log.
	tier, err := cache.New(st, st, opts...)
	if err != nil {
		return nil, err
	}
	w := &cacheWiring{tier: tier}
	w.checker = append(w.checker, service.WithMaxStaleness(c.maxStaleness))
	// Every entry change (API, lifecycle) invalidates every replica's copies.
	w.entries = append(w.entries, service.WithChangeHook(tier.Invalidate))
	w.gateway = append(w.gateway, gateway.WithBreakers(tier), gateway.WithStatus("cache", tier),
		gateway.WithCollectors(tier.Collector()))
	if c.sourcesFile != "" {
		if err := c.startSources(st, cat, tier, logger, w); err != nil {
			return nil, err
		}
	}
	tier.Start(ctx)
	if w.runner != nil {
		w.runner.Start(ctx)
	}
	logger.Info("cache tier", "redis", rdb != nil, "prefix", c.redisPrefix, "max_staleness", c.maxStaleness.String(),
		"reconcile", c.reconcile.String(), "sources", c.sourcesFile != "")
	return w, nil
}

func (c *cacheConfig) startSources(st service.SourceStore, cat *policy.Catalog, tier *cache.Tier, logger *slog.Logger, w *cacheWiring) error {
	f, err := os.Open(c.sourcesFile)
	if err != nil {
		return fmt.Errorf("sources: %w", err)
	}
	defer f.Close()
	cfgs, err := upstream.LoadConfig(f, os.Getenv)
	if err != nil {
		return fmt.Errorf("sources %s: %w", c.sourcesFile, err)
	}
	sources := service.NewSources(st, cat, service.WithSourcesChangeHook(tier.Invalidate))
	for _, sc := range cfgs {
		if err := sources.ValidateSource(sc.Name, sc.Lists); err != nil {
			return fmt.Errorf("sources %s: %w", c.sourcesFile, err)
		}
	}
	runner, err := upstream.NewRunner(sources, cfgs, upstream.WithRunnerLogger(logger))
	if err != nil {
		return err
	}
	w.runner = runner
	w.checker = append(w.checker, service.WithSources(runner))
	w.gateway = append(w.gateway, gateway.WithBreakers(runner), gateway.WithStatus("sources", runner),
		gateway.WithCollectors(runner.Collector()))
	return nil
}
