package sqlcommon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// VersionTable is where goose records the applied migrations.
const VersionTable = "goose_db_version"

// legacyTable is where credgate recorded applied migrations before goose
// ("0001_init", … one row each).
const legacyTable = "schema_migrations"

// ErrSchemaTooNew: the database's schema is of a newer credgate than this
// one, which does not know what that schema needs of its writers (a newer
// release may have moved work from triggers into the code, or added
// constraints this one breaks). A *SchemaTooNewError says which versions.
var ErrSchemaTooNew = errors.New("the database schema is newer than this credgate")

// SchemaTooNewError names the database's schema version and the newest
// migration this binary embeds.
type SchemaTooNewError struct {
	Version, Known int64
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database schema is version %d, newer than this credgate's %d: "+
		"run the credgate that migrated it, or restore the backup taken before the upgrade", e.Version, e.Known)
}

// Unwrap makes errors.Is(err, ErrSchemaTooNew) hold.
func (e *SchemaTooNewError) Unwrap() error { return ErrSchemaTooNew }

// Versions are a database's schema version (the highest migration it has
// applied, 0 for a new database) and the newest migration of a binary.
type Versions struct {
	Applied, Known int64
}

// Pending reports whether the binary has migrations to apply.
func (v Versions) Pending() bool { return v.Applied < v.Known }

// Check is nil, or a *SchemaTooNewError when the database is ahead.
func (v Versions) Check() error {
	if v.Applied > v.Known {
		return &SchemaTooNewError{Version: v.Applied, Known: v.Known}
	}
	return nil
}

// SchemaVersions reads db's schema version and fsys's newest migration.
// It only reads.
func SchemaVersions(ctx context.Context, db *sql.DB, dialect database.Dialect, fsys fs.FS) (Versions, error) {
	known, err := KnownVersion(fsys)
	if err != nil {
		return Versions{}, err
	}
	applied, err := SchemaVersion(ctx, db, dialect)
	if err != nil {
		return Versions{}, err
	}
	return Versions{Applied: applied, Known: known}, nil
}

// KnownVersion is the highest version among fsys's migrations.
func KnownVersion(fsys fs.FS) (int64, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	var known int64
	for _, f := range files {
		v, err := fileVersion(f)
		if err != nil {
			return 0, err
		}
		known = max(known, v)
	}
	if known == 0 {
		return 0, errors.New("no migrations embedded")
	}
	return known, nil
}

// fileVersion is the NNNN of NNNN_name (a file, or a version the former
// runner recorded).
func fileVersion(name string) (int64, error) {
	num, _, _ := strings.Cut(path.Base(name), "_")
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("migration %q is not NNNN_name", name)
	}
	return v, nil
}

// SchemaVersion is the highest migration version db records as applied:
// goose's, else the former runner's, else 0 (a new database). It only
// reads.
func SchemaVersion(ctx context.Context, db *sql.DB, dialect database.Dialect) (int64, error) {
	var exists string
	switch dialect {
	case database.DialectPostgres:
		// In the search path's first schema, where goose creates it.
		exists = `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`
	case database.DialectSQLite3:
		exists = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	default:
		return 0, fmt.Errorf("schema version: dialect %q", dialect)
	}
	var n int
	if err := db.QueryRowContext(ctx, exists, VersionTable).Scan(&n); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if n > 0 {
		var v sql.NullInt64
		if err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM `+VersionTable+` WHERE is_applied`).Scan(&v); err != nil {
			return 0, fmt.Errorf("schema version: %w", err)
		}
		return v.Int64, nil
	}
	if err := db.QueryRowContext(ctx, exists, legacyTable).Scan(&n); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	versions, err := legacyVersions(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("schema version in %s: %w", legacyTable, err)
	}
	var v int64
	for _, x := range versions {
		v = max(v, x)
	}
	return v, nil
}

// Migrate applies, in version order, every migration of fsys (files
// NNNN_name.sql with goose annotations, each in its own transaction) that
// db has not applied yet. A database migrated before goose is adopted
// first: its recorded versions are copied into goose's table, so nothing
// is run twice. Callers that share a database between processes hold a
// lock around Migrate.
//
// A database whose schema is newer than fsys's newest migration (a newer
// credgate migrated it) is refused with a *SchemaTooNewError
// (ErrSchemaTooNew) before anything is written: goose would find nothing
// to do, and this binary would then write to a schema it does not know.
func Migrate(ctx context.Context, db *sql.DB, dialect database.Dialect, fsys fs.FS) error {
	v, err := SchemaVersions(ctx, db, dialect, fsys)
	if err != nil {
		return err
	}
	if err := v.Check(); err != nil {
		return err
	}
	if err := adopt(ctx, db, dialect); err != nil {
		return fmt.Errorf("adopt migrations recorded in %s: %w", legacyTable, err)
	}
	p, err := goose.NewProvider(dialect, db, fsys,
		goose.WithTableName(VersionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	return nil
}

// adopt copies the versions the former runner recorded into goose's
// table, unless goose's table exists already or there is nothing to
// adopt.
func adopt(ctx context.Context, db *sql.DB, dialect database.Dialect) error {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+VersionTable).Scan(&n); err == nil {
		return nil // goose keeps the versions already
	}
	versions, err := legacyVersions(ctx, db)
	if errors.Is(err, errNoLegacyTable) {
		return nil // a new database: goose starts it
	}
	if err != nil {
		return err
	}
	store, err := database.NewStore(dialect, VersionTable)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	// Version 0 is goose's mark of a table it initialised itself.
	for _, v := range append([]int64{0}, versions...) {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// errNoLegacyTable: the former runner's table cannot be read (there is
// none).
var errNoLegacyTable = errors.New("no " + legacyTable)

// legacyVersions are the versions the former runner recorded.
func legacyVersions(ctx context.Context, db *sql.DB) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT version FROM `+legacyTable)
	if err != nil {
		return nil, errNoLegacyTable
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		v, err := fileVersion(name)
		if err != nil {
			return nil, fmt.Errorf("recorded version %q is not NNNN_name", name)
		}
		versions = append(versions, v)
	}
	return versions, rows.Err()
}
