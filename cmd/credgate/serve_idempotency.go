package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// startIdempotencySweep deletes, on this replica as on every other, the
// idempotency keys' mappings no lookup reads any more
// (service.IdempotencySweeper), and counts them in
// credgate_idempotency_keys_pruned_total. stop ends the sweep and waits
// for it, before the store closes.
func startIdempotencySweep(ctx context.Context, st any, logger *slog.Logger,
	opts ...service.IdempotencySweeperOption) (_ gateway.Option, stop func()) {
	pruned := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "credgate_idempotency_keys_pruned_total",
		Help: "Idempotency keys' mappings (check_idempotency rows) this replica deleted once past the keys' lifetime.",
	})
	p, ok := st.(service.IdempotencyPruner)
	if !ok {
		return gateway.WithCollectors(pruned), func() {}
	}
	return gateway.WithCollectors(pruned), runIdempotencySweep(ctx, p, pruned, logger, opts...)
}

// runIdempotencySweep runs the sweep of p, counting in pruned, until stop
// is called or ctx ends; stop waits for it to end.
func runIdempotencySweep(ctx context.Context, p service.IdempotencyPruner, pruned prometheus.Counter, logger *slog.Logger,
	opts ...service.IdempotencySweeperOption) (stop func()) {
	opts = append([]service.IdempotencySweeperOption{service.WithIdempotencySweepLogger(logger),
		service.WithIdempotencyPruned(func(n int64) { pruned.Add(float64(n)) })}, opts...)
	sweeper := service.NewIdempotencySweeper(p, opts...)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sweeper.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
