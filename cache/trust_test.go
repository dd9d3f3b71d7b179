package cache

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

// TestLostReadingReachesReplicasStartedLater: an import in another process
// commits more changes than a reading handles one by one, a subject's new
// black entry among them, after that subject's clean set went to Redis. The
// replica whose reading is lost cannot say in Redis which values are
// wrong; a replica started after it (its first cursor past the import, so
// its own readings never name the subject) must not take the clean set
// from Redis, and one started just before the loss must drop the copy it
// took from there. Without a shared mark they answered clear, as fresh,
// for as long as they ran.
func TestLostReadingReachesReplicasStartedLater(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	schema := testenv.FreshSchema(t, "credgate_cache")
	var store *postgres.Store
	replica := func() *Tier {
		st := pgStore(t, "", schema)
		store = st
		return newTier(t, st, st, WithRedis(rs.options()), WithPrefix("lost"), WithReconcileInterval(time.Hour), WithChangeLimit(5))
	}
	b0 := replica()
	q := testenv.USCC(t, "91110000MA0000071")
	if l := lookup(t, b0, q); len(l.Entries) != 0 {
		t.Fatalf("Q before the import: %d entries", len(l.Entries))
	}
	waitFor(t, "Q's clean set in Redis", 5*time.Second, func() bool { return b0.stats.fillsWritten.Load() == 1 })

	// The import: Q's black entry and six others, one transaction.
	imported := []policy.Entry{blackEntry("q", q)}
	for i := range 6 {
		imported = append(imported, blackEntry(fmt.Sprintf("o%d", i), testenv.USCC(t, fmt.Sprintf("91110000MB%07d", 710+i))))
	}
	insert(t, store, imported...)

	// B3 starts before B0's reading: it takes Q's clean set from Redis
	// (nothing tells it otherwise yet).
	b3 := replica()
	if l := lookup(t, b3, q); len(l.Entries) != 0 || b3.Stats().RedisHits != 1 {
		t.Fatalf("B3 before B0's reading: %d entries, stats %+v; the test expects the clean set from Redis", len(l.Entries), b3.Stats())
	}

	if err := b0.ReconcileNow(t.Context()); err != nil { // lost: more than 5 changes
		t.Fatal(err)
	}
	// B4 starts after B0's reading, before anyone overwrote Q's value.
	b4 := replica()
	if l := lookup(t, b4, q); len(l.Entries) != 1 {
		t.Fatalf("a replica started after the lost reading answers Q with %d entries (Redis' clean set), want its black entry", len(l.Entries))
	}
	if err := b3.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l := lookup(t, b3, q); len(l.Entries) != 1 {
		t.Fatalf("B3 after the next reading answers Q with %d entries (its copy of Redis' clean set), want its black entry", len(l.Entries))
	}
	if l := lookup(t, b0, q); len(l.Entries) != 1 {
		t.Fatalf("B0 answers Q with %d entries", len(l.Entries))
	}
}

// TestRedisOutageReachesReplicaStartedAfter: Redis is killed and comes back
// with its data (persistence); meanwhile a black entry was added on B0,
// which could invalidate nowhere but locally, and B0's reading went past
// the change. B1, started after Redis is back, must not take the subject's
// clean set that Redis kept.
func TestRedisOutageReachesReplicaStartedAfter(t *testing.T) {
	t.Parallel()
	pr := testenv.StartPersistentRedis(t)
	schema := testenv.FreshSchema(t, "credgate_cache")
	opts := []Option{WithRedis(&redis.Options{Addr: pr.Addr()}), WithPrefix("out"), WithReconcileInterval(time.Hour), WithRedisBreaker(1, 50*time.Millisecond)}
	st0 := pgStore(t, "", schema)
	b0 := newTier(t, st0, st0, opts...)
	q := testenv.USCC(t, "91110000MA0000072")
	if l := lookup(t, b0, q); len(l.Entries) != 0 {
		t.Fatalf("Q before: %d entries", len(l.Entries))
	}
	waitFor(t, "Q's clean set in Redis", 5*time.Second, func() bool { return b0.stats.fillsWritten.Load() == 1 })

	pr.Stop()
	insert(t, st0, blackEntry("q", q))
	b0.Invalidate(q)
	if err := b0.ReconcileNow(t.Context()); err != nil { // the reading passes the change; Redis still down
		t.Fatal(err)
	}
	if l := lookup(t, b0, q); len(l.Entries) != 1 {
		t.Fatalf("B0 during the outage: %d entries", len(l.Entries))
	}

	pr.Start()
	rdb := redis.NewClient(&redis.Options{Addr: pr.Addr()})
	defer rdb.Close()
	if v, err := rdb.Get(t.Context(), b0.redis.valueKey(q)).Result(); err != nil || v == "" {
		t.Fatalf("Redis came back without Q's old value (%v): the test tests nothing", err)
	}
	// B0 reads again once Redis answers (its subscription's return asks
	// for a reading at once; here the test asks).
	waitFor(t, "B0 reads with Redis back", 10*time.Second, func() bool {
		_ = b0.ReconcileNow(t.Context())
		return b0.Status(t.Context()).(Status).Redis == "ok"
	})

	st1 := pgStore(t, "", schema)
	b1 := newTier(t, st1, st1, opts...)
	if l := lookup(t, b1, q); len(l.Entries) != 1 {
		t.Fatalf("a replica started after the outage answers Q with %d entries (Redis' clean set), want its black entry", len(l.Entries))
	}
}

// TestRedisCopyHasMaximumAge: a Redis value that missed an invalidation and
// that no replica knows of (every replica that saw the change gone, say)
// is taken by a replica started after the change. Its copy is held to
// cache.redis_ttl: past it, the reconciler's confirmations no longer
// vouch for it and it is read again from the store (or, with the store
// failing, answered as old as it is).
func TestRedisCopyHasMaximumAge(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	st := sqliteStore(t)
	a := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("age"), WithReconcileInterval(time.Hour))
	q := testenv.USCC(t, "91110000MA0000073")
	lookup(t, a, q)
	waitFor(t, "Q's clean set in Redis", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	insert(t, st, blackEntry("q", q)) // no hook, and A never reads its change log again

	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	const ttl = time.Minute
	cs := &countingStore{EntryLookup: st}
	b := newTier(t, cs, st, WithRedis(rs.options()), WithPrefix("age"), WithReconcileInterval(time.Hour),
		WithRedisTTL(ttl), WithClock(clock))
	if l := lookup(t, b, q); len(l.Entries) != 0 || b.Stats().RedisHits != 1 {
		t.Fatalf("B's first lookup: %d entries, stats %+v; the test expects the clean set from Redis", len(l.Entries), b.Stats())
	}
	loaded := clock()

	now.Add(int64(2 * ttl))
	if err := b.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	cs.fail.Store(true)
	if l := lookup(t, b, q); l.AsOf.After(loaded) {
		t.Fatalf("the over-age copy, store failing, answered as of %v (confirmed %v), want its own age (before %v)", l.AsOf, b.Confirmed(), loaded)
	}
	cs.fail.Store(false)
	if l := lookup(t, b, q); len(l.Entries) != 1 {
		t.Fatalf("the copy of Redis' value past cache.redis_ttl answered %d entries, want it read again (1)", len(l.Entries))
	}
}

// TestNoRedisValueBeforeTheMarkIsRead: until a tier has read the
// deployment's trust mark it takes nothing from Redis.
func TestNoRedisValueBeforeTheMarkIsRead(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	st := sqliteStore(t)
	a := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("mark"), WithReconcileInterval(time.Hour))
	q := testenv.USCC(t, "91110000MA0000074")
	lookup(t, a, q)
	waitFor(t, "Q's set in Redis", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	b, err := New(st, st, WithRedis(rs.options()), WithRedisSecret(testSecret), WithPrefix("mark"), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	lookup(t, b, q)
	if s := b.Stats(); s.RedisHits != 0 || s.StoreLoads != 1 {
		t.Fatalf("before the mark is read: %+v, want a store read", s)
	}
	b.Start(t.Context())
	lookup(t, b, testenv.USCC(t, "91110000MA0000075"))
	before := b.Stats()
	b.local.Invalidate(q)
	lookup(t, b, q)
	if s := b.Stats(); s.RedisHits != before.RedisHits+1 {
		t.Fatalf("after the mark is read: %+v → %+v, want a Redis hit", before, s)
	}
}
