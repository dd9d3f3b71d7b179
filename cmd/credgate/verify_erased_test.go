package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyErasedReceipt: the receipt of an erased record (body and salt
// emptied) is verified to the signed log and reported ERASED with its own
// exit status; one whose proof was forged still FAILS.
func TestVerifyErasedReceipt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, _, vkey := offlineReceipt(t)
	write := func(name string, v any) string {
		t.Helper()
		p := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", r)
	r.Record.Body, r.Record.Salt = "", ""
	erased := write("erased.json", r)
	h, _ := base64.StdEncoding.DecodeString(r.InclusionProof[0])
	h[0] ^= 1
	r.InclusionProof[0] = base64.StdEncoding.EncodeToString(h)
	forged := write("forged.json", r)

	code, out := runCLI("verify", "--key", vkey, "--origin", testOrigin, good, erased)
	if code != exitErased || !strings.Contains(out, "erased.json: ERASED: record 2 is in the signed log; its body was erased") ||
		!strings.Contains(out, "good.json: OK:") || strings.Contains(out, "FAILED") {
		t.Fatalf("erased receipt: exit %d, want %d\n%s", code, exitErased, out)
	}
	code, out = runCLI("verify", "--key", vkey, erased, forged)
	if code != 1 || !strings.Contains(out, "forged.json: FAILED: inclusion proof does not verify") {
		t.Fatalf("erased receipt with a forged proof: exit %d, want 1\n%s", code, out)
	}
	if code, out := runCLI("verify", "--help"); code != 0 || !strings.Contains(out, "3 all verified, but a record's body was erased") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
}
