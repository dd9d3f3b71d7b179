package sqlcommon

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
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

// Migrate applies, in version order, every migration of fsys (files
// NNNN_name.sql with goose annotations, each in its own transaction) that
// db has not applied yet. A database migrated before goose is adopted
// first: its recorded versions are copied into goose's table, so nothing
// is run twice. Callers that share a database between processes hold a
// lock around Migrate.
func Migrate(ctx context.Context, db *sql.DB, dialect database.Dialect, fsys fs.FS) error {
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
	rows, err := db.QueryContext(ctx, `SELECT version FROM `+legacyTable)
	if err != nil {
		return nil // a new database: goose starts it
	}
	var versions []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			rows.Close()
			return fmt.Errorf("recorded version %q is not NNNN_name", name)
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
