//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs the rest of the test under umask mask, the usual 022
// of a login shell (under which os.Create makes files of 0644), and
// restores the process's own at its end. The umask is the process's: a
// test that calls it must not run in parallel with others.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// wantPrivate fails the test for a file that anyone but its owner may
// read or write.
func wantPrivate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("%s has mode %#o: its group and others may read it", filepath.Base(path), perm)
	}
}

// TestScreenWritesPrivateFiles: under umask 022, credgate screen writes
// its results (every subject's ID number and answer), the job's receipt
// and the chained receipts readable by their owner alone, also where an
// earlier run, or a copy, left those files readable by all.
func TestScreenWritesPrivateFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	withUmask(t, 0o022)
	f := newScreenFixture(t, 20)
	book := filepath.Join(f.dir, "loanbook.csv")
	var cs bytes.Buffer
	cs.WriteString("id\n")
	for _, s := range f.subjects {
		cs.WriteString(s + "\n")
	}
	if err := os.WriteFile(book, cs.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "results.csv")
	receipts := filepath.Join(f.dir, "receipts")
	if err := os.Mkdir(receipts, 0o700); err != nil {
		t.Fatal(err)
	}
	// Line 4 (the fourth subject) is listed: its chained receipt is
	// written over the one left here.
	stale := []string{out, out + ".partial", out + ".receipt.json", filepath.Join(receipts, "4.json")}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("left by an earlier run\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	args := []string{"screen", book, "--action", "bank_credit", "--out", out, "--receipts", receipts,
		"--url", f.srv.base, "--credentials", f.partnerCred, "--poll", "100ms"}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("screen: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	written, err := filepath.Glob(filepath.Join(receipts, "*.json"))
	if err != nil || len(written) != len(f.listed) {
		t.Fatalf("%d chained receipts (%v), want %d", len(written), err, len(f.listed))
	}
	for _, p := range append([]string{out, out + ".receipt.json"}, written...) {
		wantPrivate(t, p)
	}
	for _, p := range []string{out + ".partial", out + ".job"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is left behind: %v", filepath.Base(p), err)
		}
	}
	// durable.WriteFile's temporary files (the job and receipt files).
	if tmp, _ := filepath.Glob(filepath.Join(f.dir, ".*.tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}
