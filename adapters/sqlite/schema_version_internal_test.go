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

// Migrations change what the schema asks of its writers (0013 moved the
// check rows from triggers into the code; a later one adds constraints a
// running older server breaks): Open migrates only while this process
// holds the data dir's lock, or takes it for the migration. With another
// process holding it (a server of the previous release), a database with
// migrations to apply is refused and left as it was; one with none opens,
// as tools read a served database; a lock this process holds (serve,
// credgate migrate) is no obstacle.
func TestMigratesOnlyWithTheDataDirLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	newest, known := newestMigration(t)
	old := openBefore(t, dir, newest)
	if err := old.w.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := SchemaVersions(ctx, dir)
	if err != nil || !v.Pending() {
		t.Fatalf("before: %+v, %v", v, err)
	}

	// Another process's lock: a lock of the file this process did not
	// take through LockDataDir (flock locks belong to the open file).
	other, err := os.OpenFile(filepath.Join(dir, LockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := tryLock(other); !ok || err != nil {
		t.Fatalf("the other process's lock: %v, %v", ok, err)
	}
	_, err = Open(ctx, dir)
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("Open with migrations pending under another's lock: %v, want ErrDataDirLocked", err)
	}
	if after, err := SchemaVersions(ctx, dir); err != nil || after != v {
		t.Fatalf("after the refused Open: %+v, %v; want %+v", after, err, v)
	}

	// This process's lock (a server opening its store).
	if err := unlock(other); err != nil {
		t.Fatal(err)
	}
	mine, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open under this process's lock: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mine.Release(); err != nil {
		t.Fatal(err)
	}
	if v, err := SchemaVersions(ctx, dir); err != nil || v.Applied != known {
		t.Fatalf("migrated: %+v, %v", v, err)
	}

	// Nothing to apply: another's lock does not matter.
	if ok, err := tryLock(other); !ok || err != nil {
		t.Fatalf("the other process's lock again: %v, %v", ok, err)
	}
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open of a current schema beside a server: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
