package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// goldenVerifierKey verifies the committed seeds of evidence/testdata/fuzz
// (a throwaway test key; see the README there).
const goldenVerifierKey = "credgate.test+6f6af1b6+AR0b5ps0SMACa8VY3VxCNUgB14wida4LOtxC2XHwoNSb"

// TestVerifyGoldenSeeds: every receipt or promise committed as a valid_*
// seed under evidence/testdata/fuzz verifies through `credgate verify`
// itself, with the verdict and exit status its kind has (OK 0, ERASED 3,
// PROMISED 4): bytes once handed out keep verifying the way an auditor
// runs it, not only through the library beneath.
func TestVerifyGoldenSeeds(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "evidence", "testdata", "fuzz")
	seeds, err := filepath.Glob(filepath.Join(root, "*", "valid_*"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	checked := 0
	for _, path := range seeds {
		corpus, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
		var wantCode int
		var wantWord string
		switch {
		case corpus == "FuzzOpenCheckpoint":
			continue // a checkpoint note, not something verify takes
		case corpus == "FuzzVerifyPromise":
			wantCode, wantWord = exitPromised, "PROMISED"
		case corpus == "FuzzVerifyReceipt" && strings.Contains(name, "erased"):
			wantCode, wantWord = exitErased, "ERASED"
		case corpus == "FuzzVerifyReceipt", corpus == "FuzzVerifyScreeningReceipt":
			wantCode, wantWord = 0, "OK"
		default:
			t.Errorf("%s: valid seeds of %s, which this test does not know how verify judges: add them here", path, corpus)
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		file := filepath.Join(dir, corpus+"-"+name+".json")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := runCLI("verify", "--key", goldenVerifierKey, "--origin", testOrigin, file)
		if code != wantCode || !strings.Contains(out, filepath.Base(file)+": "+wantWord+": ") {
			t.Errorf("%s: exit %d, want %d and %s\n%s", path, code, wantCode, wantWord, out)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d golden seeds found under %s", checked, root)
	}
}
