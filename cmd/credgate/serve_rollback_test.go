package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// rollbackStore is a database serve runs on, backed up and restored as
// docs/OPERATIONS.md says: SQLite's file copied while serve is stopped,
// PostgreSQL with pg_dump and pg_restore into another database.
type rollbackStore struct {
	args    func() []string // the store flags of the current database
	backup  func()
	restore func()
}

func sqliteRollbackStore(t *testing.T, dataDir string) rollbackStore {
	saved := t.TempDir()
	copyDB := func(from, to string) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(filepath.Join(to, sqlite.FileName+suffix))
			b, err := os.ReadFile(filepath.Join(from, sqlite.FileName+suffix))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, sqlite.FileName+suffix), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return rollbackStore{args: func() []string { return nil },
		backup: func() { copyDB(dataDir, saved) }, restore: func() { copyDB(saved, dataDir) }}
}

// needPGTools skips (or fails under CI) a test that needs pg_dump and
// pg_restore where they are not installed.
func needPGTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "%s is not installed", tool)
		}
	}
}

// runPGTool runs a PostgreSQL client tool, failing the test with its
// output; trust auth, never a password file.
func runPGTool(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "PGPASSFILE=/nonexistent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func postgresRollbackStore(t *testing.T) rollbackStore {
	needPGTools(t)
	db := testenv.FreshDatabase(t, "credgate_rollback")
	dump := filepath.Join(t.TempDir(), "credgate.dump")
	pgTool := func(name string, args ...string) { runPGTool(t, name, args...) }
	return rollbackStore{args: func() []string { return []string{"--postgres-url", db} },
		backup: func() { pgTool("pg_dump", "--format=custom", "--file="+dump, "--dbname="+db) },
		restore: func() {
			db = testenv.FreshDatabase(t, "credgate_restored")
			pgTool("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+db, dump)
		}}
}

// TestRestoredBackupIsRefused is the reviewer's fork, end to end on each
// store: checks with receipts, a backup, more checks with receipts (a
// checkpoint published past the backup), the backup restored under the
// same data dir and keys. Before the fix serve started on it and signed
// the restored history as soon as it grew: two different records were
// each "record 8" under the real key. Now the start fails, saying why and
// what to do, and signs nothing; a restart without a rollback serves, and
// a rotated key given the old one in --evidence-previous-keys is not
// reported as a forgery.
func TestRestoredBackupIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			dataDir := t.TempDir()
			var db rollbackStore
			if kind == "sqlite" {
				db = sqliteRollbackStore(t, dataDir)
			} else {
				db = postgresRollbackStore(t)
			}
			serveOn := func(extra ...string) (string, *testenv.SyncBuffer, func()) {
				return serveInProcess(t, dataDir, append(append(db.args(), "--checkpoint-interval", "50ms"), extra...)...)
			}
			checks := func(base, token, prefix string, n int) {
				for i := range n {
					id := mustCheck(t, base, token, testenv.USCC(t, fmt.Sprintf("91110108MA01RBK%s%d", prefix, i)))["check_id"].(string)
					if _, code := saveReceipt(t, base, token, id, filepath.Join(dataDir, "..", "receipts")); code != http.StatusOK {
						t.Fatalf("receipt of %s: %d", id, code)
					}
				}
			}

			base, _, stop := serveOn()
			_, admin := adminToken(t, base, dataDir)
			token := createPartner(t, base, admin, "government_procurement")
			checks(base, token, "A", 4)
			stop()
			db.backup()

			// A restart on the database as it is: fine; more checks and
			// receipts, published past the backup.
			base, _, stop = serveOn()
			checks(base, token, "B", 3)
			stop()
			published, err := os.ReadFile(filepath.Join(dataDir, publishedCheckpointFile))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("published:\n%s", published)

			db.restore()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			code := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--evidence-origin", testOrigin},
				db.args()...), &out, &out)
			if code == 0 || !strings.Contains(out.String(), "restored or rolled back") || !strings.Contains(out.String(), "new origin") {
				t.Fatalf("serve on the restored database: exit %d\n%s", code, out.String())
			}
			t.Logf("serve on the restored database: exit %d\n%s", code, out.String())
			if now, _ := os.ReadFile(filepath.Join(dataDir, publishedCheckpointFile)); !bytes.Equal(now, published) {
				t.Fatalf("the published checkpoint was overwritten:\n%s", now)
			}
		})
	}
}

// TestRotationIsNoForgery: a start with a new key and the old one in
// --evidence-previous-keys serves the checkpoint the old key signed
// without an ERROR saying the log did not sign it (it did, before the
// rotation).
func TestRotationIsNoForgery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	dataDir := t.TempDir()
	base, _, stop := serveInProcess(t, dataDir)
	_, admin := adminToken(t, base, dataDir)
	token := createPartner(t, base, admin, "government_procurement")
	oldKey := verifierKey(t, base)
	mustCheck(t, base, token, testenv.USCC(t, "91110108MA01RKT01"))
	stop()

	skey, err := evidence.GenerateSignerKey("credgate.test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, logs, stop := serveInProcess(t, dataDir, "--evidence-key", keyFile, "--evidence-previous-keys", oldKey)
	defer stop()
	if verifierKey(t, base) == oldKey {
		t.Fatal("the key was not rotated")
	}
	if strings.Contains(logs.String(), "not one this log signed") {
		t.Fatalf("a rotation is reported as a forgery:\n%s", logs.String())
	}
}
