package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// import and verify take their flags after the file too, as screen and
// partners do: once they printed the whole usage and exited 2.
func TestFlagsAfterTheFile(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	entries, err := filepath.Abs("../../examples/entries.csv")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "import", entries, "--data-dir", dataDir, "--format", "csv")
	if code != 0 || !strings.Contains(out, "imported 2 entries") {
		t.Fatalf("import FILE --data-dir: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "credgate.db")); err != nil {
		t.Errorf("not imported into --data-dir: %v", err)
	}

	r, _, vkey := offlineReceipt(t)
	receipt := filepath.Join(t.TempDir(), "receipt.json")
	b, _ := json.Marshal(r)
	if err := os.WriteFile(receipt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "verify", receipt, "--key", vkey, "--origin", testOrigin); code != 0 || !strings.Contains(out, "receipt.json: OK") {
		t.Fatalf("verify RECEIPT --key: exit %d\n%s%s", code, out, errOut)
	}
	// Still a usage error: no file, or a flag it does not know.
	if code, _, _ := runCmd(t, "import", "--data-dir", dataDir); code != 2 {
		t.Errorf("import without a file: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "verify", receipt, "--key", vkey, "--nope"); code != 2 {
		t.Errorf("verify with an unknown flag: exit %d, want 2", code)
	}
}

// An empty --key file is said to be empty, not taken for no --key at all.
func TestEmptyKeyFileNamed(t *testing.T) {
	t.Parallel()
	empty := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(empty, []byte("# no keys yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"audit", "--key", empty, "--url", "http://127.0.0.1:1", "--state", filepath.Join(t.TempDir(), "state.json")},
		{"verify", "--key", empty, empty},
	} {
		code, out, errOut := runCmd(t, args...)
		if code != 1 || !strings.Contains(errOut, "--key "+empty+": the file holds no verifier key") || strings.Contains(errOut, "no verifier key given") {
			t.Errorf("%s: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
}

// credgate help names every subcommand of spool, status too.
func TestHelpNamesSpoolStatus(t *testing.T) {
	t.Parallel()
	_, out, _ := runCmd(t, "help")
	for _, sub := range []string{"spool integrate --dir DIR", "spool status --dir DIR"} {
		if !strings.Contains(out, "credgate "+sub) {
			t.Errorf("credgate help lacks %q", sub)
		}
	}
}
