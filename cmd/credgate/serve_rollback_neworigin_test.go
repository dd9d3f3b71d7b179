package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// TestRestoredBackupStartsANewLog is the recovery the refusal
// (TestRestoredBackupIsRefused) tells the operator to take, end to end on
// each store: the restored database started as a new log, under a new
// origin and key, with the old origin in --evidence-previous-origin and
// the old verifier key in --evidence-previous-keys. Before
// evidence.previous_origin existed every such start was refused (the
// stored checkpoints are of the old origin), so the advice could not be
// followed. Now it serves: the checkpoint is the new origin's only, a new
// check's receipt verifies with the new key under the new origin, both
// keys are listed, the old receipts of records the restore kept still
// verify offline with the old key, and a restart keeps serving.
func TestRestoredBackupStartsANewLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			dataDir := t.TempDir()
			receipts := filepath.Join(t.TempDir(), "receipts")
			var db rollbackStore
			if kind == "sqlite" {
				db = sqliteRollbackStore(t, dataDir)
			} else {
				db = postgresRollbackStore(t)
			}
			serveOn := func(extra ...string) (string, *testenv.SyncBuffer, func()) {
				return serveInProcess(t, dataDir, append(append(db.args(), "--checkpoint-interval", "50ms"), extra...)...)
			}
			checks := func(base, token, prefix string, n int) []string {
				var files []string
				for i := range n {
					id := mustCheck(t, base, token, testenv.USCC(t, fmt.Sprintf("91110108MA01NWK%s%d", prefix, i)))["check_id"].(string)
					f, code := saveReceipt(t, base, token, id, receipts)
					if code != http.StatusOK {
						t.Fatalf("receipt of %s: %d", id, code)
					}
					files = append(files, f)
				}
				return files
			}

			base, _, stop := serveOn()
			_, admin := adminToken(t, base, dataDir)
			token := createPartner(t, base, admin, "government_procurement")
			oldKey := verifierKey(t, base)
			kept := checks(base, token, "A", 4)
			stop()
			db.backup()
			base, _, stop = serveOn()
			checks(base, token, "B", 3)
			stop()
			db.restore()

			const newOrigin = "credgate.test/evidence-2"
			skey, err := evidence.GenerateSignerKey(keyName(newOrigin))
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(t.TempDir(), "new.key")
			if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			start := func(extra ...string) (int, string) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				var out bytes.Buffer
				code := run(ctx, append(append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, db.args()...), extra...), &out, &out)
				return code, out.String()
			}
			// The old origin: refused, saying how to start a new log.
			if code, out := start("--evidence-origin", testOrigin); code == 0 || !strings.Contains(out, "--evidence-previous-origin") {
				t.Fatalf("serve on the restored database: exit %d\n%s", code, out)
			}
			// A new origin and key without the old origin: still refused.
			if code, out := start("--evidence-origin", newOrigin, "--evidence-key", keyFile, "--evidence-previous-keys", oldKey); code == 0 ||
				!strings.Contains(out, "--evidence-previous-origin") {
				t.Fatalf("a new origin without --evidence-previous-origin: exit %d\n%s", code, out)
			}
			// The old origin as the new one: a configuration error.
			if code, out := start("--evidence-origin", testOrigin, "--evidence-previous-origin", testOrigin); code == 0 ||
				!strings.Contains(out, "needs a new origin") {
				t.Fatalf("--evidence-previous-origin equal to --evidence-origin: exit %d\n%s", code, out)
			}

			newArgs := []string{"--evidence-origin", newOrigin, "--evidence-key", keyFile,
				"--evidence-previous-origin", testOrigin, "--evidence-previous-keys", oldKey}
			base, logs, stop := serveOn(newArgs...)
			newKey := verifierKey(t, base)
			if newKey == oldKey {
				t.Fatal("the key was not replaced")
			}
			assertNewOrigin := func(base string) {
				t.Helper()
				var cp struct {
					Origin     string `json:"origin"`
					Checkpoint string `json:"checkpoint"`
				}
				if code := getJSON(t, base, "/v1/evidence/checkpoint", "", &cp); code != http.StatusOK {
					t.Fatalf("checkpoint: %d", code)
				}
				if cp.Origin != newOrigin || !strings.HasPrefix(cp.Checkpoint, newOrigin+"\n") {
					t.Fatalf("the checkpoint served is not the new origin's:\n%+v", cp)
				}
				if _, err := evidence.OpenCheckpoint([]byte(cp.Checkpoint), mustVerifiers(t, newKey), newOrigin); err != nil {
					t.Fatalf("the checkpoint served: %v", err)
				}
			}
			assertNewOrigin(base)
			fresh := checks(base, token, "C", 2)
			assertNewOrigin(base)
			var keys struct {
				Keys []struct {
					Key string `json:"key"`
				} `json:"keys"`
			}
			getJSON(t, base, "/v1/evidence/keys", "", &keys)
			listed := map[string]bool{}
			for _, k := range keys.Keys {
				listed[k.Key] = true
			}
			if !listed[oldKey] || !listed[newKey] {
				t.Fatalf("GET /v1/evidence/keys lists %+v, want %s and %s", keys.Keys, oldKey, newKey)
			}
			if strings.Contains(logs.String(), "not one this log signed") || strings.Contains(logs.String(), "ERROR") {
				t.Fatalf("the old log's checkpoints are reported:\n%s", logs.String())
			}
			stop()

			for _, f := range fresh {
				if code, out := runCLI("verify", "--key", newKey, "--origin", newOrigin, f); code != 0 {
					t.Fatalf("a new receipt does not verify under the new origin: %d\n%s", code, out)
				}
			}
			for _, f := range kept {
				if code, out := runCLI("verify", "--key", oldKey, "--origin", testOrigin, f); code != 0 {
					t.Fatalf("an old receipt of a kept record does not verify with the old key: %d\n%s", code, out)
				}
			}
			pub, err := os.ReadFile(filepath.Join(dataDir, publishedCheckpointFile))
			if err != nil || !bytes.HasPrefix(pub, []byte(newOrigin+"\n")) {
				t.Fatalf("the remembered checkpoint is not the new origin's: %v\n%s", err, pub)
			}

			// A restart: the latest stored checkpoint is now the new log's.
			base, _, stop = serveOn(newArgs...)
			defer stop()
			assertNewOrigin(base)
			checks(base, token, "D", 1)
		})
	}
}

func mustVerifiers(t *testing.T, keys ...string) note.Verifiers {
	t.Helper()
	vs, err := evidence.Verifiers(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestRolledBackLogIsNotReady: a database rolled back under a running
// replica (restored in place behind a published checkpoint) halts its
// evidence log at the next checkpoint tick, and every receipt fails from
// then on. Before, /readyz stayed 200 and an orchestrator kept sending the
// replica checks whose receipts failed; now it is 503 and names the
// evidence log as halted, so the replica is taken out.
func TestRolledBackLogIsNotReady(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server on PostgreSQL")
	}
	needPGTools(t)
	db := testenv.FreshDatabase(t, "credgate_halt")
	dump := filepath.Join(t.TempDir(), "credgate.dump")
	pgTool := func(name string, args ...string) { runPGTool(t, name, args...) }
	dataDir := t.TempDir()
	base, _, stop := serveInProcess(t, dataDir, "--postgres-url", db, "--checkpoint-interval", "50ms")
	defer stop()
	_, admin := adminToken(t, base, dataDir)
	token := createPartner(t, base, admin, "government_procurement")
	readyz := func() (int, map[string]any) {
		t.Helper()
		res, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("readyz before: %d %v", code, body)
	}
	mustCheck(t, base, token, testenv.USCC(t, "91110108MA01HLT01"))
	pgTool("pg_dump", "--format=custom", "--file="+dump, "--dbname="+db)
	for i := range 3 {
		id := mustCheck(t, base, token, testenv.USCC(t, fmt.Sprintf("91110108MA01HLT1%d", i)))["check_id"].(string)
		if _, code := saveReceipt(t, base, token, id, t.TempDir()); code != http.StatusOK {
			t.Fatalf("receipt of %s: %d", id, code)
		}
	}
	// The backup restored in place, under the running replica.
	pgTool("pg_restore", "--no-owner", "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--dbname="+db, dump)

	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := readyz()
		section, _ := body["evidence_log"].(map[string]any)
		deps, _ := body["dependencies"].(map[string]any)
		if code == http.StatusServiceUnavailable && section["state"] == "halted" && deps["evidence_log"] == "down" &&
			strings.Contains(fmt.Sprint(section["error"]), "restored or rolled back") {
			t.Logf("readyz: %d %v", code, body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz on a rolled-back log: %d %v", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
