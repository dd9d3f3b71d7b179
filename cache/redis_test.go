package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// replicas returns n tiers sharing one fresh PostgreSQL schema (each with
// a pool of its own, as separate processes would have) and one Redis.
func replicas(t *testing.T, rs *redisServer, n int, opts ...Option) ([]*Tier, []service.EntryLookup) {
	t.Helper()
	schema := testenv.FreshSchema(t, "credgate_cache")
	var tiers []*Tier
	var stores []service.EntryLookup
	for range n {
		st := pgStore(t, "", schema)
		tiers = append(tiers, newTier(t, st, st, append([]Option{WithRedis(rs.options()), WithPrefix("t")}, opts...)...))
		stores = append(stores, st)
	}
	return tiers, stores
}

func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRedisTierSharedBetweenReplicas(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	tiers, _ := replicas(t, rs, 2, WithReconcileInterval(time.Hour))
	a, b := tiers[0], tiers[1]
	subject := testenv.USCC(t, "91110000MA0000011")
	lookup(t, a, subject)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	before := b.Stats()
	lookup(t, b, subject)
	after := b.Stats()
	if after.RedisHits-before.RedisHits != 1 || after.StoreLoads != before.StoreLoads {
		t.Fatalf("B's miss: %+v → %+v; want a Redis hit, no store read", before, after)
	}
	if rt := after.RedisRoundTrips[pathLookup] - before.RedisRoundTrips[pathLookup]; rt != 1 {
		t.Fatalf("a Redis hit took %d round trips, want 1", rt)
	}
	lookup(t, b, subject)
	if rt := b.Stats().RedisRoundTrips[pathLookup] - after.RedisRoundTrips[pathLookup]; rt != 0 {
		t.Fatalf("a local hit took %d Redis round trips, want 0", rt)
	}
	// A full miss: one round trip on the lookup's path.
	before = a.Stats()
	lookup(t, a, testenv.USCC(t, "91110000MA0000012"))
	if rt := a.Stats().RedisRoundTrips[pathLookup] - before.RedisRoundTrips[pathLookup]; rt != 1 {
		t.Fatalf("a full miss took %d Redis round trips on its path, want 1", rt)
	}
}

// TestPubSubInvalidatesOtherReplicas: a change made through one replica
// reaches another within a second although neither reconciles (their
// interval is an hour): the message, and the Redis delete before it.
func TestPubSubInvalidatesOtherReplicas(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	tiers, stores := replicas(t, rs, 2, WithReconcileInterval(time.Hour))
	a, b := tiers[0], tiers[1]
	waitFor(t, "B subscribed", 5*time.Second, func() bool { return b.redis.subscribed.Load() })
	subject := testenv.USCC(t, "91110000MA0000013")
	lookup(t, a, subject)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	lookup(t, b, subject) // B holds the clean set, from Redis
	insert(t, stores[0].(entryWriter), blackEntry("e1", subject))
	a.Invalidate(subject)
	took := waitFor(t, "B sees the entry", time.Second, func() bool { return len(lookup(t, b, subject).Entries) == 1 })
	t.Logf("the change reached the other replica in %v", took)
}

// TestRedisDownAndBack stops this test's own Redis under two replicas:
// lookups go on from the local tier and the store without an error, the
// breaker opens, and when Redis is back the tier recovers: breaker closed,
// subscription restored, values shared again.
func TestRedisDownAndBack(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	tiers, stores := replicas(t, rs, 2, WithReconcileInterval(200*time.Millisecond), WithRedisBreaker(2, 300*time.Millisecond))
	a, b := tiers[0], tiers[1]
	warm := testenv.USCC(t, "91110000MA0000014")
	lookup(t, a, warm)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() >= 1 })

	rs.stop()
	errorsBefore := a.Stats().Errors
	for i := range 20 {
		lookup(t, a, warm)                                              // a local hit
		lookup(t, a, testenv.USCC(t, fmt.Sprintf("91110000MB%07d", i))) // a full miss: to the store
		lookup(t, b, warm)                                              // B's miss: the store, Redis being down
	}
	if a.Stats().Errors != errorsBefore {
		t.Fatal("lookups failed while Redis was down")
	}
	waitFor(t, "breaker open", 5*time.Second, func() bool { return a.Breakers()["redis"] == "open" })
	if st := a.Status(t.Context()).(Status); st.Redis != "down" {
		t.Fatalf("status while Redis is down: %+v", st)
	}
	// A change while Redis is down reaches B through reconciliation.
	insert(t, stores[0].(entryWriter), blackEntry("e1", warm))
	a.Invalidate(warm)
	waitFor(t, "B sees the change without Redis", 3*time.Second, func() bool { return len(lookup(t, b, warm).Entries) == 1 })

	rs.start()
	// Both replicas: each has a breaker of its own, and B's opened later
	// than A's may still be open when A's has closed.
	took := waitFor(t, "recovery", 10*time.Second, func() bool {
		for _, tier := range []*Tier{a, b} {
			st := tier.Status(t.Context()).(Status)
			if st.Redis != "ok" || st.Invalidation != "pubsub" || tier.Breakers()["redis"] != "closed" {
				return false
			}
		}
		return true
	})
	t.Logf("the tier recovered %v after Redis came back", took)
	fresh := testenv.USCC(t, "91110000MA0000015")
	lookup(t, a, fresh)
	waitFor(t, "a fill after recovery", 5*time.Second, func() bool {
		v, _ := redis.NewClient(rs.options()).Get(t.Context(), a.redis.valueKey(fresh)).Result()
		return v != ""
	})
	before := b.Stats()
	lookup(t, b, fresh)
	if b.Stats().RedisHits != before.RedisHits+1 {
		t.Fatal("after recovery, B did not get A's value from Redis")
	}
}

// TestFillAfterInvalidationIsDropped: a value read from the store before
// an invalidation must not reach Redis after it.
func TestFillAfterInvalidationIsDropped(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("f"), WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000016")
	s, ticket := tier.redis.get(t.Context(), subject)
	if s != nil || ticket == nil {
		t.Fatalf("get on an empty Redis: %v %v", s, ticket)
	}
	old := &set{loadedAt: time.Now().UnixNano()}
	tier.redis.invalidate(t.Context(), []string{subject})
	tier.redis.fill(subject, old, ticket)
	waitFor(t, "the fill processed", 5*time.Second, func() bool {
		return tier.stats.fillsWritten.Load()+tier.stats.fillsDropped.Load() == 1
	})
	if s, _ := tier.redis.get(t.Context(), subject); s != nil {
		t.Fatal("a fill that raced an invalidation was stored")
	}
	// With the current generation, a fill goes through.
	_, ticket = tier.redis.get(t.Context(), subject)
	tier.redis.fill(subject, old, ticket)
	waitFor(t, "the second fill", 5*time.Second, func() bool {
		s, _ := tier.redis.get(t.Context(), subject)
		return s != nil
	})
}

// TestDistrustedValuesAreMisses: after this replica failed to invalidate
// in Redis, values read before are not trusted.
func TestDistrustedValuesAreMisses(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("d"), WithReconcileInterval(time.Hour))
	subject := testenv.USCC(t, "91110000MA0000017")
	_, ticket := tier.redis.get(t.Context(), subject)
	tier.redis.fill(subject, &set{loadedAt: time.Now().Add(-time.Second).UnixNano()}, ticket)
	waitFor(t, "the fill", 5*time.Second, func() bool { s, _ := tier.redis.get(t.Context(), subject); return s != nil })
	tier.redis.distrust()
	if s, _ := tier.redis.get(t.Context(), subject); s != nil {
		t.Fatal("a value read before the trust mark was served")
	}
}

var _ service.EntryLookup = (*Tier)(nil)
