package durable_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/credgate/credgate/internal/durable"
)

// WriteFile replaces a file anyone could read with one of its owner's
// alone, whatever the umask, creates a missing directory owner-only, and
// leaves nothing else in the directory.
func TestWriteFileIsPrivateAndWhole(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "results.ndjson.job")
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(dir, "results.ndjson.job", []byte(`{"id":"j"}`)); err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o600)
	if b, err := os.ReadFile(path); err != nil || string(b) != `{"id":"j"}` {
		t.Fatalf("%q %v", b, err)
	}
	fresh := filepath.Join(t.TempDir(), "quarantine")
	if err := durable.WriteFile(fresh, "00000000000000000001.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantMode(t, fresh, 0o700|os.ModeDir)
	wantMode(t, filepath.Join(fresh, "00000000000000000001.json"), 0o600)
	for _, d := range []string{dir, fresh} {
		if des, err := os.ReadDir(d); err != nil || len(des) != 1 {
			t.Fatalf("%s holds %v (%v), want the one file", d, des, err)
		}
	}
}

// A write that cannot complete (here the name is a directory, so the
// rename fails) leaves what was there and no temporary file.
func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "taken", "x"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(dir, "taken", []byte("new")); err == nil {
		t.Fatal("a rename over a non-empty directory succeeded")
	}
	des, err := os.ReadDir(dir)
	if err != nil || len(des) != 1 || des[0].Name() != "taken" {
		t.Fatalf("after a failed write the directory holds %v (%v)", des, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "taken", "x")); err != nil || string(b) != "kept" {
		t.Fatalf("%q %v", b, err)
	}
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}
