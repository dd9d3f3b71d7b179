package gateway_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/gateway"
)

// roundTrips counts the commands a Redis client sends.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// TestQuotaLeasesShareRedisWithoutOvershoot: three replicas share one
// quota through Redis under concurrent load. Together they never accept
// more than the quota, they accept nearly all of it (what is lost is at
// most one lease per replica), and they make a small fraction of one
// round trip per request.
func TestQuotaLeasesShareRedisWithoutOvershoot(t *testing.T) {
	base := testRedis(t)
	prefix := "credgate-test:" + randHex()
	dropPrefix(t, base, prefix)
	const (
		quota    = 6400
		replicas = 3
		workers  = 8 // per replica
	)
	var rt roundTrips
	client := redis.NewClient(&redis.Options{Addr: base.Options().Addr})
	client.AddHook(&rt)
	t.Cleanup(func() { client.Close() })
	ls := make([]*gateway.RateLimiter, replicas)
	for i := range ls {
		l, err := gateway.NewRateLimiter("10-M", gateway.WithRedisStore(client, prefix))
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, l := range ls {
		for !l.Shared() {
			if time.Now().After(deadline) {
				t.Fatal("limiters did not connect to Redis")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx := context.Background()
	rate := "6400-H"
	before := rt.n.Load()
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
		for range workers {
			wg.Go(func() {
				// Each worker asks until it is refused several times in a
				// row: the quota is spent as far as it can see.
				misses := 0
				for misses < 3 {
					lc, err := l.ChargeQuota(ctx, "bank", 1, rate)
					if err != nil {
						t.Error(err)
						return
					}
					if lc.Reached {
						refused.Add(1)
						misses++
						continue
					}
					accepted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	trips := rt.n.Load() - before
	maxLease := int64(quota / 64)
	t.Logf("accepted %d of %d, refused %d, %d Redis round trips", accepted.Load(), quota, refused.Load(), trips)
	if accepted.Load() > quota {
		t.Fatalf("replicas accepted %d requests on a quota of %d", accepted.Load(), quota)
	}
	if lost := quota - accepted.Load(); lost > replicas*maxLease {
		t.Fatalf("%d units of the quota lost, more than one lease (%d) per replica", lost, maxLease)
	}
	if trips > quota/10 {
		t.Fatalf("%d Redis round trips for %d requests: not leased", trips, accepted.Load())
	}
}

// BenchmarkQuotaCharge: a request's charge to its quota through Redis,
// one round trip each (per_request, as before leases) against leased
// (quota.go), interleaved in one run; every CPU charges at once.
//
//	go test -run '^$' -bench BenchmarkQuotaCharge -benchtime 20000x -count 3 ./gateway
func BenchmarkQuotaCharge(b *testing.B) {
	base := testRedis(b)
	prefix := "credgate-bench:" + randHex()
	l, err := gateway.NewRateLimiter("10-M", gateway.WithRedisStore(base, prefix))
	if err != nil {
		b.Fatal(err)
	}
	for !l.Shared() {
		time.Sleep(10 * time.Millisecond)
	}
	defer base.Del(context.Background(), prefix+":quota:per_request", prefix+":quota:leased")
	const rate = "1000000000-H"
	for _, bc := range []struct {
		name   string
		charge func(ctx context.Context, id string) error
	}{
		{"per_request", func(ctx context.Context, id string) error {
			_, err := l.IncrementQuota(ctx, id, 1, rate)
			return err
		}},
		{"leased", func(ctx context.Context, id string) error {
			_, err := l.ChargeQuota(ctx, id, 1, rate)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.charge(b.Context(), bc.name); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
