package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// dirFiles is every file of dir (recursively) and its content.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// `credgate spool status` and `spool integrate` pointed at a directory
// that holds no spool (a replica's data dir, a mount's root) refuse it and
// say where a spool is, writing nothing there. Before, both made a new
// spool there and said "0 records pending" of it.
func TestSpoolCommandRefusesANonSpool(t *testing.T) {
	root := t.TempDir()
	spool := filepath.Join(root, "spool")
	sp, err := evidence.OpenSpool(spool)
	if err != nil {
		t.Fatal(err)
	}
	rec := evidence.Record{ID: "chk-1", Kind: evidence.KindCheck, Partner: "p1", At: time.Now().UTC(), Body: []byte(`{}`)}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	before := dirFiles(t, root)
	for _, dir := range []string{root, filepath.Join(root, "absent")} {
		for _, sub := range []string{"status", "integrate"} {
			var out, errOut bytes.Buffer
			err := spoolCmd(t.Context(), []string{sub, "--dir", dir, "--data-dir", t.TempDir()}, &out, &errOut)
			if !errors.Is(err, evidence.ErrNotSpool) ||
				err.Error() != dir+" is not a spool directory (no replica file); a replica's spool is <data_dir>/spool, or its evidence.spool_dir" {
				t.Errorf("spool %s --dir %s: %v (output %q)", sub, dir, err, out.String())
			}
		}
	}
	if after := dirFiles(t, root); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refusing a directory changed it:\nbefore %v\nafter  %v", before, after)
	}
}

// `credgate spool status` writes nothing: a torn tail stays, no lock file
// is made, and a spool its replica holds is read.
func TestSpoolStatusReadOnly(t *testing.T) {
	dir := t.TempDir()
	sp, err := evidence.OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for i := range 3 {
		rec := evidence.Record{ID: fmt.Sprintf("chk-%d", i), Kind: evidence.KindCheck, Partner: "p1", At: time.Now().UTC(), Body: []byte(`{}`)}
		if err := rec.Seal(); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Append(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.MarkIntegrated(1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("replica %s: 2 records pending", sp.Replica())
	var out bytes.Buffer
	if err := spoolCmd(t.Context(), []string{"status", "--dir", dir}, &out, &out); err != nil || !strings.Contains(out.String(), want) {
		t.Fatalf("status of a spool in use: %v, %q; want %q", err, out.String(), want)
	}
	sp.Close()

	f, err := os.OpenFile(filepath.Join(dir, "spool.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 0, 9}); err != nil { // a torn tail
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(filepath.Join(dir, "spool.lock")); err != nil {
		t.Fatal(err)
	}
	before := dirFiles(t, dir)
	out.Reset()
	if err := spoolCmd(t.Context(), []string{"status", "--dir", dir}, &out, &out); err != nil || !strings.Contains(out.String(), want) {
		t.Fatalf("status: %v, %q; want %q", err, out.String(), want)
	}
	if after := dirFiles(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("status changed the spool:\nbefore %q\nafter  %q", before, after)
	}
}
