package audit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/credgate/credgate/client/audit"
)

// TestArchiveWriterAtomic: an archive (directory or tar) is under its
// final name only once committed; an aborted one leaves nothing, and an
// existing name is never written over.
func TestArchiveWriterAtomic(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"log", "log.tar"} {
		dir := t.TempDir()
		out := filepath.Join(dir, name)
		w, err := audit.CreateArchive(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.PutArchiveFile("tile/entries/000.p/1", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Fatalf("%s exists before its commit", name)
		}
		w.Abort()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("aborted %s left %v", name, left)
		}
		w, err = audit.CreateArchive(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.PutArchiveFile("keys", []byte("k\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.Abort() // a no-op once committed
		if left, _ := os.ReadDir(dir); len(left) != 1 || left[0].Name() != name {
			t.Fatalf("committed %s: the directory holds %v", name, left)
		}
		r, err := audit.OpenArchive(out)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := r.ReadArchiveFile("keys", 10); err != nil || string(b) != "k\n" {
			t.Fatalf("%s: keys %q %v", name, b, err)
		}
		r.Close()
		if _, err := audit.CreateArchive(out); err == nil {
			t.Fatalf("%s created over an existing archive", name)
		}
	}
}
