package cache

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// listedState is the filter's state as /readyz shows it.
func listedState(tier *Tier) string {
	s, _ := tier.listed.state()
	return s
}

func waitListed(t *testing.T, tier *Tier, builds uint64) {
	t.Helper()
	waitFor(t, "the listed filter", 10*time.Second, func() bool {
		return listedState(tier) == "ready" && tier.stats.listedBuilds.Load() >= builds
	})
}

// personOn is blackEntry naming person as the legal representative.
func personOn(id, subject, person string) policy.Entry {
	e := blackEntry(id, subject)
	e.ResponsiblePersons = []policy.ResponsiblePerson{{ID: person, Role: policy.RoleLegalRepresentative}}
	return e
}

// listedStore is a SQLite store with one entry, on listed (seed+"1"),
// naming person as its legal representative; clean (seed+"2") is on none.
func listedStore(t *testing.T, seed string) (st *sqlite.Store, listed, clean, person string) {
	t.Helper()
	st = sqliteStore(t)
	listed, clean, person = testenv.USCC(t, seed+"1"), testenv.USCC(t, seed+"2"), "11010519491231002X"
	insert(t, st, personOn("e1", listed, person))
	return st, listed, clean, person
}

// TestListedFilterAnswersCleanSubjects: a subject no entry names is
// answered clean with no read of the store; subjects named by an entry, as
// its subject or as a responsible person, are read as before.
func TestListedFilterAnswersCleanSubjects(t *testing.T) {
	t.Parallel()
	st, listed, clean, person := listedStore(t, "91110000MA000003")
	cs := &countingStore{EntryLookup: st}
	tier := newTier(t, cs, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	before := time.Now()
	for range 3 {
		if l := lookup(t, tier, clean); len(l.Entries) != 0 || l.AsOf.Before(before.Add(-time.Minute)) {
			t.Fatalf("clean subject: %d entries as of %v", len(l.Entries), l.AsOf)
		}
	}
	if n := cs.reads.Load(); n != 0 {
		t.Fatalf("the store was read %d times for a subject no entry names", n)
	}
	if s := tier.Stats(); s.ListedHits != 3 {
		t.Fatalf("stats %+v, want 3 answers of the listed filter", s)
	}
	for _, s := range []string{listed, person} {
		if l := lookup(t, tier, s); len(l.Entries) != 1 {
			t.Fatalf("a listed subject: %d entries, want 1", len(l.Entries))
		}
	}
	if n := cs.reads.Load(); n != 2 {
		t.Fatalf("%d store reads for two listed subjects, want 2", n)
	}
	if st := tier.Status(t.Context()).(Status); st.ListedFilter != "ready" {
		t.Fatalf("status %+v", st)
	}
}

// TestListedFilterLearnsOfChanges: an entry written after the filter was
// built reaches it the way it reaches cached sets: through the writer's
// Invalidate, and through the change log when no hook told it.
func TestListedFilterLearnsOfChanges(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	hooked, unhooked := testenv.USCC(t, "91110000MA0000033"), testenv.USCC(t, "91110000MA0000034")
	person := "11010519491231002X"
	insert(t, st, personOn("e1", hooked, person))
	tier.Invalidate(hooked, person)
	for _, s := range []string{hooked, person} {
		if l := lookup(t, tier, s); len(l.Entries) != 1 {
			t.Fatalf("after Invalidate: %d entries, want 1", len(l.Entries))
		}
	}
	insert(t, st, blackEntry("e2", unhooked))
	if l := lookup(t, tier, unhooked); len(l.Entries) != 0 {
		t.Fatal("the filter saw a write before reconciling: the test does not test anything")
	}
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := lookup(t, tier, unhooked); len(l.Entries) != 1 {
		t.Fatalf("after reconciling: %d entries, want 1", len(l.Entries))
	}
}

// gatedSource reads the real roll, then waits for a token at the gate
// before handing it over: what is written meanwhile is not in the
// reading.
type gatedSource struct {
	ListedSource
	read  chan struct{} // receives after each reading, before the gate
	gate  chan struct{} // one token lets one reading through
	calls atomic.Int64
}

func newGatedSource(src ListedSource) *gatedSource {
	return &gatedSource{ListedSource: src, read: make(chan struct{}, 4), gate: make(chan struct{}, 4)}
}

func (g *gatedSource) ListedSubjects(ctx context.Context, fn func(string) error) error {
	g.calls.Add(1)
	var subjects []string
	if err := g.ListedSource.ListedSubjects(ctx, func(s string) error { subjects = append(subjects, s); return nil }); err != nil {
		return err
	}
	g.read <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, s := range subjects {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// TestListedFilterKeepsChangesDuringItsReading: a change reconciled while
// the filter is being read is in the filter it installs.
func TestListedFilterKeepsChangesDuringItsReading(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	src := newGatedSource(st)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(src, 0))
	<-src.read
	subject := testenv.USCC(t, "91110000MA0000035")
	insert(t, st, blackEntry("e1", subject))
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	src.gate <- struct{}{}
	waitListed(t, tier, 1)
	if l := lookup(t, tier, subject); len(l.Entries) != 1 {
		t.Fatalf("an entry written during the reading: %d entries, want 1", len(l.Entries))
	}
}

// TestListedFilterDroppedWithTheLocalTier: a flush (changes may have been
// missed) drops the filter, a reading under way does not install, and a
// new reading builds it again.
func TestListedFilterDroppedWithTheLocalTier(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	src := newGatedSource(st)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(src, 0))
	<-src.read
	tier.flushLocal()
	src.gate <- struct{}{} // the first reading, dropped
	src.gate <- struct{}{} // the second
	waitListed(t, tier, 1)
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d readings, want 2 (the first one dropped)", n)
	}
	if b := tier.stats.listedBuilds.Load(); b != 1 {
		t.Fatalf("%d filters installed, want 1", b)
	}
	tier.flushLocal()
	if s := listedState(tier); s != "building" {
		t.Fatalf("after a flush the filter is %s, want building", s)
	}
	src.gate <- struct{}{}
	waitListed(t, tier, 2)
}

// TestListedFilterOffPastItsBound: a store naming more subjects than the
// filter may hold turns it off, and every lookup takes the ordinary path.
func TestListedFilterOffPastItsBound(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	insert(t, st, personOn("e1", testenv.USCC(t, "91110000MA0000036"), "11010519491231002X"),
		blackEntry("e2", testenv.USCC(t, "91110000MA0000037")))
	cs := &countingStore{EntryLookup: st}
	src := &countingSource{ListedSource: st}
	tier := newTier(t, cs, st, WithReconcileInterval(time.Hour), WithListedFilter(src, 2))
	waitFor(t, "the filter off", 10*time.Second, func() bool { return listedState(tier) == "off" })
	lookup(t, tier, testenv.USCC(t, "91110000MA0000038"))
	if n := cs.reads.Load(); n != 1 || tier.Stats().ListedHits != 0 {
		t.Fatalf("with the filter off: %d store reads, %d filter answers; want 1 and 0", n, tier.Stats().ListedHits)
	}
	// A flush does not send it scanning past its bound again: it waits
	// for its retry.
	tier.flushLocal()
	time.Sleep(200 * time.Millisecond)
	if n, s := src.calls.Load(), listedState(tier); n != 1 || s != "off" {
		t.Fatalf("after a flush: %d readings, the filter %s; want 1 and off", n, s)
	}
}

// countingSource counts the readings of the listed subjects.
type countingSource struct {
	ListedSource
	calls atomic.Int64
}

func (c *countingSource) ListedSubjects(ctx context.Context, fn func(string) error) error {
	c.calls.Add(1)
	return c.ListedSource.ListedSubjects(ctx, fn)
}

// TestListedFilterAges: the filter's answer ages like a cached clean set:
// past half the bound with the store up, the subject is read from the
// store; with the store down, the filter answers as of its last
// confirmation, and the checker judges the age.
func TestListedFilterAges(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	cs := &countingStore{EntryLookup: st}
	feed := &failingFeed{ChangeFeed: st}
	tier := newTier(t, cs, feed, WithReconcileInterval(time.Hour), WithMaxStaleness(10*time.Second),
		WithClock(clock), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	subject := testenv.USCC(t, "91110000MA0000039")
	confirmed := tier.Confirmed()
	now.Add(int64(6 * time.Second))
	if l := lookup(t, tier, subject); cs.reads.Load() != 1 || !l.AsOf.Equal(clock()) {
		t.Fatalf("past half the bound: %d store reads, as of %v; want the store read now", cs.reads.Load(), l.AsOf)
	}
	feed.fail.Store(true)
	cs.fail.Store(true)
	if err := tier.ReconcileNow(t.Context()); err == nil {
		t.Fatal("the change log was read although it fails")
	}
	other := testenv.USCC(t, "91110000MA0000040")
	l := lookup(t, tier, other)
	if len(l.Entries) != 0 || l.AsOf.After(confirmed.Add(time.Second)) || cs.reads.Load() != 1 {
		t.Fatalf("store down: %d entries as of %v (confirmed %v), %d reads; want the filter's answer as of its confirmation",
			len(l.Entries), l.AsOf, confirmed, cs.reads.Load())
	}
}

// failingFeed is a change feed that can be made to fail.
type failingFeed struct {
	ChangeFeed
	fail atomic.Bool
}

func (f *failingFeed) ChangeCursor(ctx context.Context) (uint64, error) {
	if f.fail.Load() {
		return 0, errInjected
	}
	return f.ChangeFeed.ChangeCursor(ctx)
}

func (f *failingFeed) SubjectChanges(ctx context.Context, cursor uint64, limit int) ([]service.SubjectChange, uint64, bool, error) {
	if f.fail.Load() {
		return nil, 0, false, errInjected
	}
	return f.ChangeFeed.SubjectChanges(ctx, cursor, limit)
}

// TestListedFilterAcrossReplicas: replica A writes and invalidates; B,
// which reconciles hourly, learns of the new entry through pub/sub, not
// from a filter that still says the subject is clean.
func TestListedFilterAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	schema := testenv.FreshSchema(t, "credgate_cache")
	var tiers []*Tier
	for range 2 {
		st := pgStore(t, "", schema)
		tiers = append(tiers, newTier(t, st, st, WithRedis(rs.options()), WithPrefix("t"),
			WithReconcileInterval(time.Hour), WithListedFilter(st, 0)))
	}
	a, b := tiers[0], tiers[1]
	for _, tier := range tiers {
		waitListed(t, tier, 1)
		waitFor(t, "subscribed", 5*time.Second, func() bool { return tier.redis.subscribed.Load() })
	}
	subject := testenv.USCC(t, "91110000MA0000041")
	if l := lookup(t, b, subject); len(l.Entries) != 0 || b.Stats().ListedHits != 1 {
		t.Fatalf("B before the write: %d entries, %+v", len(l.Entries), b.Stats())
	}
	insert(t, pgStore(t, "", schema), blackEntry("e1", subject))
	a.Invalidate(subject)
	waitFor(t, "B's filter to learn of the entry", 5*time.Second, func() bool {
		return len(lookup(t, b, subject).Entries) == 1
	})
}

// A filter's answer allocates nothing (AllocsPerRun refuses parallel
// tests).
func TestListedFilterAnswerDoesNotAllocate(t *testing.T) {
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	subject := testenv.USCC(t, "91110000MA0000042")
	ctx := t.Context()
	if n := testing.AllocsPerRun(100, func() { _, _ = tier.LookupEntries(ctx, subject) }); n != 0 {
		t.Fatalf("an answer of the filter allocates %v times", n)
	}
	if tier.Stats().ListedHits == 0 {
		t.Fatal("the filter did not answer: the test does not test anything")
	}
}

// askedBatch records the subjects a batch lookup is asked about.
type askedBatch struct {
	service.EntryBatchLookup
	asked []string
}

func (a *askedBatch) LookupEntriesBatch(ctx context.Context, subjects []string) (map[string]service.Lookup, error) {
	a.asked = append(a.asked, subjects...)
	return a.EntryBatchLookup.LookupEntriesBatch(ctx, subjects)
}

// TestListedFilterInFrontOfBatches: a screening batch reads from the
// store only the subjects that entries may name; the others are answered
// clean as of the filter's confirmation, and every subject is answered.
func TestListedFilterInFrontOfBatches(t *testing.T) {
	t.Parallel()
	st, listed, clean, person := listedStore(t, "91110000MA000004")
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	inner := &askedBatch{EntryBatchLookup: st}
	got, err := tier.BatchLookup(inner).LookupEntriesBatch(t.Context(), []string{listed, clean, person})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got[listed].Entries) != 1 || len(got[person].Entries) != 1 || len(got[clean].Entries) != 0 {
		t.Fatalf("batch answers: %v", got)
	}
	if got[clean].AsOf.IsZero() {
		t.Fatal("the filter's answer has no time")
	}
	if len(inner.asked) != 2 || slices.Contains(inner.asked, clean) {
		t.Fatalf("the store was asked about %v, want the two listed subjects only", inner.asked)
	}
	// Without a filter (none asked for, or no change feed to keep it
	// current) the store's lookup is used as it is.
	plain := newTier(t, st, st, WithReconcileInterval(time.Hour))
	unfed := newTier(t, st, nil, WithListedFilter(st, 0))
	for _, tier := range []*Tier{plain, unfed} {
		if b := tier.BatchLookup(inner); b != service.EntryBatchLookup(inner) {
			t.Fatalf("without a filter: %T", b)
		}
		if s := tier.Status(t.Context()).(Status).ListedFilter; s != "disabled" {
			t.Fatalf("without a filter: %s", s)
		}
	}
}

// TestListedFilterUnderConcurrentChanges: while subjects are listed one
// after another (each Invalidated once written, as the entry service
// does), the filter is flushed and built again and the change log read
// every few milliseconds, readers never get a clean answer for a subject
// listed before they looked, and subjects on no list stay clean.
func TestListedFilterUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithReconcileInterval(5*time.Millisecond), WithListedFilter(st, 0))
	waitListed(t, tier, 1)
	const n = 150
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = testenv.USCC(t, fmt.Sprintf("91110000MF%07d", i))
	}
	clean := testenv.USCC(t, "91110000MG0000001")
	var listed atomic.Int64 // subjects[:listed] are listed and invalidated
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	var lookups atomic.Int64
	for r := range 2 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if m := listed.Load(); m > 0 {
					s := subjects[(k*7+r)%int(m)]
					l, err := tier.LookupEntries(context.Background(), s)
					if err != nil || len(l.Entries) != 1 {
						wrong.Add(1)
					}
					lookups.Add(1)
				}
				if l, err := tier.LookupEntries(context.Background(), clean); err != nil || len(l.Entries) != 0 {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				tier.flushLocal()
			}
		}
	})
	for i, s := range subjects {
		insert(t, st, blackEntry(fmt.Sprintf("e%d", i), s))
		tier.Invalidate(s)
		listed.Store(int64(i + 1))
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if w := wrong.Load(); w > 0 {
		t.Fatalf("%d wrong answers in %d lookups of listed subjects", w, lookups.Load())
	}
	if tier.stats.listedBuilds.Load() < 2 || tier.Stats().ListedHits == 0 {
		t.Fatalf("%d filters built, %d answers of the filter: the test did not exercise it",
			tier.stats.listedBuilds.Load(), tier.Stats().ListedHits)
	}
}

// TestListedFilterCountsDistinctSubjects: a subject named by several
// entries, or marked again and again, counts once, both against the
// filter's bound and towards the size that makes it read again: a bound
// of two holds two subjects named by four entries, and a thousand marks
// of one of them neither grow the count nor start a reading.
func TestListedFilterCountsDistinctSubjects(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	often, once := testenv.USCC(t, "91110000MA0000051"), testenv.USCC(t, "91110000MA0000052")
	insert(t, st, blackEntry("e1", often), blackEntry("e2", often), blackEntry("e3", often), blackEntry("e4", once))
	src := &countingSource{ListedSource: st}
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(src, 2))
	waitListed(t, tier, 1)
	for range 1000 {
		tier.Invalidate(often)
	}
	time.Sleep(100 * time.Millisecond)
	if state, held := tier.listed.state(); state != "ready" || held != 2 || src.calls.Load() != 1 {
		t.Fatalf("the filter %s holding %d subjects after %d readings; want ready, 2 and 1", state, held, src.calls.Load())
	}
}
