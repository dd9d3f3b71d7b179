package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newestMigration is the name and version of the newest embedded
// migration.
func newestMigration(t *testing.T) (string, int64) {
	t.Helper()
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	name := strings.TrimPrefix(files[len(files)-1], "migrations/")
	var v int64
	if _, err := fmt.Sscanf(name[:4], "%d", &v); err != nil {
		t.Fatal(err)
	}
	return name, v
}

// rawDB opens dir's database without the Store (no migration, no lock).
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dbState is what a refused Open must leave as it was: the schema and
// goose's rows.
func dbState(t *testing.T, db *sql.DB) string {
	t.Helper()
	var state string
	if err := db.QueryRow(`SELECT (SELECT group_concat(type || ' ' || name || ' ' || coalesce(sql, ''), char(10))
			FROM (SELECT * FROM sqlite_master ORDER BY type, name)) || char(10) ||
		(SELECT group_concat(version_id || ':' || is_applied, ',') FROM (SELECT * FROM goose_db_version ORDER BY id))`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

// A database a newer credgate migrated (its version above every embedded
// migration; the review's case: an upgrade interrupted after 0013, rolled
// back to a binary that knew 0012) is refused by Open, naming both
// versions, before anything is written; SchemaVersions reads it without
// refusing.
func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, known := newestMigration(t)
	db := rawDB(t, dir)
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, known+1); err != nil {
		t.Fatal(err)
	}
	before := dbState(t, db)

	_, err = Open(ctx, dir)
	var tooNew *SchemaTooNewError
	if !errors.Is(err, ErrSchemaTooNew) || !errors.As(err, &tooNew) || tooNew.Version != known+1 || tooNew.Known != known {
		t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew naming %d and %d", err, known+1, known)
	}
	want := fmt.Sprintf("the database schema is version %d, newer than this credgate's %d: run the credgate that migrated it, "+
		"or restore the backup taken before the upgrade", known+1, known)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q, want it to say %q", err, want)
	}
	if after := dbState(t, db); after != before {
		t.Errorf("the refused Open changed the database:\nbefore %s\nafter  %s", before, after)
	}
	v, err := SchemaVersions(ctx, dir)
	if err != nil || v.Applied != known+1 || v.Known != known || !errors.Is(v.Check(), ErrSchemaTooNew) {
		t.Fatalf("SchemaVersions: %+v, %v", v, err)
	}
	// A dir without a database is version 0, and reading it creates
	// nothing.
	empty := t.TempDir()
	if v, err := SchemaVersions(ctx, empty); err != nil || v.Applied != 0 || v.Known != known {
		t.Fatalf("SchemaVersions of an empty dir: %+v, %v", v, err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("SchemaVersions created %v", entries)
	}
}
