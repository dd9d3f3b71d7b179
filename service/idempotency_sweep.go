package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// IdempotencyPruner deletes the mappings of idempotency keys no lookup
// reads any more (both stores: adapters/internal/sqlcommon/idempotency.go).
type IdempotencyPruner interface {
	// PruneIdempotencyKeys deletes at most limit mappings checked before
	// before, the oldest first, in one short statement, and returns how
	// many it deleted. Sweeps running at once on several replicas delete
	// different rows, neither waiting for nor failing on the other.
	PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error)
}

// PruneIdempotencyKeys is the store's, bounded like every statement of a
// request.
func (b *BoundedStore) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	p, ok := b.Store.(IdempotencyPruner)
	if !ok {
		return 0, nil // the store keeps no idempotency keys
	}
	return bounded(ctx, b, func(ctx context.Context) (int64, error) {
		return p.PruneIdempotencyKeys(ctx, before, limit)
	})
}

var _ IdempotencyPruner = (*BoundedStore)(nil)

// Defaults of the idempotency keys' sweep.
const (
	// IdempotencyKeyRetention is how old a key's mapping is when the
	// sweep deletes it: the key's lifetime (no lookup reads it after) and
	// an hour for the clocks of replicas that disagree.
	IdempotencyKeyRetention = IdempotencyKeyLifetime + time.Hour
	// DefaultIdempotencySweepInterval is how often each replica sweeps.
	DefaultIdempotencySweepInterval = 5 * time.Minute
	// DefaultIdempotencySweepBatch is how many rows one statement deletes:
	// a few milliseconds of the database's time, so that no append waits
	// long behind it.
	DefaultIdempotencySweepBatch = 1000
	// idempotencySweepPause separates two statements of a sweep that has
	// more to delete, so that appends (SQLite's one writer) go between.
	idempotencySweepPause = 20 * time.Millisecond
)

// IdempotencySweeper deletes the idempotency keys' mappings older than
// IdempotencyKeyRetention (check_idempotency): without it the table grew
// by a row per keyed check for ever, though nothing reads a row after the
// key's lifetime. Every replica runs one (serve): a sweep is one index
// probe when there is nothing to delete, and sweeps running at once delete
// different rows.
type IdempotencySweeper struct {
	store    IdempotencyPruner
	now      func() time.Time
	interval time.Duration
	batch    int
	pause    time.Duration
	logger   *slog.Logger
	pruned   func(n int64)
}

// IdempotencySweeperOption configures an IdempotencySweeper.
type IdempotencySweeperOption func(*IdempotencySweeper)

// WithIdempotencySweepInterval sets how often Run sweeps (d > 0).
func WithIdempotencySweepInterval(d time.Duration) IdempotencySweeperOption {
	return func(s *IdempotencySweeper) {
		if d > 0 {
			s.interval = d
		}
	}
}

// WithIdempotencySweepBatch sets how many rows one statement deletes (n > 0).
func WithIdempotencySweepBatch(n int) IdempotencySweeperOption {
	return func(s *IdempotencySweeper) {
		if n > 0 {
			s.batch = n
		}
	}
}

// WithIdempotencySweepClock sets the sweep's clock.
func WithIdempotencySweepClock(now func() time.Time) IdempotencySweeperOption {
	return func(s *IdempotencySweeper) { s.now = now }
}

// WithIdempotencySweepLogger sets where failed sweeps are logged.
func WithIdempotencySweepLogger(l *slog.Logger) IdempotencySweeperOption {
	return func(s *IdempotencySweeper) { s.logger = l }
}

// WithIdempotencyPruned has f told how many rows each statement of a
// sweep deleted (a metric).
func WithIdempotencyPruned(f func(n int64)) IdempotencySweeperOption {
	return func(s *IdempotencySweeper) { s.pruned = f }
}

// NewIdempotencySweeper sweeps store's idempotency keys.
func NewIdempotencySweeper(store IdempotencyPruner, opts ...IdempotencySweeperOption) *IdempotencySweeper {
	s := &IdempotencySweeper{store: store, now: time.Now, interval: DefaultIdempotencySweepInterval,
		batch: DefaultIdempotencySweepBatch, pause: idempotencySweepPause, logger: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sweep deletes every mapping older than IdempotencyKeyRetention, a batch
// per statement until one deletes fewer, and returns how many it deleted.
// It stops when ctx ends.
func (s *IdempotencySweeper) Sweep(ctx context.Context) (int64, error) {
	before := s.now().Add(-IdempotencyKeyRetention)
	var total int64
	for {
		n, err := s.store.PruneIdempotencyKeys(ctx, before, s.batch)
		if n > 0 {
			total += n
			if s.pruned != nil {
				s.pruned(n)
			}
		}
		if err != nil {
			return total, fmt.Errorf("prune idempotency keys: %w", err)
		}
		if n < int64(s.batch) {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(s.pause):
		}
	}
}

// Run sweeps at once and then every interval (each wait a tenth longer or
// shorter at random, so that replicas started together do not sweep
// together), until ctx ends. A failed sweep is logged and tried again at
// the next.
func (s *IdempotencySweeper) Run(ctx context.Context) {
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "idempotency keys sweep failed", "error", err)
		}
		jitter := time.Duration(rand.Int64N(int64(s.interval)/5+1)) - s.interval/10
		t := time.NewTimer(s.interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
