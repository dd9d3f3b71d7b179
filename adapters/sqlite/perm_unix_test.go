//go:build unix

package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
)

// The database holds resident ID numbers and secret hashes: its files are
// the owner's alone (0600) even in a data dir that exists already with
// mode 0755 (`mkdir data`, the image's /var/lib/credgate) under the usual
// umask 022, where SQLite on its own makes them 0644; and files left
// readable by an earlier start are made so too. Not parallel: the umask
// is the process's.
func TestDatabaseFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	check := func(t *testing.T, dir string) {
		t.Helper()
		s, err := sqlite.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// While the store is open its WAL and shared memory exist beside it.
		for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s has mode %#o, readable beyond its owner", name, perm)
			}
		}
	}
	dataDir := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("new", func(t *testing.T) { check(t, dataDir(t)) })

	t.Run("left readable", func(t *testing.T) {
		dir := dataDir(t)
		path := filepath.Join(dir, sqlite.FileName)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)"); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// A WAL and shared memory left by a start that did not close them.
		for _, name := range []string{path + "-wal", path + "-shm"} {
			if err := os.WriteFile(name, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("the earlier database: %v %v, want mode 0644 to start from", fi.Mode(), err)
		}
		check(t, dir)
	})
}
