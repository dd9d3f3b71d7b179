package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkMigrations checks that goose recorded every embedded migration
// exactly once.
func checkMigrations(t *testing.T, s *Store) {
	t.Helper()
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	var applied, distinct, highest int64
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*), count(DISTINCT version_id), max(version_id)
		FROM goose_db_version WHERE version_id > 0 AND is_applied`).Scan(&applied, &distinct, &highest); err != nil {
		t.Fatal(err)
	}
	if applied != int64(len(files)) || distinct != applied || highest != int64(len(files)) {
		t.Fatalf("goose recorded %d migrations (%d distinct, highest %d), want each of %d once",
			applied, distinct, highest, len(files))
	}
}

// TestAdoptsFormerMigrations opens a database migrated by the runner
// credgate had before goose (versions in schema_migrations, 0001-0005
// applied): goose must take the versions over without running them again
// (their CREATE TABLEs would fail), then apply 0006, and the data must
// stay.
func TestAdoptsFormerMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	old, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `CREATE TABLE schema_migrations (
		version    TEXT    NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files {
		version := strings.TrimSuffix(filepath.Base(f), ".sql")
		if version >= "0006" {
			break
		}
		body, _ := migrationFS.ReadFile(f)
		if _, err := old.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		if _, err := old.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?)`, version, time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO partners (id, client_id, name, role, actions, secret_hash, status,
		created_at, updated_at, version) VALUES ('p1', 'c1', 'n', 'partner', '[]', '', 'active', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("open a database of the former runner: %v", err)
	}
	defer s.Close()
	checkMigrations(t, s)
	p, err := s.PartnerByClientID(ctx, "c1")
	if err != nil || p.Region != "" {
		t.Fatalf("partner kept through adoption: %+v, %v", p, err)
	}
	p.Version, p.Region = 2, "370100"
	if err := s.UpdatePartner(ctx, p); err != nil {
		t.Fatalf("0006 applied: %v", err)
	}
	s.Close()
	// Opening again finds nothing to do.
	s2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	checkMigrations(t, s2)
	if p, err := s2.PartnerByClientID(ctx, "c1"); err != nil || p.Region != "370100" {
		t.Fatalf("after reopening: %+v, %v", p, err)
	}
}
