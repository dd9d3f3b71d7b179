package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/testenv"
)

// go-redis's own messages reach serve's logger as JSON lines, not plain
// text on standard error; and a Redis that refuses connections is dialled
// once per connection, as CONFIGURATION.md promises (no retries), not
// five times 100 ms apart.
func TestRedisLogsThroughServeLogger(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	logs := &testenv.SyncBuffer{}
	useRedisLogger(newLogger(config.Log{Level: "info", Format: "json"}, logs))
	rdb, err := openRedis("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a refused dial took %s: retried", took)
	}
	var line struct {
		Level, Msg, Component string
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("not a JSON log line: %q", logs.String())
	}
	if line.Level != "WARN" || line.Component != "redis" || !strings.Contains(line.Msg, "failed to dial after 1 attempts") || strings.HasPrefix(line.Msg, "redis: ") {
		t.Errorf("log line %+v", line)
	}
}
