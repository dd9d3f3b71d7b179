package deploy

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/testenv"
)

// TestBackupAndRestoreProvedByAudit runs the backup and restore procedure
// of docs/OPERATIONS.md with the binary the Dockerfile builds: credgate
// serves on a fresh PostgreSQL database and answers checks; `credgate
// audit --full` verifies the log and keeps its state file; pg_dump backs
// the database up and pg_restore restores it into another database;
// credgate serves from the restored copy, and the same audit, with the
// same state file, finds it consistent with what it saw before the backup
// and every receipt fetched from it verifies. Then a row of the restored
// copy is damaged (a record's body changed, as bit rot or an edit would)
// and the audit fails, naming the record. The transcript quoted in
// OPERATIONS.md is this test's -v output.
func TestBackupAndRestoreProvedByAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds credgate and runs servers")
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "%s is not installed", tool)
		}
	}
	pg := testenv.FreshDatabase(t, "credgate_backup")
	restoredDB := testenv.FreshDatabase(t, "credgate_restored")
	bin := buildAsDockerfile(t)
	work := t.TempDir()
	keys := filepath.Join(work, "keys")
	const origin = "credit.example.gov.cn/evidence"
	const adminSecret = "backup-test-admin-secret-0123456789"

	// run runs a command as an operator would type it, logging it and
	// what it printed; wantFail says the command is expected to fail.
	run := func(wantFail bool, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PGPASSFILE=/nonexistent",
			"CREDGATE_AUDIT_CLIENT_ID=admin", "CREDGATE_AUDIT_CLIENT_SECRET="+adminSecret)
		out, err := cmd.CombinedOutput()
		shown := strings.ReplaceAll(strings.Join(append([]string{filepath.Base(name)}, args...), " "), work+"/", "")
		t.Logf("$ %s\n%s", shown, out)
		if (err != nil) != wantFail {
			t.Fatalf("%s: %v (expected to fail: %v)\n%s", shown, err, wantFail, out)
		}
		return string(out)
	}

	text := strings.TrimSpace(run(false, bin, "keygen", "--data-dir", keys, "--evidence-origin", origin))
	vkey := text[strings.LastIndex(text, " ")+1:]
	run(false, bin, "migrate", "--postgres-url", pg)

	// serve starts credgate on a database, as the operator would with the
	// same keys and origin, and returns its base URL.
	serve := func(db string) string {
		t.Helper()
		addr := testenv.FreeAddr(t)
		r := &replica{name: "serve", partner: addr, logs: &testenv.SyncBuffer{}}
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(os.Environ(), "PGPASSFILE=/nonexistent",
			"CREDGATE_DATA_DIR="+keys, "CREDGATE_POSTGRES_URL="+db, "CREDGATE_ADDR="+addr,
			"CREDGATE_EVIDENCE_ORIGIN="+origin, "CREDGATE_SPOOL_DIR="+t.TempDir(),
			"CREDGATE_ADMIN_CLIENT_ID=admin", "CREDGATE_ADMIN_CLIENT_SECRET="+adminSecret,
			"CREDGATE_CHECKPOINT_INTERVAL=100ms", "CREDGATE_SHUTDOWN_TIMEOUT=5s")
		startReplica(t, cmd, r, "serve on "+testenv.Redact(db))
		waitHealthy(t, r, "http://"+addr+"/readyz")
		u, _ := url.Parse(db)
		t.Logf("$ credgate serve   # CREDGATE_POSTGRES_URL=…/%s, the same keys and origin\nready at http://%s", strings.TrimPrefix(u.Path, "/"), addr)
		return "http://" + addr
	}

	// 1. Serve on the fresh database and answer checks; keep their receipts.
	base := serve(pg)
	token := testenv.Token(t, base, "admin", adminSecret)
	receipts := filepath.Join(work, "receipts")
	if err := os.MkdirAll(receipts, 0o700); err != nil {
		t.Fatal(err)
	}
	var checks []string
	t.Logf("# 5 checks through the API, each receipt kept")
	for i := range 5 {
		var check struct {
			ID string `json:"check_id"`
		}
		subject := testenv.USCC(t, fmt.Sprintf("91110108MA01BKP%02d", i))
		code, body := postJSON(t, base+"/v1/checks", token, fmt.Sprintf(`{"subject":{"id":%q},"action":"government_procurement"}`, subject), &check)
		if code != 200 || check.ID == "" {
			t.Fatalf("check: %d %s", code, body)
		}
		fetchReceipt(t, base, token, check.ID, filepath.Join(receipts, check.ID+".json"))
		checks = append(checks, check.ID)
	}

	// 2. The auditor's run before the backup, then the backup.
	audit := func(wantFail bool, u string) string {
		t.Helper()
		return run(wantFail, bin, "audit", "--full", "--key", vkey, "--url", u, "--state", filepath.Join(work, "credgate-audit.json"))
	}
	audit(false, base)
	dump := filepath.Join(work, "credgate.dump")
	run(false, "pg_dump", "--format=custom", "--file="+dump, "--dbname="+pg)

	// 3. Restore into another database, serve from it, audit with the same
	// state file: consistent with the checkpoint seen before the backup.
	run(false, "pg_restore", "--no-owner", "--exit-on-error", "--dbname="+restoredDB, dump)
	restored := serve(restoredDB)
	if out := audit(false, restored); !strings.Contains(out, "OK: checkpoint of") {
		t.Fatalf("audit of the restored log:\n%s", out)
	}
	rtoken := testenv.Token(t, restored, "admin", adminSecret)
	for _, id := range checks {
		path := filepath.Join(receipts, id+".restored.json")
		fetchReceipt(t, restored, rtoken, id, path)
		run(false, bin, "verify", "--key", vkey, "--origin", origin, path)
	}

	// 4. Damage one row of the restored copy: a check record's body,
	// which its committed hash no longer matches.
	damageRecord(t, restoredDB, checks[2])
	out := audit(true, restored)
	if !strings.Contains(out, "PROBLEM") {
		t.Fatalf("the audit of the damaged copy reports no problem:\n%s", out)
	}
}

// damageRecord changes the stored body of evidence record id, leaving
// what the log commits to (position, id, hash) as it was.
func damageRecord(t *testing.T, dbURL, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The append-only trigger lets a body only be erased: the damage goes
	// round it, as an edit with the owner's rights would.
	if _, err := conn.Exec(ctx, `ALTER TABLE evidence DISABLE TRIGGER evidence_no_rewrite`); err != nil {
		t.Fatal(err)
	}
	tag, err := conn.Exec(ctx, `UPDATE evidence SET body = overlay(body placing '\x00'::bytea from 1 for 1) WHERE id = $1`, id)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("damage record %s: %v (%d rows)", id, err, tag.RowsAffected())
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE evidence ENABLE TRIGGER evidence_no_rewrite`); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	t.Logf("# damage, in %s, with evidence_no_rewrite disabled: UPDATE evidence SET body = overlay(body placing '\\x00'::bytea from 1 for 1) WHERE id = '%s'\nUPDATE 1", strings.TrimPrefix(u.Path, "/"), id)
}
