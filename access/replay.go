package access

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultReplayCapacity bounds the in-memory replay set. Only partners'
// validly signed assertions get in, so reaching it takes a misbehaving
// partner; otter then evicts the least useful entries, which at worst
// reopens replay of some assertion within its few minutes of life.
const DefaultReplayCapacity = 1_000_000

// SharedReplay remembers keys across replicas (in credgate, Redis SET NX
// through the rate limiter's circuit breaker).
type SharedReplay interface {
	// FirstUse reports whether key is new, remembering it for ttl. An
	// error means the shared set did not answer.
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// ReplaySet makes client assertions single-use: it remembers each jti
// until the assertion expires, in this replica's memory and, when shared,
// across replicas, so a replay on another replica is caught too.
type ReplaySet struct {
	local  *otter.Cache[string, time.Time]
	shared SharedReplay
}

// ReplayOption configures a ReplaySet.
type ReplayOption func(*replayConfig)

type replayConfig struct {
	capacity int
	shared   SharedReplay
}

// WithReplayCapacity bounds the keys held in memory (default
// DefaultReplayCapacity).
func WithReplayCapacity(n int) ReplayOption {
	return func(c *replayConfig) {
		if n > 0 {
			c.capacity = n
		}
	}
}

// WithSharedReplay also remembers keys in s. While s does not answer, each
// replica remembers alone.
func WithSharedReplay(s SharedReplay) ReplayOption {
	return func(c *replayConfig) { c.shared = s }
}

// NewReplaySet returns an empty replay set.
func NewReplaySet(opts ...ReplayOption) *ReplaySet {
	cfg := replayConfig{capacity: DefaultReplayCapacity}
	for _, o := range opts {
		o(&cfg)
	}
	return &ReplaySet{
		shared: cfg.shared,
		local: otter.Must(&otter.Options[string, time.Time]{
			MaximumSize: cfg.capacity,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, time.Time]) time.Duration {
				return time.Until(e.Value)
			}),
		}),
	}
}

// FirstUse reports whether key (a client assertion's client id and jti) is
// used for the first time; it is remembered until until (at least a
// second).
func (r *ReplaySet) FirstUse(ctx context.Context, key string, until time.Time) bool {
	if least := time.Now().Add(time.Second); until.Before(least) {
		until = least
	}
	if _, fresh := r.local.SetIfAbsent(key, until); !fresh {
		return false
	}
	if r.shared == nil {
		return true
	}
	first, err := r.shared.FirstUse(ctx, key, time.Until(until))
	if err != nil {
		// Availability wins: this replica's memory still refuses replays
		// sent to it.
		return true
	}
	return first
}
