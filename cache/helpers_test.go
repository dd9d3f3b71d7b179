package cache

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

// pgStore opens a store in schema through url (default: the test
// database).
func pgStore(tb testing.TB, url, schema string) *postgres.Store {
	tb.Helper()
	if url == "" {
		url = testenv.PostgresURL()
	}
	s, err := postgres.Open(context.Background(), url, postgres.WithSchema(schema), postgres.WithMaxConns(4))
	if err != nil {
		tb.Fatalf("open PostgreSQL store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func sqliteStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), sqlitetest.Dir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// entryWriter is a store the tests write entries to.
type entryWriter interface {
	InsertEntries(context.Context, []policy.Entry) error
}

// insert writes entries to st, failing the test otherwise.
func insert(tb testing.TB, st entryWriter, entries ...policy.Entry) {
	tb.Helper()
	if err := st.InsertEntries(tb.Context(), entries); err != nil {
		tb.Fatal(err)
	}
}

// redisServer is a redis-server of the test's own (testenv.StartRedis)
// that the test can stop and start again.
type redisServer struct{ *testenv.PrivateRedis }

func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	return &redisServer{testenv.StartRedis(tb)}
}

func (s *redisServer) addr() string { return s.Addr() }

func (s *redisServer) options() *redis.Options { return &redis.Options{Addr: s.Addr()} }

func (s *redisServer) start() { s.Start() }

func (s *redisServer) stop() { s.Stop() }

// proxy is a TCP proxy in front of a real server that a test can cut (the
// server becomes unreachable: new connections refused, open ones reset)
// and restore, to make the database unavailable without stopping it.
type proxy struct {
	tb     testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	p := &proxy{tb: tb, target: target, addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(tb)), conns: map[net.Conn]struct{}{}}
	p.restore()
	tb.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	for range 50 {
		if p.ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatalf("proxy listen: %v", err)
	}
	go p.accept(p.ln)
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// blackEntry is a serious-dishonesty entry on subject, published a day
// ago.
func blackEntry(id, subject string) policy.Entry {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return policy.Entry{
		ID: id, Subject: policy.SubjectID{Kind: policy.KindOrganization, Value: subject},
		List: "safety_production_blacklist", OriginatingDepartment: "应急管理部", Reason: "重大事故",
		LegalBasis: "《安全生产法》", DecidedAt: now.Add(-48 * time.Hour), PublishedAt: now.Add(-24 * time.Hour),
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}
