package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
)

// One holder at a time: a second lock of the same dir is refused with the
// holder's pid and leaves the file as it was; after Release the dir can be
// locked again.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	first, err := sqlite.LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, sqlite.LockFileName)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.LockDataDir(dir)
	var le *sqlite.LockedError
	if !errors.Is(err, sqlite.ErrDataDirLocked) || !errors.As(err, &le) || le.PID != os.Getpid() || le.Path != path {
		t.Fatalf("second lock: %v (%+v), want locked by %d", err, le, os.Getpid())
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("the refused lock changed the file: %q → %q", before, after)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlite.LockDataDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Fatal(err)
	}
	if err := again.Release(); err != nil {
		t.Fatalf("a second release: %v", err)
	}
}

// A dir that cannot be opened is an error, not "locked".
func TestLockDataDirMissing(t *testing.T) {
	_, err := sqlite.LockDataDir(filepath.Join(t.TempDir(), "absent"))
	if err == nil || errors.Is(err, sqlite.ErrDataDirLocked) {
		t.Fatalf("missing dir: %v", err)
	}
}
