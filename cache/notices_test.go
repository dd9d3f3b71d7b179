package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestNoticesBringOutsideWritesAtOnce: with the reconcile tick an hour
// away, an entry written through another handle on the same database (as
// `credgate import` in another process writes: no hook, no pub/sub)
// reaches the tier's answers through the store's notice, on both stores.
// Without the notice the listed filter would answer the subject clean
// until the tick.
func TestNoticesBringOutsideWritesAtOnce(t *testing.T) {
	t.Parallel()
	type store interface {
		service.EntryLookup
		ChangeFeed
		ChangeNotifier
		ListedSource
	}
	for _, tc := range []struct {
		name string
		// open returns the tier's store and another handle on its database.
		open func(t *testing.T) (store, entryWriter)
	}{
		{"sqlite", func(t *testing.T) (store, entryWriter) {
			dir := sqlitetest.Dir(t)
			st, err := sqlite.Open(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			outside, err := sqlite.Open(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { outside.Close() })
			return st, outside
		}},
		{"postgres", func(t *testing.T) (store, entryWriter) {
			schema := testenv.FreshSchema(t, "credgate_cache")
			return pgStore(t, "", schema), pgStore(t, "", schema)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, outside := tc.open(t)
			tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithListedFilter(st, 0), WithChangeNotices(st))
			waitListed(t, tier, 1)
			waitFor(t, "the watch", 10*time.Second, func() bool { return tier.noticeState() == "listening" })
			subject := testenv.USCC(t, "91110000MA0000N01")
			if l := lookup(t, tier, subject); len(l.Entries) != 0 {
				t.Fatalf("before the write: %d entries", len(l.Entries))
			}
			insert(t, outside, blackEntry("e1", subject))
			waitFor(t, "the outside write in the answers", 10*time.Second, func() bool {
				return len(lookup(t, tier, subject).Entries) == 1
			})
			if st := tier.Status(t.Context()).(Status); st.ChangeNotices != "listening" {
				t.Fatalf("status %+v", st)
			}
			// The write's own notice may come after the answers show it:
			// a reading kicked by the first notice can run after the write
			// and find it (seen under load), so it is waited for, not read.
			waitFor(t, "the first notice and the write's", 10*time.Second, func() bool {
				return tier.stats.notices.Load() >= 2
			})
		})
	}
}

// flakyNotifier fails its first watches, then watches until ctx ends,
// calling changed when told on its channel.
type flakyNotifier struct {
	failures atomic.Int32
	calls    atomic.Int32
	tell     chan struct{}
}

func (f *flakyNotifier) WatchSubjectChanges(ctx context.Context, changed func()) error {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return errors.New("connection refused")
	}
	changed()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.tell:
			changed()
		}
	}
}

// TestNoticesWatchAgainAfterAFailure: a watch that fails shows as down,
// is counted, and is started again a reconcile interval later; each notice
// then makes one reading of the change log.
func TestNoticesWatchAgainAfterAFailure(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	n := &flakyNotifier{tell: make(chan struct{})}
	n.failures.Store(2)
	tier := newTier(t, st, st, WithReconcileInterval(50*time.Millisecond), WithChangeNotices(n))
	waitFor(t, "the third watch", 10*time.Second, func() bool { return tier.noticeState() == "listening" })
	if c, e := n.calls.Load(), tier.stats.noticeErrors.Load(); c != 3 || e != 2 {
		t.Fatalf("%d watches and %d errors, want 3 and 2", c, e)
	}
	// The watch turns "listening" just before it counts its first notice,
	// so that notice is waited for; read at once, it could land after
	// the count below and make it two.
	waitFor(t, "the watch's first notice", 10*time.Second, func() bool { return tier.stats.notices.Load() == 1 })
	n.tell <- struct{}{}
	waitFor(t, "the notice", 10*time.Second, func() bool { return tier.stats.notices.Load() == 2 })

	off := newTier(t, st, st, WithReconcileInterval(time.Hour))
	if s := off.Status(t.Context()).(Status).ChangeNotices; s != "disabled" {
		t.Fatalf("without a notifier: %s", s)
	}
}

// TestNoticesInABurstAreSpaced: fifty notices a millisecond apart (a burst
// of commits elsewhere) make a few readings of the change log, not fifty:
// readings asked for are at least minKickGap apart. (Without the spacing,
// each notice makes its reading: 50.)
func TestNoticesInABurstAreSpaced(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	n := &flakyNotifier{tell: make(chan struct{})}
	tier := newTier(t, st, st, WithReconcileInterval(time.Hour), WithChangeNotices(n))
	waitFor(t, "the watch", 10*time.Second, func() bool { return tier.noticeState() == "listening" })
	time.Sleep(2 * minKickGap) // the first notice's reading is done
	before := tier.stats.reconciles.Load()
	start := time.Now()
	for range 50 {
		n.tell <- struct{}{}
		time.Sleep(time.Millisecond)
	}
	burst := time.Since(start)
	time.Sleep(3 * minKickGap) // the last one asked for
	// One at once, one per gap over the burst, and one for the notices
	// that came while the one before the last was waiting.
	readings := tier.stats.reconciles.Load() - before
	if most := uint64(burst/minKickGap) + 3; readings < 1 || readings > most {
		t.Fatalf("%d readings for 50 notices over %v, want 1..%d", readings, burst.Round(time.Millisecond), most)
	}
	t.Logf("%d readings for 50 notices over %v", readings, burst.Round(time.Millisecond))
}
