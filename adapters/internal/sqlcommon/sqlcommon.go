// Package sqlcommon is the storage logic the SQL adapters share: every
// query and scan of entries, partners, lifecycle, sources and the evidence
// log written once, over a small interface that both pgx (PostgreSQL) and
// database/sql (SQLite) satisfy through thin wrappers in their adapters,
// with the differences between the databases kept in a Dialect value.
//
// Queries use $1, $2 … placeholders, which PostgreSQL and SQLite both
// accept. Times are time.Time in and out: the SQLite wrapper stores them as
// INTEGER microseconds, PostgreSQL as timestamptz. JSON columns (text in
// SQLite, jsonb in PostgreSQL) are written as strings and read as bytes.
// Like OpenFGA's pkg/storage/sqlcommon, the adapters add only what their
// database does differently: connection setup, migrations, the change feed,
// and fast paths where sharing would slow PostgreSQL.
package sqlcommon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// Row is one result row.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set; Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Querier runs statements. A Row with no result scans to an error that
// errors.Is sql.ErrNoRows (pgx's ErrNoRows wraps it).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	// Exec returns the number of rows affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// Stmt is one statement of a batch.
type Stmt struct {
	SQL  string
	Args []any
}

// Tx is a write transaction.
type Tx interface {
	Querier
	// ExecBatch runs stmts in order: PostgreSQL pipelines them in one round
	// trip, SQLite runs them one by one on prepared statements. On failure
	// it returns the index of the statement that failed.
	ExecBatch(ctx context.Context, stmts []Stmt) (int, error)
}

// DB is a database as the shared logic sees it: reads outside any
// transaction (Querier), and write transactions.
type DB interface {
	Querier
	// InTx runs fn in a write transaction, committed when fn returns nil
	// and rolled back otherwise.
	InTx(ctx context.Context, fn func(tx Tx) error) error
}

// Dialect is what differs between the databases beyond the wrappers.
type Dialect struct {
	// Name prefixes errors ("sqlite", "postgres").
	Name string
	// MapErr turns a unique-key violation into service.ErrConflict, keeping
	// the driver error in the chain.
	MapErr func(error) error
	// ForUpdate is appended to the SELECT that reads a source's row in
	// ApplySource, so that concurrent applies queue ("" where a
	// transaction already excludes other writers).
	ForUpdate string
	// NodesQuery selects (level, idx, hash) of the given nodes in one query
	// of primary-key probes.
	NodesQuery func(ids []NodeKey) (string, []any)
	// NodesByPosition: AppendLeaves writes each tree node's NodePos beside
	// its level and idx (SQLite since its 0015, whose key it is), so that a
	// commit's nodes go to the end of one B-tree, not of each level's range.
	NodesByPosition bool
	// AsOfSQL selects, with the entry columns, each entry that named $1 in
	// any version, in its latest version recorded at or before $2, by id.
	AsOfSQL string
	// CheckpointPrelude, if set, runs before a checkpoint is inserted in the
	// same transaction (PostgreSQL: do not wait for the WAL flush).
	CheckpointPrelude string
	// JSONValues is a FROM item yielding a column "value" (text) for each
	// element of the JSON array parameter p (events.go).
	JSONValues func(p string) string
	// AfterLoad, if set, runs once a bulk load of at least analyzeRows
	// entries has committed: PostgreSQL plans the next lookups from the
	// table's statistics, which autovacuum refreshes only later, and until
	// then a batch lookup against the grown table is planned as a full scan
	// (84 ms instead of 4 ms for 1 000 subjects after a 100 000-entry load).
	AfterLoad []string
	// EventLock, if set, serialises event publishers within their
	// transaction, so that events are numbered in commit order.
	EventLock string
	// SkipLocked ends the SELECT that claims deliveries, so that replicas
	// claim different rows ("" where a transaction excludes other writers).
	SkipLocked string
	// SweepKey is the expiry sweep's one row key (true, or 1 in SQLite).
	SweepKey any
	// DeriveChecks: AppendLeaves writes the rows derived from check
	// records (checkrows.go) itself, in the appending transaction, where
	// the database has no triggers doing it (SQLite since its migration
	// 0013; PostgreSQL derives them in a statement trigger).
	DeriveChecks bool
	// AnonymousParams: AppendLeaves's multi-row inserts number their
	// parameters by position (?) instead of $1, $2 …: SQLite finds the
	// name of each numbered parameter it binds by a scan of the
	// statement's names, quadratic over a chunk's 2 048 parameters.
	AnonymousParams bool
	// CheckByID, if set, is the condition finding the row of check_index c
	// of the check whose id is the parameter p, where check_id is not
	// indexed (SQLite since its 0014, PostgreSQL since its 0018: through
	// the log's index of record ids); unset, c.check_id = p.
	CheckByID func(p string) string
	// FewValues, if set, is JSONValues for a list of a few values (the
	// subjects of one change, Subscribers) where the planner's guess of
	// the list's length sets the plan: PostgreSQL guesses 100 elements for
	// jsonb_array_elements_text, and a loose index scan over a hundred
	// subjects' actions costs enough to be compiled (JIT), 40 ms for a
	// read of one. Unset, JSONValues.
	FewValues func(p string) string
	// ChecksOfAction, if set, is the FROM item joined to acts a (a
	// subject's actions, Subscribers) yielding c.partner for the checks of
	// a.subject and a.action at or after $2; unset, SQLite's CROSS JOIN,
	// a seek per row of acts. PostgreSQL plans a join there as a hash join
	// of the whole window's checks, read through check_index_time.
	ChecksOfAction string
	// AfterPruneSQL are statements without parameters run after each
	// pruning (hourly, by the event loop), outside its transaction:
	// upkeep the engine would otherwise leave to a background process
	// that may be off (PostgreSQL: summarising check_index_time's BRIN
	// ranges, autovacuum's job with autosummarize).
	AfterPruneSQL []string
}

// checkByID is Dialect.CheckByID or its default.
func (d Dialect) checkByID(p string) string {
	if d.CheckByID != nil {
		return d.CheckByID(p)
	}
	return `c.check_id = ` + p
}

// NodeKey is a tree node's key as stored.
type NodeKey struct {
	Level int64
	Index int64
}

// Store is the shared implementation of most of service.Store; an adapter
// embeds it and adds the rest.
type Store struct {
	db DB
	d  Dialect
	// inserts caches AppendBatch's multi-row INSERT texts (evidence.go).
	inserts sync.Map
	// loads holds the bulk loads running in a transaction of their own
	// (bulk.go): load id to *openLoad.
	loads sync.Map
	// stagedGate lets one staged load at a time from StoredDuplicates to
	// its commit or discard (bulkdups.go).
	stagedGate loadGate
}

// The capabilities the shared logic provides, checked at compile time; the
// adapters check service.Store, which needs their own methods too.
var (
	_ service.EntryStore     = (*Store)(nil)
	_ service.EntryLookup    = (*Store)(nil)
	_ service.PartnerStore   = (*Store)(nil)
	_ service.EvidenceStore  = (*Store)(nil)
	_ service.SourceStore    = (*Store)(nil)
	_ service.LifecycleStore = (*Store)(nil)
	_ service.ActReader      = (*Store)(nil)
	_ service.History        = (*Store)(nil)
	_ evidence.TreeStore     = (*Store)(nil)
)

// New returns the shared store logic over db.
func New(db DB, d Dialect) *Store {
	if d.MapErr == nil {
		d.MapErr = func(err error) error { return err }
	}
	return &Store{db: db, d: d}
}

// errf prefixes an error with the dialect's name, for the operator who
// reads a database fault in the log. A "not found" is not a fault, and its
// text reaches callers as a problem's detail: it says what is missing and
// not which engine looked.
func (s *Store) errf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+": "+format, args...)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// collect reads every row with scan.
func collect[T any](rows Rows, err error, scan func(Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func scanString(r Rows) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

// checkUpdated tells a lost optimistic update (ErrConflict) from a missing
// row (ErrNotFound) after an UPDATE … WHERE id = … AND version = ….
func checkUpdated(ctx context.Context, q Querier, affected int64, table, id string) error {
	if affected == 1 {
		return nil
	}
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return service.ErrNotFound
	}
	return fmt.Errorf("%w: stale version", service.ErrConflict)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
