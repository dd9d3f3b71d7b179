package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/service"
)

// screeningsDir is where screening jobs' files are: store.screenings_dir,
// or <store.data_dir>/screenings.
func screeningsDir(c config.Store) string {
	if c.ScreeningsDir != "" {
		return c.ScreeningsDir
	}
	return filepath.Join(c.DataDir, "screenings")
}

// startScreenings runs screening jobs in this server, with their files in
// screeningsDir, resuming those left unfinished; they stop with ctx.
// Replicas sharing a database claim each job's lease before they run it,
// so any of them runs it once, and any serves its results, if they share
// the directory (a replica that does not have a job's files leaves it and
// warns). Each partner has at most store.screenings_max_unfinished jobs
// unfinished. A finished job's files are deleted after
// store.screening_retention. Each batch's subjects that the cache's
// listed filter knows no entry names are not read from the store
// (tier.BatchLookup).
func startScreenings(ctx context.Context, checker *service.Checker, st service.ScreeningStore, tier *cache.Tier, c config.Store, logger *slog.Logger) gateway.Option {
	sc := newScreenings(checker, st, tier, c, logger)
	go sc.Run(ctx)
	return gateway.WithScreenings(sc)
}

// newScreenings is the screening service as c configures it.
func newScreenings(checker *service.Checker, st service.ScreeningStore, tier *cache.Tier, c config.Store, logger *slog.Logger) *service.Screenings {
	opts := []service.ScreeningsOption{service.WithScreeningsRetention(c.ScreeningRetention),
		service.WithScreeningsMaxUnfinished(c.ScreeningsMaxUnfinished), service.WithScreeningsLogger(logger)}
	if bl, ok := st.(service.EntryBatchLookup); ok {
		opts = append(opts, service.WithScreeningsLookup(tier.BatchLookup(bl)))
	}
	return service.NewScreenings(checker, st, screeningsDir(c), opts...)
}
