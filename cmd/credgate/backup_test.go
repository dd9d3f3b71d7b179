package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// credgate backup copies a data dir's database and says what the copy
// holds; it refuses to write over a file and points PostgreSQL to
// pg_dump.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	if code, out := runCLI("migrate", "--data-dir", dir); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, out)
	}
	out := filepath.Join(t.TempDir(), "credgate-backup.db")
	code, text := runCLI("backup", "--data-dir", dir, out)
	want := fmt.Sprintf("schema version %d, 0 evidence records", newestMigration(t, "sqlite"))
	if code != 0 || !strings.Contains(text, want) {
		t.Fatalf("backup: exit %d: %s (want %q)", code, text, want)
	}
	if code, text := runCLI("backup", "--data-dir", dir, out); code != 1 || !strings.Contains(text, "exists") {
		t.Fatalf("a backup onto the last one: exit %d: %s", code, text)
	}
	if code, text := runCLI("backup", "--postgres-url", "postgres://x@127.0.0.1:1/db", out+".2"); code != 1 || !strings.Contains(text, "pg_dump") {
		t.Fatalf("a backup of PostgreSQL: exit %d: %s", code, text)
	}
	if code, _ := runCLI("backup", "--data-dir", dir); code != 2 {
		t.Fatalf("backup without OUT: exit %d, want 2", code)
	}
}
