// Package testenv finds the real PostgreSQL and Redis that credgate's
// integration tests use, and gives each test its own database or schema.
// A missing server skips the test with a message naming it, except under
// CI=true, where it fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the test database used when
// CREDGATE_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Need skips tb because a server it needs is missing, except under CI=true,
// where it fails.
func Need(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true: "+format, args...)
	}
	tb.Skipf(format+"; skipping", args...)
}

// PostgresURL returns $CREDGATE_TEST_POSTGRES_URL, or DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv("CREDGATE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Redact hides the password of a URL for logs.
func Redact(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(the URL in CREDGATE_TEST_POSTGRES_URL)"
	}
	return u.Redacted()
}

// connect opens an administrative connection to the test database, or
// calls Need when it does not answer.
func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		if err = conn.Ping(ctx); err != nil {
			conn.Close(context.Background())
		}
	}
	if err != nil {
		Need(tb, "PostgreSQL unreachable at %s (set CREDGATE_TEST_POSTGRES_URL): %v", Redact(url), err)
	}
	return conn
}

// Postgres returns the URL of the test database and an administrative
// connection to it, closed at cleanup. An unreachable database is a Need.
func Postgres(tb testing.TB) (url string, admin *pgx.Conn) {
	tb.Helper()
	url = PostgresURL()
	admin = connect(tb, url)
	tb.Cleanup(func() { admin.Close(context.Background()) })
	return url, admin
}

// FreshDatabase creates the database <prefix>_<nanoseconds> on the test
// server, drops it WITH (FORCE) at cleanup and returns its URL.
func FreshDatabase(tb testing.TB, prefix string) string {
	tb.Helper()
	base := PostgresURL()
	conn := connect(tb, base)
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	conn.Close(context.Background())
	if err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, err := neturl.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", Redact(base), err)
	}
	u.Path = "/" + name
	return u.String()
}

// FreshSchema names a new schema <prefix>_<random hex> in the test
// database and drops it (CASCADE) at cleanup. The schema itself is left to
// whoever opens a store in it. Cleanups run last-registered first, so
// stores opened after this call are closed before the schema is dropped.
func FreshSchema(tb testing.TB, prefix string) string {
	tb.Helper()
	url := PostgresURL()
	connect(tb, url).Close(context.Background())
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
			conn.Close(ctx)
		}
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}
