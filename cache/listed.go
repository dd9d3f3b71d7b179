package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/credgate/credgate/service"
)

// The listed filter answers the first check of a subject that no entry
// names without a round trip. Most subjects checked are on no list, and
// each one's first check would otherwise miss the local tier, miss Redis,
// read the store and fill Redis; at a national gateway, where most
// subjects are checked once per approval, that first check is the common
// case.
//
// The filter is a Bloom filter of every subject the store's entries name
// (as subject or as responsible person: exactly what EntriesAffecting
// searches). It may hold subjects with no entry (false positives, and
// subjects whose entries went), which take the ordinary path; it never
// lacks one that has an entry, because every change that could add one
// reaches it the way it reaches the cached sets (dropLocal: the writer's
// Invalidate, pub/sub, the reconciler), before the reconciler confirms a
// reading. A subject it lacks is therefore clean as of
// max(the filter's reading, confirmed), the same claim a cached clean set
// makes, and it ages the same way when the store is unreachable.
//
// Building it reads every listed subject: marks that arrive during the
// reading are kept aside and added when it ends, so that a change
// committed after the reading's snapshot is not lost. Anything that flushes
// the local tier (a lost reading of the change log, the first cursor)
// drops the filter and builds it again.

// ListedSource is the store's roll of listed subjects (see the adapters'
// ListedSubjects).
type ListedSource interface {
	// ListedSubjects calls fn with every subject an entry names, some
	// more than once; a subject it does not name has no entry now.
	ListedSubjects(ctx context.Context, fn func(subject string) error) error
}

// Listed filter defaults.
const (
	// DefaultListedMax bounds the distinct subjects the filter holds: a
	// store that names more turns the filter off. Memory is about 2.4
	// bytes a subject: 1.2 bytes a slot at the false-positive rate below,
	// sized at twice the subjects read.
	DefaultListedMax   = 20_000_000
	listedFalsePos     = 0.01
	listedMinCapacity  = 1 << 20
	listedBuildTimeout = 10 * time.Minute
	// listedMaxPending bounds the marks kept during a reading (about
	// 40 MB of subjects); past it the reading is given up and begun again.
	listedMaxPending = 1 << 20
	// listedRetryOff is how long a filter turned off by a store past its
	// bound waits before reading the store again (each reading up to the
	// bound is a scan of that many rows).
	listedRetryOff = time.Hour
)

// WithListedFilter keeps, in memory, a filter of the subjects src names,
// so that a subject no entry names is answered clean without a read of
// Redis or the store. max bounds the subjects it holds (≤ 0: the
// default); past it the filter is off and lookups take the ordinary path.
// A tier without a change feed keeps no filter.
func WithListedFilter(src ListedSource, max int) Option {
	return func(c *config) {
		c.listed = src
		c.listedMax = DefaultListedMax
		if max > 0 {
			c.listedMax = max
		}
	}
}

// errListedOverflow stops a reading that found more subjects than the
// filter was sized for.
var errListedOverflow = errors.New("cache: more listed subjects than the filter was sized for")

// listedFilter is the filter and its building state.
type listedFilter struct {
	src ListedSource
	max uint

	mu    sync.RWMutex
	bloom *bloom.BloomFilter // nil: not ready (building, dropped or off)
	since int64              // unix ns: when the reading it was built from began
	// held counts the distinct subjects added (a subject the filter
	// already seemed to hold is not counted again, so a false positive
	// undercounts by one), capacity what it was sized for: past it the
	// false-positive rate grows, and it is built again.
	held, capacity uint
	// gen is bumped by drop: a build that began before does not install.
	gen uint64
	// building: a reading is under way, and marks are kept in pending.
	building bool
	pending  []string
	off      bool // the store names more subjects than max
	lastRead uint // subjects the last reading found (sizes the next)

	rebuild chan struct{}
}

func newListedFilter(src ListedSource, max int) *listedFilter {
	return &listedFilter{src: src, max: uint(max), rebuild: make(chan struct{}, 1)}
}

// absent reports whether subject is certainly named by no entry, and as
// of when the filter knows it (with the tier's confirmation on top).
func (f *listedFilter) absent(subject string) (since int64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.bloom == nil || f.bloom.TestString(subject) {
		return 0, false
	}
	return f.since, true
}

// mark adds subjects, which a change may have listed.
func (f *listedFilter) mark(subjects []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.building {
		if len(f.pending)+len(subjects) > listedMaxPending {
			// A flood of changes during a reading: give it up, and the
			// next build starts from a later snapshot.
			f.gen++
			f.building, f.pending = false, nil
			f.request()
		} else {
			f.pending = append(f.pending, subjects...)
		}
	}
	if f.bloom == nil {
		return
	}
	for _, s := range subjects {
		if !f.bloom.TestOrAddString(s) {
			f.held++
		}
	}
	if f.held > f.capacity {
		f.request()
	}
}

// drop discards the filter (and any build under way) and asks for a new
// one: changes may have been missed. A filter that is off waits for its
// retry instead: reading again would scan past the bound for nothing.
func (f *listedFilter) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bloom, f.gen = nil, f.gen+1
	f.building, f.pending = false, nil
	if !f.off {
		f.request()
	}
}

// request asks the build loop for a build (f.mu held or not: it only
// sends without blocking).
func (f *listedFilter) request() {
	select {
	case f.rebuild <- struct{}{}:
	default:
	}
}

// loop builds the filter when asked, until ctx ends. A build that fails
// (the store is down) is tried again after retry.
func (f *listedFilter) loop(ctx context.Context, t *Tier) {
	retry := time.NewTimer(time.Hour)
	retry.Stop() // armed only by a build that failed
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.rebuild:
		case <-retry.C:
		}
		err := f.build(ctx, t)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			retry.Stop() // a retry still pending would only read it again
		case errors.Is(err, errListedOverflow):
			retry.Reset(listedRetryOff)
		case err != nil:
			t.stats.listedErrors.Add(1)
			t.cfg.logger.Warn("cache: cannot read the listed subjects; the filter waits", "err", err)
			retry.Reset(t.cfg.reconcile)
		}
	}
}

// build reads every listed subject into a new filter and installs it,
// unless the filter was dropped meanwhile. A reading that finds more
// subjects than it was sized for starts again with room for four times
// as many, up to max.
func (f *listedFilter) build(ctx context.Context, t *Tier) error {
	f.mu.Lock()
	gen := f.gen
	f.building, f.pending = true, nil
	capacity := min(f.max, max(listedMinCapacity, 2*f.lastRead))
	f.mu.Unlock()
	abandon := func() {
		f.mu.Lock()
		if f.gen == gen {
			f.building, f.pending = false, nil
		}
		f.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, listedBuildTimeout)
	defer cancel()
	for {
		// Taken before the reading: what it finds absent was absent then.
		started := t.cfg.now().UnixNano()
		b := bloom.NewWithEstimates(capacity, listedFalsePos)
		// n counts distinct subjects: one named by several entries (or
		// as a subject and a person) is read as often.
		var n uint
		err := f.src.ListedSubjects(ctx, func(subject string) error {
			if b.TestOrAddString(subject) {
				return nil
			}
			if n++; n > capacity {
				return errListedOverflow
			}
			return nil
		})
		if errors.Is(err, errListedOverflow) && capacity < f.max {
			capacity = min(f.max, 4*capacity)
			continue
		}
		if errors.Is(err, errListedOverflow) {
			abandon()
			f.turnOff(gen, t)
			return err
		}
		if err != nil {
			abandon()
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.gen != gen {
			return nil // dropped while reading: the drop asked for another
		}
		var pending uint
		for _, s := range f.pending {
			if !b.TestOrAddString(s) {
				pending++
			}
		}
		f.bloom, f.since = b, started
		f.held, f.capacity, f.lastRead = n+pending, capacity, n
		f.building, f.pending, f.off = false, nil, false
		t.stats.listedBuilds.Add(1)
		t.cfg.logger.Info("cache: listed filter ready", "subjects", n, "marked_meanwhile", pending,
			"sized_for", capacity, "bytes", b.Cap()/8, "took", time.Duration(t.cfg.now().UnixNano()-started).Round(time.Millisecond).String())
		return nil
	}
}

// turnOff leaves the filter off: the store names more than max subjects.
func (f *listedFilter) turnOff(gen uint64, t *Tier) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return
	}
	f.bloom = nil
	if !f.off {
		t.cfg.logger.Warn("cache: the store names more subjects than the listed filter holds; it is off",
			"max", f.max)
	}
	f.off = true
}

// state is the filter's state as /readyz shows it: ready, building or off.
func (f *listedFilter) state() (state string, held uint) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	switch {
	case f.bloom != nil:
		return "ready", f.held
	case f.off:
		return "off", 0
	default:
		return "building", 0
	}
}

// listedAnswer answers subject clean if the listed filter knows that no
// entry names it: as of the filter's reading or conf (the confirmation,
// read before the filter), aging like a cached clean set (past half the
// bound with the store up, the subject is read instead).
func (t *Tier) listedAnswer(subject string, conf int64) (service.Lookup, bool) {
	if t.listed == nil {
		return service.Lookup{}, false
	}
	since, absent := t.listed.absent(subject)
	if !absent {
		return service.Lookup{}, false
	}
	asOf := max(since, conf)
	if t.cfg.now().UnixNano()-asOf > int64(t.cfg.maxStaleness/2) && !t.storeDown.Load() {
		return service.Lookup{}, false
	}
	t.stats.listedHits.Add(1)
	return service.Lookup{AsOf: time.Unix(0, asOf)}, true
}

// BatchLookup decorates inner, a store's batch lookup (screening jobs),
// with the listed filter: the subjects it knows no entry names are
// answered as LookupEntries answers them, and only the others are read,
// in one call. Without a filter it returns inner.
func (t *Tier) BatchLookup(inner service.EntryBatchLookup) service.EntryBatchLookup {
	if t.listed == nil {
		return inner
	}
	return &batchLookup{t: t, inner: inner}
}

type batchLookup struct {
	t     *Tier
	inner service.EntryBatchLookup
}

var _ service.EntryBatchLookup = (*batchLookup)(nil)

func (b *batchLookup) LookupEntriesBatch(ctx context.Context, subjects []string) (map[string]service.Lookup, error) {
	conf := b.t.confirmed.Load()
	out := make(map[string]service.Lookup, len(subjects))
	var rest []string
	for _, s := range subjects {
		if l, ok := b.t.listedAnswer(s, conf); ok {
			out[s] = l
		} else {
			rest = append(rest, s)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	found, err := b.inner.LookupEntriesBatch(ctx, rest)
	if err != nil {
		return nil, err
	}
	for s, l := range found {
		out[s] = l
	}
	return out, nil
}
