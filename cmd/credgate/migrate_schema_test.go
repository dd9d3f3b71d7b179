package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/testenv"
)

// credgate migrate on SQLite needs the data dir to itself: beside a
// running server it is refused, saying why, and changes nothing (the
// review's case: a migration under a server of the previous release made
// every evidence commit of that server fail while it answered 200);
// --status reads the version beside it. Once the server is gone, migrate
// runs and prints the version.
func TestMigrateRefusedBesideServer(t *testing.T) {
	dir := t.TempDir()
	want := newestMigration(t, "sqlite")
	_, _, stop := serveInProcess(t, dir)
	code, out := runCLI("migrate", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "the data dir is in use by another credgate") || !strings.Contains(out, "stop it first") {
		t.Errorf("migrate beside a server: exit %d: %s", code, out)
	}
	code, out = runCLI("migrate", "--status", "--data-dir", dir)
	if current := fmt.Sprintf("the sqlite schema is current (version %d)", want); code != 0 || !strings.Contains(out, current) {
		t.Errorf("migrate --status beside a server: exit %d: %s", code, out)
	}
	stop()
	code, out = runCLI("migrate", "--data-dir", dir)
	if current := fmt.Sprintf("the sqlite schema is current (version %d)", want); code != 0 || !strings.Contains(out, current) {
		t.Errorf("migrate once the server stopped: exit %d: %s", code, out)
	}
}

// A store a newer credgate migrated is refused by migrate, migrate
// --status, serve and import, each naming both versions and the way back,
// and none of them writes to it.
func TestSchemaTooNewRefused(t *testing.T) {
	check := func(t *testing.T, store []string, version func() int64, known int64) {
		t.Helper()
		tooNew := fmt.Sprintf("the database schema is version %d, newer than this credgate's %d: run the credgate that migrated it, "+
			"or restore the backup taken before the upgrade", known+1, known)
		for _, args := range [][]string{
			{"migrate"},
			{"migrate", "--status"},
			{"serve", "--addr", "127.0.0.1:0", "--evidence-origin", testOrigin},
			{"import", "../../examples/entries.csv"},
		} {
			// Bounded: a serve that started after all would never return.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var buf bytes.Buffer
			code := run(ctx, append(args, store...), &buf, &buf)
			cancel()
			out := buf.String()
			if code != 1 || !strings.Contains(out, tooNew) {
				t.Errorf("%s on a newer schema: exit %d: %s", args[0], code, out)
			}
			if v := version(); v != known+1 {
				t.Fatalf("after %s: schema version %d", args[0], v)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		if code, out := runCLI("migrate", "--data-dir", dir); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, out)
		}
		db, err := sql.Open("sqlite", filepath.Join(dir, "credgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		known := newestMigration(t, "sqlite")
		if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, known+1); err != nil {
			t.Fatal(err)
		}
		check(t, []string{"--data-dir", dir}, func() int64 {
			var v int64
			if err := db.QueryRow(`SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}, known)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.FreshDatabase(t, "credgate_migrate")
		if code, out := runCLI("migrate", "--postgres-url", pg); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, out)
		}
		conn, err := pgx.Connect(t.Context(), pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		known := newestMigration(t, "postgres")
		if _, err := conn.Exec(t.Context(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, known+1); err != nil {
			t.Fatal(err)
		}
		check(t, []string{"--postgres-url", pg, "--data-dir", t.TempDir()}, func() int64 {
			var v int64
			if err := conn.QueryRow(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}, known)
	})
}
