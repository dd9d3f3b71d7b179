package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// openRedis builds serve's one Redis client from --redis-url (nil when
// unset), shared by the cache tier and the rate limiter. Neither may hold
// a check up: no retries — of commands (MaxRetries) nor of dials (one
// attempt per dial: go-redis otherwise dials five times, 100 ms apart,
// for every connection it fails to open) — context deadlines honoured
// (each caller bounds its own round trips), short dial and I/O timeouts as
// a backstop. The cache tier talks through a clone with its own timeout
// that shares this client's connection pool.
func openRedis(url string) (*redis.Client, error) {
	if url == "" {
		return nil, nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("redis.url (--redis-url, CREDGATE_REDIS_URL) is not a valid Redis URL")
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = 250*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	o.MaxRetries = -1
	o.DialerRetries = 1 // attempts in all; 0 would mean go-redis's default, 5
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// redisLog is where go-redis's own messages go (a failed dial, a pool
// error): the logger of the server started last in this process.
var (
	redisLog     atomic.Pointer[slog.Logger]
	redisLogOnce sync.Once
)

// useRedisLogger sends go-redis's messages to logger, as warnings with
// component=redis, instead of the plain text lines go-redis writes to
// standard error by default, which would break log.format=json. go-redis
// keeps one logger for the whole process (redis.SetLogger), so it is set
// once, to an adapter that reads the logger each serve stores: a process
// runs one server, except in tests.
func useRedisLogger(logger *slog.Logger) {
	redisLog.Store(logger)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

// redisLogger is go-redis's Logging onto redisLog.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l := redisLog.Load()
	if l == nil {
		return
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.WarnContext(ctx, msg, "component", "redis")
}
