package sqlitetest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
)

// Seed puts into dir (created if missing) a copy of an empty store with
// every migration applied, so that sqlite.Open(ctx, dir, …) finds nothing
// to migrate. Migrating a new store is most of what opening one costs a
// test under the race detector (goose runs each migration's SQL through
// SQLite's parser, every pointer of which the detector checks): about half
// a second of CPU a store, against a few milliseconds for the copy.
//
// The migrated store is built once per set of migrations and SQLite
// engine version and kept in the system's temporary directory, shared by every
// test process of a run and by later runs; a change to any migration
// names a new one. Tests of migrating itself, or of a store created with
// options that only a new file takes (a page size), open an empty dir
// instead.
func Seed(tb testing.TB, dir string) {
	tb.Helper()
	tmpl, err := template(tb.Context())
	if err != nil {
		tb.Fatalf("sqlitetest: the migrated store: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := copyStore(tmpl, dir); err != nil {
		tb.Fatalf("sqlitetest: copy the migrated store into %s: %v", dir, err)
	}
}

// template returns the directory of the migrated store for this build's
// migrations and SQLite engine, building it if no process has yet.
func template(ctx context.Context) (string, error) {
	key, err := templateKey(ctx)
	if err != nil {
		return "", err
	}
	root := filepath.Join(os.TempDir(), "credgate-sqlitetest")
	final := filepath.Join(root, key)
	if _, err := os.Stat(filepath.Join(final, sqlite.FileName)); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	// Built aside and renamed into place: a directory appears whole or
	// not at all, so a process never copies a half-migrated store, and
	// of two processes building at once the first rename wins.
	build, err := os.MkdirTemp(root, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build)
	st, err := sqlite.Open(ctx, build, sqlite.WithCheckpoint(0, 0))
	if err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(build, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, sqlite.FileName)); statErr == nil {
			return final, nil // another process's
		}
		return "", err
	}
	return final, nil
}

// templateKey names the migrated store of this build: a digest of its
// migrations and of the SQLite engine's version, asked of the engine
// (test binaries carry no module versions to read it from).
func templateKey(ctx context.Context) (string, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return "", fmt.Errorf("the SQLite engine's version: %w", err)
	}
	return digest(sqlite.Migrations(), version)
}

// digest hashes the names and contents of the files of fsys, in lexical
// order, and lib, the engine's version.
func digest(fsys fs.FS, lib string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "sqlite %s\n", lib)
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(body))
		h.Write(body)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// copyStore copies the database file of the store in src, and its
// write-ahead log if closing it left one, into dst. The shared-memory
// index is not copied: SQLite rebuilds it from the log.
func copyStore(src, dst string) error {
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
		err := copyFile(filepath.Join(src, name), filepath.Join(dst, name))
		if name != sqlite.FileName && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	// O_EXCL: seeding over an existing store would be a test's mistake.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Dir returns a new temporary directory of tb, seeded with a migrated
// store (Seed): where a test would open sqlite.Open(ctx, tb.TempDir()).
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	Seed(tb, dir)
	return dir
}
