package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/credgate/credgate/internal/breaker"
	"github.com/credgate/credgate/service"
)

// Applier is what the runner needs of service.Sources.
type Applier interface {
	Prepare(snap service.SourceSnapshot) (service.SourceApply, error)
	Commit(ctx context.Context, apply service.SourceApply) (service.SourceApplied, error)
	RecordFailure(ctx context.Context, name string, err error)
	State(ctx context.Context, name string) (service.SourceState, error)
}

// Defaults of a source's schedule and resilience.
const (
	DefaultInterval        = 10 * time.Minute
	DefaultMaxAge          = 24 * time.Hour
	DefaultTimeout         = 30 * time.Second
	DefaultRetries         = 2
	DefaultBackoff         = time.Second
	DefaultBreakerFailures = 3
	DefaultBreakerOpenFor  = time.Minute
	// MaxRetries bounds retries whatever the configuration says.
	MaxRetries = 10
)

// SourceConfig is one source the runner keeps current.
type SourceConfig struct {
	Name   string
	Lists  []string
	Source Source
	// Interval between syncs (default 10 min).
	Interval time.Duration
	// MaxAge bounds how old the last good snapshot may be for answers to
	// rest on it (default 24 h); past it they are unverifiable.
	MaxAge time.Duration
	// Timeout of one attempt (default 30 s).
	Timeout time.Duration
	// Retries after a transient failure (at most MaxRetries), waiting
	// Backoff (default 1 s), doubled each time, with jitter.
	Retries int
	Backoff time.Duration
	// The breaker opens after BreakerFailures consecutive failed attempts
	// and stays open for BreakerOpenFor, then lets one attempt probe.
	BreakerFailures uint32
	BreakerOpenFor  time.Duration
}

// Runner keeps upstream sources current and reports their freshness to the
// checker (service.SourceMonitor), their breakers to /readyz and /metrics.
type Runner struct {
	app     Applier
	sources []*runSource
	logger  *slog.Logger
	now     func() time.Time

	fresh atomic.Pointer[[]service.SourceFreshness]
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner)

// WithRunnerLogger sets the logger (default slog.Default()).
func WithRunnerLogger(l *slog.Logger) RunnerOption { return func(r *Runner) { r.logger = l } }

// WithRunnerClock sets the clock (tests).
func WithRunnerClock(now func() time.Time) RunnerOption { return func(r *Runner) { r.now = now } }

type runSource struct {
	cfg SourceConfig
	cb  *gobreaker.CircuitBreaker[service.SourceApply]

	mu          sync.Mutex
	syncedAt    time.Time
	revision    string
	entries     int
	lastError   string
	lastErrorAt time.Time

	syncs    [4]atomic.Uint64 // by syncResults index
	attempts [3]atomic.Uint64 // by attemptResults index
}

var (
	syncResults    = []string{"applied", "unchanged", "rejected", "failed"}
	attemptResults = []string{"ok", "failed", "refused_open"}
)

// NewRunner returns a runner for the sources; Start runs it.
func NewRunner(app Applier, cfgs []SourceConfig, opts ...RunnerOption) (*Runner, error) {
	r := &Runner{app: app, logger: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	names := map[string]bool{}
	for _, c := range cfgs {
		if c.Source == nil {
			return nil, fmt.Errorf("upstream: source %q has nothing to fetch from", c.Name)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("upstream: source %q configured twice", c.Name)
		}
		names[c.Name] = true
		c.Interval = orDefault(c.Interval, DefaultInterval)
		c.MaxAge = orDefault(c.MaxAge, DefaultMaxAge)
		c.Timeout = orDefault(c.Timeout, DefaultTimeout)
		c.Backoff = orDefault(c.Backoff, DefaultBackoff)
		c.BreakerOpenFor = orDefault(c.BreakerOpenFor, DefaultBreakerOpenFor)
		if c.BreakerFailures == 0 {
			c.BreakerFailures = DefaultBreakerFailures
		}
		if c.Retries < 0 {
			c.Retries = 0
		}
		c.Retries = min(c.Retries, MaxRetries)
		if c.MaxAge <= c.Interval {
			return nil, fmt.Errorf("upstream: source %q: max_age (%s) must exceed the interval (%s), or its answers go stale between syncs",
				c.Name, c.MaxAge, c.Interval)
		}
		s := &runSource{cfg: c}
		s.cb = gobreaker.NewCircuitBreaker[service.SourceApply](gobreaker.Settings{
			Name:        "source:" + c.Name,
			MaxRequests: 1,
			Timeout:     c.BreakerOpenFor,
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= c.BreakerFailures },
			IsExcluded:  func(err error) bool { return errors.Is(err, context.Canceled) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				r.logger.Warn("upstream: circuit breaker", "breaker", name, "from", breaker.StateName(from), "to", breaker.StateName(to))
			},
		})
		r.sources = append(r.sources, s)
	}
	r.publish()
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Start reads each source's last good snapshot time from the store (so
// that a restart does not forget it), then syncs every source now and
// every interval after, until Close.
func (r *Runner) Start(ctx context.Context) {
	ctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range r.sources {
		r.adoptStored(ctx, s)
	}
	r.publish()
	for _, s := range r.sources {
		r.wg.Go(func() { r.loop(ctx, s) })
	}
}

// Close stops syncing and waits for syncs in flight.
func (r *Runner) Close() {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
}

func (r *Runner) loop(ctx context.Context, s *runSource) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = r.sync(ctx, s)
		// ±10% jitter, so that replicas do not all call at once.
		d := s.cfg.Interval
		t.Reset(d - d/10 + rand.N(d/5+1))
	}
}

// SyncNow syncs the named source once, waiting for the result.
func (r *Runner) SyncNow(ctx context.Context, name string) error {
	for _, s := range r.sources {
		if s.cfg.Name == name {
			return r.sync(ctx, s)
		}
	}
	return fmt.Errorf("upstream: no source %q", name)
}

// sync fetches, validates and applies one snapshot.
func (r *Runner) sync(ctx context.Context, s *runSource) error {
	// Microseconds, as the store keeps it: memory and store agree.
	started := r.now().UTC().Truncate(time.Microsecond)
	apply, err := r.fetch(ctx, s, started)
	// A refusal of the open breaker says nothing new: the error that
	// opened it stays the last error, here and in the store, so that
	// /readyz shows why the source fails (the breaker's state is shown
	// beside it).
	refused := errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
	if err == nil {
		var res service.SourceApplied
		if res, err = r.app.Commit(ctx, apply); err == nil {
			r.succeeded(ctx, s, started, apply.Revision, res)
			return nil
		}
	} else if !refused {
		r.app.RecordFailure(ctx, s.cfg.Name, err)
	}
	result := 3 // failed
	var se *service.SnapshotError
	if errors.As(err, &se) || errors.Is(err, ErrMalformed) || errors.Is(err, service.ErrSnapshotTooLarge) {
		result = 2 // rejected
	}
	s.syncs[result].Add(1)
	if !refused {
		s.mu.Lock()
		s.lastError, s.lastErrorAt = err.Error(), r.now().UTC()
		s.mu.Unlock()
	}
	r.logger.Warn("upstream: sync failed; the last good snapshot stays in force", "source", s.cfg.Name, "err", err)
	// Another replica may have synced meanwhile: answers here rest on
	// what the store holds, as fresh as that replica made it.
	r.adoptStored(ctx, s)
	r.publish()
	return err
}

// fetch runs attempts through the breaker, each bounded by the timeout,
// retrying transient failures with backoff. Validation is part of the
// attempt: a payload that does not validate is a failure of the upstream.
func (r *Runner) fetch(ctx context.Context, s *runSource, started time.Time) (service.SourceApply, error) {
	backoff := s.cfg.Backoff
	var failed error // the last attempt's failure
	for attempt := 0; ; attempt++ {
		apply, err := s.cb.Execute(func() (service.SourceApply, error) {
			actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			defer cancel()
			items, err := s.cfg.Source.Fetch(actx)
			if err != nil {
				if actx.Err() != nil && ctx.Err() == nil && !errors.Is(err, ErrTransient) {
					err = fmt.Errorf("%w: %w", ErrTransient, err)
				}
				return service.SourceApply{}, err
			}
			return r.app.Prepare(service.SourceSnapshot{Source: s.cfg.Name, Lists: s.cfg.Lists, Items: items, FetchedAt: started})
		})
		var se *service.SnapshotError
		if errors.As(err, &se) && se.Source == "" {
			se.Source = s.cfg.Name
		}
		switch {
		case err == nil:
			s.attempts[0].Add(1)
			return apply, nil
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			s.attempts[2].Add(1)
			if failed != nil {
				// This sync's own failures opened it: say what they were.
				return service.SourceApply{}, failed
			}
			return service.SourceApply{}, fmt.Errorf("source %s: circuit breaker open: %w", s.cfg.Name, err)
		}
		s.attempts[1].Add(1)
		failed = fmt.Errorf("source %s: %w", s.cfg.Name, err)
		if !errors.Is(err, ErrTransient) || attempt >= s.cfg.Retries || ctx.Err() != nil {
			return service.SourceApply{}, failed
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff *= 2
		select {
		case <-ctx.Done():
			return service.SourceApply{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (r *Runner) succeeded(ctx context.Context, s *runSource, at time.Time, revision string, res service.SourceApplied) {
	switch {
	case res.Unchanged && res.Revision != revision:
		// The store kept a newer snapshot, applied by another replica
		// while this one fetched: this one changed nothing.
		s.syncs[1].Add(1)
		r.logger.Info("upstream: snapshot superseded by a newer one applied meanwhile; nothing changed", "source", s.cfg.Name,
			"revision", revision, "in_force", res.Revision)
		s.mu.Lock()
		s.lastError, s.lastErrorAt = "", time.Time{}
		s.mu.Unlock()
		r.adoptStored(ctx, s)
		r.publish()
		return
	case res.Unchanged:
		s.syncs[1].Add(1)
	default:
		s.syncs[0].Add(1)
		r.logger.Info("upstream: snapshot applied", "source", s.cfg.Name, "revision", res.Revision,
			"added", res.Added, "removed", res.Removed, "kept", res.Kept)
	}
	s.mu.Lock()
	if at.After(s.syncedAt) {
		s.syncedAt = at
	}
	s.revision, s.entries = res.Revision, res.Kept+res.Added
	s.lastError, s.lastErrorAt = "", time.Time{}
	s.mu.Unlock()
	r.publish()
}

// adoptStored takes the store's record of the source's last good
// snapshot when it is newer than what this runner saw.
func (r *Runner) adoptStored(ctx context.Context, s *runSource) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := r.app.State(ctx, s.cfg.Name)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.SyncedAt.After(s.syncedAt) {
		s.syncedAt, s.revision, s.entries = st.SyncedAt, st.Revision, st.Entries
	}
	if s.lastError == "" && st.LastError != "" && st.LastErrorAt.After(st.SyncedAt) {
		s.lastError, s.lastErrorAt = st.LastError, st.LastErrorAt
	}
}

// publish makes the sources' freshness visible to checks.
func (r *Runner) publish() {
	out := make([]service.SourceFreshness, len(r.sources))
	for i, s := range r.sources {
		s.mu.Lock()
		out[i] = service.SourceFreshness{Name: s.cfg.Name, Lists: s.cfg.Lists, SyncedAt: s.syncedAt, MaxAge: s.cfg.MaxAge}
		s.mu.Unlock()
	}
	r.fresh.Store(&out)
}

// Freshness implements service.SourceMonitor: no lock, no allocation.
func (r *Runner) Freshness() []service.SourceFreshness { return *r.fresh.Load() }

// Breakers reports each source's breaker as "source:NAME".
func (r *Runner) Breakers() map[string]string {
	out := make(map[string]string, len(r.sources))
	for _, s := range r.sources {
		out["source:"+s.cfg.Name] = breaker.StateName(s.cb.State())
	}
	return out
}

// SourceStatus is one source as /readyz shows it.
type SourceStatus struct {
	Lists   []string   `json:"lists"`
	Breaker string     `json:"breaker"`
	Fresh   bool       `json:"fresh"`
	Synced  *time.Time `json:"synced_at,omitempty"`
	MaxAge  string     `json:"max_age"`
	// Revision of the snapshot in force and how many entries it has.
	Revision    string     `json:"revision,omitempty"`
	Entries     int        `json:"entries"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Status reports every source by name, for /readyz. A stale source does
// not make the replica unready: checks it matters to are unverifiable.
func (r *Runner) Status(context.Context) any {
	now := r.now()
	out := make(map[string]SourceStatus, len(r.sources))
	for _, s := range r.sources {
		s.mu.Lock()
		st := SourceStatus{Lists: s.cfg.Lists, Breaker: breaker.StateName(s.cb.State()), MaxAge: s.cfg.MaxAge.String(),
			Revision: s.revision, Entries: s.entries, LastError: s.lastError}
		if !s.syncedAt.IsZero() {
			t := s.syncedAt.UTC()
			st.Synced, st.Fresh = &t, now.Sub(t) <= s.cfg.MaxAge
		}
		if !s.lastErrorAt.IsZero() {
			t := s.lastErrorAt.UTC()
			st.LastErrorAt = &t
		}
		s.mu.Unlock()
		out[s.cfg.Name] = st
	}
	return out
}
