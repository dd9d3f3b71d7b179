// Package postgres is credgate's shared storage adapter: a service.Store in
// PostgreSQL, reached through a pgx v5 connection pool, for deployments that
// run several gateway processes against one database.
//
// Migrations are embedded and applied at Open under a session advisory
// lock, so processes starting together do not race. Evidence appenders, in
// this process or any other, are serialised by a transaction-scoped advisory
// lock, so that the log's indexes are consecutive and never reused.
// Commits rely on PostgreSQL's synchronous_commit (on by default) for
// durability.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/service"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory lock keys. Migrations take the single-bigint key, database-wide;
// evidence appenders take the (class, schema hash) two-int4 key, so that
// stores in different schemas of one database do not wait on each other.
// PostgreSQL keeps the two key spaces apart.
const (
	migrateLockKey  int64 = 0x6372656467617465 // "credgate"
	appendLockClass int32 = 0x63726467         // "crdg"
	uniqueViolation       = "23505"
)

// Store is a service.Store backed by PostgreSQL. It is safe for concurrent
// use, and several Stores (in one process or many) may share a database.
//
// Most of its methods are the shared SQL logic (adapters/internal/sqlcommon);
// the connection setup, the change feed and AppendBatch are PostgreSQL's own.
type Store struct {
	*common
	pool *pgxpool.Pool
	// appendLockKey sequences appenders to this schema's evidence log.
	appendLockKey int32
	// schema is the tables' schema (current_schema() of a connection).
	schema string
	// watchIdle: a watch of the change log quiet this long pings.
	watchIdle time.Duration
	// chain is where this Store's appends leave the log (evidence.go).
	chain appendChain
	// rowsPool keeps the argument arrays of evidence commits (*recordRows).
	rowsPool sync.Pool
}

type common = sqlcommon.Store

var _ service.Store = (*Store)(nil)

type config struct {
	schema    string
	maxConns  int32
	watchIdle time.Duration
}

// Option configures Open.
type Option func(*config)

// WithSchema keeps every table in the named schema: Open creates it if
// missing and every pooled connection gets it as its search_path.
func WithSchema(name string) Option {
	return func(c *config) { c.schema = name }
}

// WithMaxConns sets the pool size (default: pgxpool's, or the URL's
// pool_max_conns).
func WithMaxConns(n int32) Option {
	return func(c *config) { c.maxConns = n }
}

// WithWatchIdle sets how long a watch of the change log
// (WatchSubjectChanges) hears nothing before it pings its connection, and
// bounds the ping (default 30 s, the ping 10 s).
func WithWatchIdle(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.watchIdle = d
		}
	}
}

// Open connects to the database at url (a libpq URL or keyword/value
// string, pgxpool parameters allowed), applies pending migrations and
// returns the Store. A database migrated by a newer credgate is refused
// (ErrSchemaTooNew); a migration that keeps failing on its tables' locks
// is reported as such (see migrate).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{watchIdle: defaultWatchIdle}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.schema}.Sanitize()
	}
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	if err := migrate(ctx, pcfg.ConnConfig.Copy(), cfg.schema, migrations(), defaultMigrateWaits); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(schema))
	return &Store{common: sqlcommon.New(db{pool}, dialect), pool: pool, appendLockKey: int32(h.Sum32()), schema: schema,
		watchIdle: cfg.watchIdle}, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// ErrSchemaTooNew: the database was migrated by a newer credgate (Open
// refuses it with a *SchemaTooNewError naming both versions).
var ErrSchemaTooNew = sqlcommon.ErrSchemaTooNew

// SchemaTooNewError names the database's schema version and this
// binary's newest migration.
type SchemaTooNewError = sqlcommon.SchemaTooNewError

// Versions are a database's schema version (Applied, its highest
// migration; 0 for none) and this binary's newest migration (Known).
type Versions = sqlcommon.Versions

// migrations are the embedded migrations, NNNN_name.sql at the root.
func migrations() fs.FS {
	fsys, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // "migrations" is a valid path: fs.Sub cannot fail on it
	}
	return fsys
}

// SchemaVersions reads the schema version of the database at url (in the
// schema of WithSchema, if given), without migrating, creating or locking
// anything: a schema without credgate's tables is at version 0.
func SchemaVersions(ctx context.Context, url string, opts ...Option) (Versions, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ccfg, err := pgx.ParseConfig(url)
	if err != nil {
		return Versions{}, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.schema != "" {
		ccfg.RuntimeParams["search_path"] = pgx.Identifier{cfg.schema}.Sanitize()
	}
	db := stdlib.OpenDB(*ccfg)
	defer db.Close()
	v, err := sqlcommon.SchemaVersions(ctx, db, database.DialectPostgres, migrations())
	if err != nil {
		return Versions{}, fmt.Errorf("postgres: %w", err)
	}
	return v, nil
}

// migrateWaits bound how long migrating waits for the tables it changes.
type migrateWaits struct {
	// lockTimeout is each statement's lock_timeout: a migration that
	// cannot take a table's lock within it fails and is rolled back,
	// rather than queue every reader and writer of the table behind its
	// request for as long as a long transaction holds the table.
	lockTimeout time.Duration
	// attempts: how many times migrating is tried when it fails on a lock
	// (lock_timeout, or a deadlock with another session), pause apart,
	// the pause doubling each time.
	attempts int
	pause    time.Duration
}

// defaultMigrateWaits: 10 s for each lock, five attempts over about 15 s
// of pauses (a minute at most, counting the waits).
var defaultMigrateWaits = migrateWaits{lockTimeout: 10 * time.Second, attempts: 5, pause: time.Second}

// lockFailure is the PostgreSQL error of a migration that failed on a
// lock (lock_timeout, or a deadlock), or nil.
func lockFailure(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == deadlockDetected || pe.Code == lockNotAvailable) {
		return pe
	}
	return nil
}

const (
	deadlockDetected = "40P01"
	lockNotAvailable = "55P03"
)

// lockFailed says what a migration that kept failing on locks met, and
// what to do.
func lockFailed(err error, pe *pgconn.PgError, attempts int, w migrateWaits) error {
	which := "migrating"
	var partial *goose.PartialError
	if errors.As(err, &partial) && partial.Failed != nil && partial.Failed.Source != nil {
		which = fmt.Sprintf("migration %d", partial.Failed.Source.Version)
	}
	what := "deadlocked with another session"
	if pe.Code == lockNotAvailable {
		what = fmt.Sprintf("waited more than %s (lock_timeout) for a table's lock", w.lockTimeout)
	}
	times := "once, rolled back whole"
	if attempts > 1 {
		times = fmt.Sprintf("%d times, rolled back whole each time", attempts)
	}
	return fmt.Errorf("%s %s %s: replicas of the previous release (their appends) or long reads hold "+
		"the tables it changes; run credgate migrate again when the database is quieter, or stop the old "+
		"replicas first: %w", which, what, times, err)
}

// migrate applies the migrations of fsys not applied yet (goose, through
// pgx's database/sql driver). It holds a session advisory lock on a
// connection of its own, closed at the end, so that processes starting
// together migrate one after the other and the lock is released even if
// migrating fails half-way. A schema newer than fsys's newest migration is
// refused (ErrSchemaTooNew).
//
// Each migration runs in a transaction whose statements wait at most
// w.lockTimeout for a lock; one that fails on a lock (that timeout, or a
// deadlock with the previous release's replicas, which keep appending
// during a rolling upgrade) is rolled back whole, and migrating is tried
// again, up to w.attempts times.
func migrate(ctx context.Context, ccfg *pgx.ConnConfig, schema string, fsys fs.FS, w migrateWaits) error {
	conn, err := pgx.ConnectConfig(ctx, ccfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %q: %w", schema, err)
		}
	}
	mcfg := ccfg.Copy()
	if w.lockTimeout > 0 {
		mcfg.RuntimeParams["lock_timeout"] = fmt.Sprint(w.lockTimeout.Milliseconds())
	}
	db := stdlib.OpenDB(*mcfg)
	defer db.Close()
	pause := w.pause
	for attempt := 1; ; attempt++ {
		err = sqlcommon.Migrate(ctx, db, database.DialectPostgres, fsys)
		pe := lockFailure(err)
		if pe == nil {
			break
		}
		if attempt >= max(w.attempts, 1) {
			return lockFailed(err, pe, attempt, w)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause *= 2
	}
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}

// mapErr turns unique-key violations into service.ErrConflict, keeping the
// driver error in the chain.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == uniqueViolation {
		return fmt.Errorf("%w: %w", service.ErrConflict, err)
	}
	return err
}
