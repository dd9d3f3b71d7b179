package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// TestVerifyPromiseIsNotProof: a promise of inclusion verifies as a
// promise, and the exit status says it is not a proof (4), so that
// "verify && archive" does not archive it as proven; a failure still wins.
func TestVerifyPromiseIsNotProof(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, skey, vkey := offlineReceipt(t)
	signer, err := evidence.NewSigner(testOrigin, skey)
	if err != nil {
		t.Fatal(err)
	}
	rec := evidence.Record{ID: "chk-spooled", Kind: evidence.KindCheck, Partner: "p", At: time.Now(), Body: []byte(`{"outcome":"restrict"}`)}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	p, err := signer.Promise(evidence.SpoolEntry{Position: 7, Replica: "replica-a", Record: rec}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, v any) string {
		t.Helper()
		path := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good, promise := write("good.json", r), write("promise.json", p)
	answer := write("answer.json", map[string]any{"check_id": "chk-spooled", "receipt": map[string]any{"promise": p}})
	r.Record.Partner = "someone-else"
	bad := write("bad.json", r)

	code, out := runCLI("verify", "--key", vkey, "--origin", testOrigin, good, promise, answer)
	if code != exitPromised || !strings.Contains(out, "promise.json: PROMISED:") || !strings.Contains(out, "answer.json: PROMISED:") ||
		!strings.Contains(out, "good.json: OK:") || strings.Contains(out, "FAILED") {
		t.Fatalf("promise: exit %d, want %d\n%s", code, exitPromised, out)
	}
	if code, out := runCLI("verify", "--key", vkey, promise, bad); code != 1 || !strings.Contains(out, "bad.json: FAILED") {
		t.Fatalf("promise and a failure: exit %d, want 1\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", vkey, good); code != 0 {
		t.Fatalf("a proof alone: exit %d\n%s", code, out)
	}
}
