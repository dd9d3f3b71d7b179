package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// loadSources reads the upstream sources file (upstream.sources) and
// checks every source against the catalogue, before anything is written;
// nil without a file.
func loadSources(path string, cat *policy.Catalog) ([]upstream.SourceConfig, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("upstream.sources: %w", err)
	}
	defer f.Close()
	cfgs, err := upstream.LoadConfig(f, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("upstream.sources %s: %w", path, err)
	}
	check := service.NewSources(nil, cat) // validation reads only the catalogue
	for _, sc := range cfgs {
		if err := check.ValidateSource(sc.Name, sc.Lists); err != nil {
			return nil, fmt.Errorf("upstream.sources %s: %w", path, err)
		}
	}
	return cfgs, nil
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

// cacheRedisSecret is the secret under which the cache tier names, seals
// and authenticates what it keeps in Redis (cache.WithRedisSecret), derived
// from the token key's seed (HKDF-SHA256, a label of its own). Every
// replica of a deployment has the token key — the tokens one signs must
// verify on the others, so the Kubernetes and compose topologies mount the
// same key into each — and must keep it secret, so the replicas share the
// cache's secret without another one to distribute, and someone who can
// read Redis but not the key can neither read nor forge the cache's values.
// Neither key can be worked back from the other. A new token key (a
// rotation) is a new secret: while replicas run with both, each reads the
// other's values as misses and its messages as lost, and the change log
// keeps them right.
func cacheRedisSecret(tokenKey ed25519.PrivateKey) ([]byte, error) {
	if len(tokenKey) != ed25519.PrivateKeySize {
		return nil, errors.New("cache: no token key to derive the Redis secret from")
	}
	return hkdf.Key(sha256.New, tokenKey.Seed(), nil, "credgate cache redis secret v1", cache.MinRedisSecret)
}

// startCache builds and starts the cache tier over st (with Redis through
// rdb, serve's one client, if set, under a secret derived from tokenKey)
// and the runner of the sources, if any. The settings are validated by
// internal/config, the reconcile interval against the staleness bound
// included.
func startCache(ctx context.Context, c config.Cache, st store, cat *policy.Catalog, sources []upstream.SourceConfig, rdb *redis.Client, tokenKey ed25519.PrivateKey, logger *slog.Logger, extra ...cache.Option) (*cacheWiring, error) {
	opts := []cache.Option{cache.WithMaxSubjects(c.Subjects), cache.WithMaxStaleness(c.MaxStaleness),
		cache.WithReconcileInterval(c.Reconcile), cache.WithRedisTTL(c.RedisTTL), cache.WithPrefix(c.Prefix),
		cache.WithLogger(logger), cache.WithChangeNotices(st)}
	if c.ListedFilter > 0 {
		opts = append(opts, cache.WithListedFilter(st, c.ListedFilter))
	}
	opts = append(opts, extra...)
	if rdb != nil {
		secret, err := cacheRedisSecret(tokenKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, cache.WithRedisClient(rdb), cache.WithRedisSecret(secret))
	}
	// The tier decorates the store's entry reading and reconciles from its
	// change log.
	tier, err := cache.New(st, st, opts...)
	if err != nil {
		return nil, err
	}
	w := &cacheWiring{tier: tier}
	w.checker = append(w.checker, service.WithMaxStaleness(c.MaxStaleness))
	// Every entry change (API, lifecycle) invalidates every replica's copies.
	w.entries = append(w.entries, service.WithChangeHook(tier.Invalidate))
	w.gateway = append(w.gateway, gateway.WithBreakers(tier), gateway.WithStatus("cache", tier),
		gateway.WithCollectors(tier.Collector()))
	if len(sources) > 0 {
		svc := service.NewSources(st, cat, service.WithSourcesChangeHook(tier.Invalidate))
		runner, err := upstream.NewRunner(svc, sources, upstream.WithRunnerLogger(logger))
		if err != nil {
			tier.Close()
			return nil, fmt.Errorf("upstream.sources: %w", err)
		}
		w.runner = runner
		w.checker = append(w.checker, service.WithSources(runner))
		w.gateway = append(w.gateway, gateway.WithBreakers(runner), gateway.WithStatus("sources", runner),
			gateway.WithCollectors(runner.Collector()))
	}
	tier.Start(ctx)
	if w.runner != nil {
		w.runner.Start(ctx)
	}
	logger.Info("cache tier", "redis", rdb != nil, "prefix", c.Prefix, "max_staleness", c.MaxStaleness.String(),
		"reconcile", c.Reconcile.String(), "listed_filter", c.ListedFilter, "sources", len(sources))
	return w, nil
}
