package cache

import (
	"syscall"
	"testing"
	"time"
)

// TestFrozenRedisIsNotPubSub: a frozen Redis (SIGSTOP) leaves the
// subscription without an error; /readyz must not claim invalidation by
// pub/sub while Redis does not answer.
func TestFrozenRedisIsNotPubSub(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	st := sqliteStore(t)
	tier := newTier(t, st, st, WithRedis(rs.options()), WithPrefix("frozen"), WithReconcileInterval(100*time.Millisecond),
		WithRedisBreaker(2, 200*time.Millisecond))
	status := func() Status { return tier.Status(t.Context()).(Status) }
	waitFor(t, "pub/sub", 5*time.Second, func() bool { return status().Invalidation == "pubsub" })
	rs.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { rs.Signal(syscall.SIGCONT) })
	waitFor(t, "reconcile_only while Redis is frozen", 5*time.Second, func() bool {
		st := status()
		return st.Invalidation == "reconcile_only" && st.Redis == "down"
	})
	rs.Signal(syscall.SIGCONT)
	waitFor(t, "pub/sub when Redis thaws", 10*time.Second, func() bool {
		st := status()
		return st.Invalidation == "pubsub" && st.Redis == "ok"
	})
}
