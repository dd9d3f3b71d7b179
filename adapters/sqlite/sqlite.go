// Package sqlite is credgate's single-node storage adapter: a service.Store
// kept in one SQLite database file (modernc.org/sqlite, no cgo).
//
// The database runs in WAL mode with synchronous=FULL, so a transaction that
// has committed has been fsync'd and survives a crash or power loss. SQLite
// has one writer at a time: the Store funnels every write through a pool of
// exactly one connection (transactions begin IMMEDIATE), so concurrent
// writers in the process queue in Go instead of failing with SQLITE_BUSY,
// while reads run concurrently on a separate read-only pool. The WAL is
// copied back into the database file by a goroutine with a connection of its
// own (checkpoint.go), not by the commit that happens to cross SQLite's mark,
// and is bounded at about 16 384 frames (64 MiB) beside the database.
//
// Times are stored as INTEGER microseconds since the Unix epoch and returned
// in UTC.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/service"
)

// FileName is the name of the database file inside the directory given to
// Open.
const FileName = "credgate.db"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are the schema migrations Open applies, NNNN_name.sql files
// with goose annotations at the root of the returned file system. Two
// stores migrated from the same set have the same schema, which is what
// lets a test copy one migrated store instead of migrating each.
func Migrations() fs.FS {
	fsys, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // "migrations" is a valid path: fs.Sub cannot fail on it
	}
	return fsys
}

// Store is a service.Store backed by SQLite. It is safe for concurrent use.
// Most of its methods are the shared SQL logic (adapters/internal/sqlcommon);
// the change feed and the connection setup are SQLite's own.
type Store struct {
	*common
	w *sql.DB // the one write connection
	r *sql.DB // read-only pool
	// prepared are the evidence inserts, each prepared once on w.
	prepared *preparedStmts
	ckpt     *checkpointer // nil: SQLite's automatic checkpoint
}

type common = sqlcommon.Store

var _ service.Store = (*Store)(nil)

type config struct {
	busyTimeout time.Duration
	readConns   int
	// ckptInterval 0: the writer checkpoints itself (SQLite's automatic
	// checkpoint); else the checkpointer's.
	ckptInterval  time.Duration
	ckptMaxFrames int64
	logger        *slog.Logger // WithLogger
	// writeCacheKiB and readCacheKiB: the page cache (PRAGMA cache_size)
	// of the writer and of each reader, in KiB; 0 leaves SQLite's default
	// (2 000 KiB). mmapBytes: PRAGMA mmap_size of both; 0 none. Only the
	// size benchmarks set them.
	writeCacheKiB, readCacheKiB int
	mmapBytes                   int64
	// pageSize: PRAGMA page_size of a database Open creates, in bytes (a
	// power of two, 512 to 65 536); 0 leaves SQLite's (4 096). An existing
	// file keeps the size it was created with. Only the size benchmarks
	// and their tests set it.
	pageSize int
}

// The checkpointer's defaults: a PASSIVE checkpoint at most every quarter
// second, a RESTART once the WAL holds 16 384 frames (64 MiB of 4 KiB pages).
const (
	defaultCheckpointInterval  = 250 * time.Millisecond
	defaultCheckpointMaxFrames = 16384
)

// Option configures Open.
type Option func(*config)

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process before failing with SQLITE_BUSY (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithCheckpoint sets how the WAL is copied back into the database file: a
// PASSIVE checkpoint from a goroutine of its own at most every interval, a
// RESTART once the WAL holds maxFrames frames (defaults 250 ms and 16 384).
// An interval of 0 leaves it to SQLite's automatic checkpoint in the
// committing connection instead.
func WithCheckpoint(interval time.Duration, maxFrames int) Option {
	return func(c *config) {
		c.ckptInterval = max(interval, 0)
		if maxFrames > 0 {
			c.ckptMaxFrames = int64(maxFrames)
		}
	}
}

// WithReadConns sets the size of the read pool (default: the number of
// CPUs, at least 4).
func WithReadConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readConns = n
		}
	}
}

// Open opens (creating it if needed) dir/credgate.db, applies pending
// migrations and returns the Store. The directory is created if missing.
// A database migrated by a newer credgate is refused (ErrSchemaTooNew),
// and so is one with migrations pending while another process holds dir's
// lock (ErrDataDirLocked): see migrate.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: 5 * time.Second, readConns: max(4, runtime.NumCPU()),
		ckptInterval: defaultCheckpointInterval, ckptMaxFrames: defaultCheckpointMaxFrames}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?'", path)
	}
	if err := ownerOnly(path); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if cfg.pageSize > 0 {
		if err := createWithPageSize(ctx, path, cfg.pageSize); err != nil {
			return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
		}
	}

	w, err := sql.Open("sqlite", dsn(path, cfg, connWrite))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One connection that never expires: it is the only writer.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, w, dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn(path, cfg, connRead))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readConns)
	r.SetMaxIdleConns(cfg.readConns)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var ckpt *checkpointer
	if cfg.ckptInterval > 0 {
		c, err := sql.Open("sqlite", dsn(path, cfg, connCheckpoint))
		if err == nil {
			c.SetMaxOpenConns(1)
			c.SetMaxIdleConns(1)
			c.SetConnMaxLifetime(0)
			c.SetConnMaxIdleTime(0)
			err = c.PingContext(ctx)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
		}
		ckpt = newCheckpointer(c, cfg.ckptInterval, cfg.ckptMaxFrames, cfg.logger)
	}
	prepared := newPreparedStmts()
	st := &Store{common: sqlcommon.New(db{r: r, w: w, prepared: prepared, ckpt: ckpt}, dialect),
		w: w, r: r, prepared: prepared, ckpt: ckpt}
	prepared.keep(st.EvidenceInsertTexts())
	return st, nil
}

// ownerOnly makes the database's files the owner's alone: they hold
// resident ID numbers and secret hashes. SQLite creates the database with
// 0644 less the umask, whatever the directory's mode (an existing data dir
// may be 0755), and gives a new WAL and shared-memory file the database's
// mode; so the database is created 0600 here, before the driver opens it,
// and files an earlier start left readable lose their group and other bits.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("make %s its owner's alone: %w", p, err)
			}
		}
	}
	return nil
}

// createWithPageSize creates the database file at path with pages of size
// bytes if it is new (absent or empty, as SQLite counts it); an existing
// database keeps its size. It cannot be a pragma of dsn: the driver runs
// those sorted by name, so journal_mode would write the header, and with
// it the page size, first.
func createWithPageSize(ctx context.Context, path string, size int) error {
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Size() > 0:
		return nil
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	// WAL mode writes the header, fixing the size before any table.
	for _, q := range []string{fmt.Sprintf("PRAGMA page_size = %d", size), "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var got int
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&got); err != nil {
		return fmt.Errorf("page size: %w", err)
	}
	if got != size {
		return fmt.Errorf("page size %d, not %d (a power of two from 512 to 65536)", got, size)
	}
	return db.Close()
}

// The connections dsn is for.
const (
	connRead = iota
	connWrite
	connCheckpoint
)

// dsn is the data source name for path. The pragmas are DSN parameters so
// that every connection the pool opens gets them, not only the first.
func dsn(path string, cfg config, conn int) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// FULL on the checkpointer's connection too: a checkpoint syncs the
	// WAL before and the database after copying by its own setting.
	q.Add("_pragma", "synchronous(FULL)")
	switch conn {
	case connWrite:
		// journal_mode is persistent in the file; the writer, which opens
		// first and creates the file, sets it.
		q.Add("_pragma", "journal_mode(WAL)")
		// Take the write lock at BEGIN, not at the first write, so that a
		// transaction never fails half-way on a lock upgrade.
		q.Set("_txlock", "immediate")
		// A multi-row insert that may fail half-way (a duplicate record
		// id) keeps the pages it changes in a statement journal, which
		// past 64 KiB SQLite spilled to a temporary file: a write syscall
		// per page and per page number, 7 % of the server's CPU at
		// saturation. In memory it is a copy; it holds at most what one
		// statement of the writer changes, and no durability rests on it.
		q.Add("_pragma", "temp_store(MEMORY)")
		if cfg.ckptInterval > 0 {
			q.Add("_pragma", "wal_autocheckpoint(0)") // the checkpointer's
		}
	case connRead:
		q.Add("_pragma", "query_only(1)")
	}
	if kib := cacheKiB(cfg, conn); kib > 0 {
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", kib))
	}
	if cfg.mmapBytes > 0 && conn != connCheckpoint {
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", cfg.mmapBytes))
	}
	return path + "?" + q.Encode()
}

// cacheKiB is the page cache of a connection of kind conn (0: SQLite's
// default). The checkpointer copies pages from the WAL to the file and
// keeps the default.
func cacheKiB(cfg config, conn int) int {
	switch conn {
	case connWrite:
		return cfg.writeCacheKiB
	case connRead:
		return cfg.readCacheKiB
	}
	return 0
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the checkpointer and closes the pools.
func (s *Store) Close() error {
	return errors.Join(s.ckpt.close(), s.prepared.close(), s.r.Close(), s.w.Close())
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

// SchemaVersions reads the schema version of the database in dir, without
// migrating, creating or locking anything: a dir without a database is at
// version 0. A server may be using the database.
func SchemaVersions(ctx context.Context, dir string) (Versions, error) {
	known, err := sqlcommon.KnownVersion(Migrations())
	if err != nil {
		return Versions{}, fmt.Errorf("sqlite: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Versions{Known: known}, nil
	}
	db, err := sql.Open("sqlite", dsn(path, config{busyTimeout: 5 * time.Second}, connRead))
	if err != nil {
		return Versions{}, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	v, err := sqlcommon.SchemaVersions(ctx, db, database.DialectSQLite3, Migrations())
	if err != nil {
		return Versions{}, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return v, nil
}

// migrate applies the embedded migrations not applied yet (goose, over
// the one write connection) to the database of dir. A schema newer than
// this binary's is refused (ErrSchemaTooNew). Migrations change what the
// schema asks of its writers, so they are applied only with dir's lock:
// held already by this process (a server, credgate migrate), or taken
// for the migration; another process holding it (a server, maybe of the
// previous release) is a *LockedError (ErrDataDirLocked). A database with
// nothing to apply is opened whoever holds the lock.
func migrate(ctx context.Context, db *sql.DB, dir string) error {
	v, err := sqlcommon.SchemaVersions(ctx, db, database.DialectSQLite3, Migrations())
	if err != nil {
		return err
	}
	if err := v.Check(); err != nil {
		return err
	}
	if v.Pending() {
		release, err := lockForMigration(dir)
		if err != nil {
			return fmt.Errorf("schema version %d, this credgate's %d: not migrated under another credgate, whose writes it would break: %w",
				v.Applied, v.Known, err)
		}
		defer release()
	}
	return sqlcommon.Migrate(ctx, db, database.DialectSQLite3, Migrations())
}

// mapErr turns unique-key violations into service.ErrConflict, keeping the
// driver error in the chain.
func mapErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", service.ErrConflict, err)
		}
	}
	return err
}

// micros and fromMicros convert between time.Time and the stored INTEGER
// microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
