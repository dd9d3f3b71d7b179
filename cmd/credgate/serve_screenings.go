package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// serveScreenings runs screening jobs in this server, with their files in
// the data dir's screenings/ (each job runs where it was submitted: with
// replicas, the one that accepted it), resuming those left unfinished;
// they stop with ctx. A finished job's files are deleted after retention.
func serveScreenings(ctx context.Context, checker *service.Checker, st service.ScreeningStore, dataDir string, retention time.Duration) gateway.Option {
	opts := []service.ScreeningsOption{service.WithScreeningsRetention(retention)}
	if bl, ok := st.(service.EntryBatchLookup); ok {
		opts = append(opts, service.WithScreeningsLookup(bl))
	}
	sc := service.NewScreenings(checker, st, filepath.Join(dataDir, "screenings"), opts...)
	go sc.Run(ctx)
	return gateway.WithScreenings(sc)
}
