package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// serveScreenings runs screening jobs in this server, with their files in
// the data dir's screenings/ (each job runs where it was submitted: with
// replicas, the one that accepted it), resuming those left unfinished;
// they stop with ctx. A finished job's files are deleted after retention.
// Each batch's subjects that the cache's listed filter knows no entry
// names are not read from the store (tier.BatchLookup).
func serveScreenings(ctx context.Context, checker *service.Checker, st service.ScreeningStore, tier *cache.Tier, dataDir string, retention time.Duration) gateway.Option {
	opts := []service.ScreeningsOption{service.WithScreeningsRetention(retention)}
	if bl, ok := st.(service.EntryBatchLookup); ok {
		opts = append(opts, service.WithScreeningsLookup(tier.BatchLookup(bl)))
	}
	sc := service.NewScreenings(checker, st, filepath.Join(dataDir, "screenings"), opts...)
	go sc.Run(ctx)
	return gateway.WithScreenings(sc)
}
