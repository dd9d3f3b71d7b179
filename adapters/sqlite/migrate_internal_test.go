package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/storetest"
)

// applied lists the versions goose recorded as applied, in order.
func applied(t *testing.T, s *Store) []int64 {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version_id FROM goose_db_version
		WHERE version_id > 0 AND is_applied ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestMigrationsRecorded(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	storetest.CheckMigrations(t, applied(t, s), files)
}

// TestAdoptsFormerMigrations opens a database migrated by the runner
// credgate had before goose (versions in schema_migrations): goose must
// take the versions over without running them again (their CREATE TABLEs
// would fail), then apply the newer ones, and the data must stay.
func TestAdoptsFormerMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	old, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	// What the former runner did: its table, then each migration's body
	// and its version, in name order.
	if _, err := old.ExecContext(ctx, `CREATE TABLE schema_migrations (
		version TEXT NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files[:storetest.LegacyVersions] {
		body, _ := migrationFS.ReadFile(f)
		version := strings.TrimSuffix(filepath.Base(f), ".sql")
		if _, err := old.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		if _, err := old.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?)`, version, time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.ExecContext(ctx, fmt.Sprintf(storetest.LegacyPartnerSQL, "1")); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 { // the second opening finds nothing to do
		s, err := Open(ctx, dir)
		if err != nil {
			t.Fatalf("open a database of the former runner: %v", err)
		}
		storetest.CheckMigrations(t, applied(t, s), files)
		s.Close()
	}
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckAdopted(t, s)
}
