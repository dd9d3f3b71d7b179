package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// countingStore counts reads of the real store under it, and can hold
// them at a gate.
type countingStore struct {
	service.EntryLookup
	reads atomic.Int64
	gate  chan struct{} // when not nil, reads wait for it to close
	fail  atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (c *countingStore) LookupEntries(ctx context.Context, subject string) (service.Lookup, error) {
	c.reads.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	if c.fail.Load() {
		return service.Lookup{}, errInjected
	}
	return c.EntryLookup.LookupEntries(ctx, subject)
}

// testSecret is the Redis secret the tests' replicas share (newTier gives
// it to every tier; a test's own WithRedisSecret comes after it).
var testSecret = []byte("credgate cache tests' shared secret, 32 bytes or more")

// rejectedValues and rejectedMessages count what Redis held that did not
// open under the tier's secret.
func rejectedValues(t *Tier) uint64   { return t.stats.redisRejected.Load() }
func rejectedMessages(t *Tier) uint64 { return t.stats.messagesRejected.Load() }

func newTier(t *testing.T, store service.EntryLookup, feed ChangeFeed, opts ...Option) *Tier {
	t.Helper()
	tier, err := New(store, feed, append([]Option{WithRedisSecret(testSecret)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tier.Start(t.Context())
	t.Cleanup(tier.Close)
	return tier
}

func lookup(t *testing.T, tier *Tier, subject string) service.Lookup {
	t.Helper()
	l, err := tier.LookupEntries(t.Context(), subject)
	if err != nil {
		t.Fatalf("LookupEntries: %v", err)
	}
	return l
}

func TestLocalHitAndCleanSubjectsAreCached(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	cs := &countingStore{EntryLookup: st}
	tier := newTier(t, cs, st, WithReconcileInterval(time.Hour))
	clean := testenv.USCC(t, "91110000MA0000001")
	before := time.Now()
	if l := lookup(t, tier, clean); len(l.Entries) != 0 || l.AsOf.Before(before.Add(-time.Second)) {
		t.Fatalf("clean subject: %d entries as of %v", len(l.Entries), l.AsOf)
	}
	for range 5 {
		lookup(t, tier, clean)
	}
	if n := cs.reads.Load(); n != 1 {
		t.Fatalf("store read %d times for one clean subject, want 1 (negative results are cached)", n)
	}
	if s := tier.Stats(); s.LocalHits != 5 || s.StoreLoads != 1 {
		t.Fatalf("stats %+v, want 5 local hits and 1 store load", s)
	}
}

// TestReconcileCatchesWritesWithoutHook: a write that no hook reports (a
// bulk load, another process, a lost message) reaches the cache at the
// next reading of the change log, and the reading moves AsOf.
func TestReconcileCatchesWritesWithoutHook(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithClock(clock))
	subject := testenv.USCC(t, "91110000MA0000002")
	loaded := lookup(t, tier, subject).AsOf
	insert(t, st, blackEntry("e1", subject))
	if l := lookup(t, tier, subject); len(l.Entries) != 0 {
		t.Fatal("the cache saw a write before reconciling: the test does not test anything")
	}
	now.Add(int64(5 * time.Second))
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := lookup(t, tier, subject)
	if len(l.Entries) != 1 {
		t.Fatalf("after reconciling: %d entries, want 1", len(l.Entries))
	}
	if !l.AsOf.After(loaded) {
		t.Fatalf("AsOf %v did not move past the first load %v", l.AsOf, loaded)
	}
	// Nothing changed since: a reading confirms the cached set, and AsOf
	// follows the reading without a store read.
	reads := tier.Stats().StoreLoads
	now.Add(int64(5 * time.Second))
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, tier, subject).AsOf; !got.Equal(clock()) {
		t.Fatalf("AsOf %v after a reading at %v", got, clock())
	}
	if tier.Stats().StoreLoads != reads {
		t.Fatal("a confirmed set was read again")
	}
}

func TestInvalidateDropsLocalCopy(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000003")
	lookup(t, tier, subject)
	insert(t, st, blackEntry("e1", subject))
	tier.Invalidate(subject)
	if l := lookup(t, tier, subject); len(l.Entries) != 1 {
		t.Fatalf("after Invalidate: %d entries, want 1", len(l.Entries))
	}
}

func TestConcurrentMissesLoadOnce(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	cs := &countingStore{EntryLookup: st, gate: make(chan struct{})}
	tier := newTier(t, cs, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000004")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { lookup(t, tier, subject) })
	}
	for cs.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others pile up on the load
	close(cs.gate)
	wg.Wait()
	if n := cs.reads.Load(); n != 1 {
		t.Fatalf("50 concurrent misses read the store %d times, want 1", n)
	}
}

// heldStore reads the store, then holds the answer until release closes:
// the answer predates anything written meanwhile.
type heldStore struct {
	service.EntryLookup
	reads   atomic.Int64
	release chan struct{}
}

func (h *heldStore) LookupEntries(ctx context.Context, subject string) (service.Lookup, error) {
	es, err := h.EntryLookup.LookupEntries(ctx, subject)
	if h.reads.Add(1) == 1 {
		<-h.release
	}
	return es, err
}

// TestInvalidationDuringLoad: a load that read the store before a change
// and finishes after its invalidation must not be cached.
func TestInvalidationDuringLoad(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	hs := &heldStore{EntryLookup: st, release: make(chan struct{})}
	tier := newTier(t, hs, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000005")
	done := make(chan service.Lookup, 1)
	go func() {
		l, _ := tier.LookupEntries(t.Context(), subject)
		done <- l
	}()
	for hs.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	insert(t, st, blackEntry("e1", subject))
	tier.Invalidate(subject)
	close(hs.release)
	if l := <-done; len(l.Entries) != 1 {
		t.Fatalf("the lookup waiting on an invalidated load answered %d entries, want it to load again and find 1", len(l.Entries))
	}
	if l := lookup(t, tier, subject); len(l.Entries) != 1 {
		t.Fatalf("after the invalidated load: %d entries cached, want 1", len(l.Entries))
	}
}

func TestStoreErrorIsNotCached(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	cs := &countingStore{EntryLookup: st}
	cs.fail.Store(true)
	tier := newTier(t, cs, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000006")
	if _, err := tier.LookupEntries(t.Context(), subject); !errors.Is(err, errInjected) {
		t.Fatalf("lookup with a failing store: %v", err)
	}
	cs.fail.Store(false)
	if l := lookup(t, tier, subject); l.Entries == nil && cs.reads.Load() != 2 {
		t.Fatalf("the failure was cached: %d reads", cs.reads.Load())
	}
}

// TestLostReadingFlushes: when the change log cannot say everything that
// changed (too many changes for one reading), every local copy goes.
func TestLostReadingFlushes(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithChangeLimit(2))
	a, b := testenv.USCC(t, "91110000MA0000007"), testenv.USCC(t, "91110000MA0000008")
	lookup(t, tier, a)
	var es []policy.Entry
	for i, s := range []string{b, b, b} {
		es = append(es, blackEntry("e"+string(rune('0'+i)), s))
	}
	insert(t, st, es...)
	insert(t, st, blackEntry("ea", a))
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := lookup(t, tier, a); len(l.Entries) != 1 {
		t.Fatalf("after a lost reading: %d entries for a, want 1", len(l.Entries))
	}
}

// TestStaleSetIsReadAgain: when reconciliation is behind (the change log
// unreadable) but the store answers, a set older than half the bound is
// read again before it is served.
func TestStaleSetIsReadAgain(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithMaxStaleness(10*time.Second), WithClock(clock))
	subject := testenv.USCC(t, "91110000MA0000009")
	lookup(t, tier, subject)
	insert(t, st, blackEntry("e1", subject))
	now.Add(int64(6 * time.Second))
	l := lookup(t, tier, subject)
	if len(l.Entries) != 1 || !l.AsOf.Equal(clock()) {
		t.Fatalf("stale set: %d entries as of %v, want it read again at %v", len(l.Entries), l.AsOf, clock())
	}
}

// TestChecksDoNotModifySharedSets: the tier hands every caller the same
// entries; a check (decision, views, evidence) must leave them as they
// were, or one caller's answer would leak into the next.
func TestChecksDoNotModifySharedSets(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000010")
	e := blackEntry("e1", subject)
	e.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "11010519491231002X", Role: policy.RoleLegalRepresentative}}
	insert(t, st, e, blackEntry("e2", subject))
	before := lookup(t, tier, subject).Entries
	snapshot, err := encodeSet(&set{entries: before, loadedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(func() { app.Close() })
	checker := service.NewChecker(cat, tier, app, st)
	for _, action := range []string{"government_procurement", "public_tendering", "honors"} {
		for _, s := range []string{subject, "11010519491231002X"} {
			if _, err := checker.Check(t.Context(), service.Caller{ClientID: "admin", Role: service.RoleAdmin},
				service.CheckRequest{Subject: s, Action: action}); err != nil {
				t.Fatal(err)
			}
		}
	}
	after, err := encodeSet(&set{entries: lookup(t, tier, subject).Entries, loadedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(snapshot) {
		t.Fatalf("checks modified the cached entries:\nbefore %s\nafter  %s", snapshot, after)
	}
}
