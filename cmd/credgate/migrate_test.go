package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/testenv"
	_ "modernc.org/sqlite"
)

// credgate migrate leaves the schema at the binary's newest migration, and
// a second run (the next pod's init container) changes nothing and
// succeeds.
func TestMigrate(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		want := newestMigration(t, "postgres")
		pg := testenv.FreshDatabase(t, "credgate_migrate")
		for i := range 2 {
			if code, out := runCLI("migrate", "--postgres-url", pg); code != 0 || !strings.Contains(out, "postgres schema is current") {
				t.Fatalf("run %d: exit %d: %s", i, code, out)
			}
		}
		conn, err := pgx.Connect(t.Context(), pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var got int64
		if err := conn.QueryRow(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("schema version %d, want %d", got, want)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		want := newestMigration(t, "sqlite")
		dir := t.TempDir()
		for i := range 2 {
			if code, out := runCLI("migrate", "--data-dir", dir); code != 0 || !strings.Contains(out, "sqlite schema is current") {
				t.Fatalf("run %d: exit %d: %s", i, code, out)
			}
		}
		db, err := sql.Open("sqlite", filepath.Join(dir, "credgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var got int64
		if err := db.QueryRow(`SELECT max(version_id) FROM goose_db_version`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("schema version %d, want %d", got, want)
		}
	})
	if code, _ := runCLI("migrate", "extra"); code != 2 {
		t.Errorf("migrate with an argument: exit %d, want 2", code)
	}
}

// newestMigration is the highest NNNN of a store's migrations (the stores
// number theirs apart: PostgreSQL has some SQLite does not need).
func newestMigration(t *testing.T, store string) int64 {
	t.Helper()
	files, err := filepath.Glob("../../adapters/" + store + "/migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	var newest int64
	for _, f := range files {
		var n int64
		for _, c := range filepath.Base(f)[:4] {
			n = n*10 + int64(c-'0')
		}
		newest = max(newest, n)
	}
	return newest
}

// credgate keygen writes the two shared keys (0600), keeps them on a
// second run, and a server started on that data dir signs with them.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	code, out := runCLI("keygen", "--data-dir", dir, "--evidence-origin", testOrigin)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, out)
	}
	vkey := out[strings.LastIndex(out, " ")+1:]
	vkey = strings.TrimSpace(vkey)
	before := map[string][]byte{}
	for _, f := range []string{tokenKeyFile, evidenceKeyFile} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, info, err)
		}
		before[f], _ = os.ReadFile(filepath.Join(dir, f))
	}
	if code, out := runCLI("keygen", "--data-dir", dir, "--evidence-origin", testOrigin); code != 0 {
		t.Fatalf("second keygen: exit %d: %s", code, out)
	}
	for f, b := range before {
		if after, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(after, b) {
			t.Errorf("second keygen replaced %s", f)
		}
	}
	base, _, stop := serveInProcess(t, dir)
	defer stop()
	if got := verifierKey(t, base); got != vkey {
		t.Errorf("server signs with %q, keygen printed %q", got, vkey)
	}
}
