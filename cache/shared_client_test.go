package cache

import (
	"maps"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/internal/testenv"
)

// A tier over a client shared with others (serve's one Redis client) talks
// through a clone: its round trips are its own, other users' commands are
// not counted, and closing the tier leaves the client open.
func TestSharedRedisClient(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	shared := redis.NewClient(&redis.Options{Addr: rs.addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer shared.Close()
	st := sqliteStore(t)
	a, err := New(st, st, WithRedisClient(shared), WithRedisSecret(testSecret), WithPrefix("s"), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a.Start(t.Context())
	b := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("s"), WithReconcileInterval(time.Hour))

	subject := testenv.USCC(t, "91110000MA0000021")
	lookup(t, a, subject)
	waitFor(t, "A's fill", 5*time.Second, func() bool { return a.stats.fillsWritten.Load() == 1 })
	before := b.Stats()
	lookup(t, b, subject)
	if after := b.Stats(); after.RedisHits-before.RedisHits != 1 || after.StoreLoads != before.StoreLoads {
		t.Fatalf("B did not find A's value in Redis: %+v → %+v", before, after)
	}

	trips := a.Stats().RedisRoundTrips
	for range 3 {
		if err := shared.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Stats().RedisRoundTrips; !maps.Equal(got, trips) {
		t.Fatalf("other users' commands counted as the tier's: %v → %v", trips, got)
	}

	a.Close()
	if err := shared.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("closing the tier closed the shared client: %v", err)
	}
}
