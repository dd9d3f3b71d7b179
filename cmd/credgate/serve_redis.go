package main

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// openRedis builds serve's one Redis client from --redis-url (nil when
// unset), shared by the cache tier and the rate limiter. Neither may hold
// a check up: no retries, context deadlines honoured (each caller bounds
// its own round trips), short dial and I/O timeouts as a backstop. The
// cache tier talks through a clone with its own timeout that shares this
// client's connection pool.
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
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}
