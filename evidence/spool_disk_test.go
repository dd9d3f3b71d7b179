package evidence_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// tinyDisk mounts a tmpfs of size bytes for the test (root only; skipped
// where mounting is not allowed) and unmounts it at cleanup.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes into dir/name until the disk is full.
func fillDisk(t *testing.T, dir, name string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 512)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// A spool that filled its disk while the log was away is integrated and
// emptied once the log is back: marking entries integrated needs no free
// space (it rewrites the mark in place), and the compaction after the last
// mark gives the disk back, so that the spool takes records again. With a
// new file per mark, the mark failed on ENOSPC for good and the spool
// stayed full.
func TestSpoolIntegratedOnAFullDisk(t *testing.T) {
	dir := tinyDisk(t, "256k")
	s := openSpool(t, dir)
	var err error
	n := 0
	for ; err == nil; n++ {
		_, err = s.Append(t.Context(), spoolRec(t, fmt.Sprintf("r%d", n)))
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append to a full disk: %v, want ENOSPC", err)
	}
	fillDisk(t, dir, "filler") // whatever a torn entry left free
	st := s.Stats()
	if st.Pending < 100 || st.Broken != nil {
		t.Fatalf("spool on the full disk: %+v", st)
	}

	for {
		es, err := s.Pending(64)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		if err := s.MarkIntegrated(es[len(es)-1].Position); err != nil {
			t.Fatalf("mark position %d integrated on the full disk: %v", es[len(es)-1].Position, err)
		}
	}
	if st := s.Stats(); st.Pending != 0 || st.Bytes != 0 || st.Integrated != uint64(st.Next-1) {
		t.Fatalf("integrated spool: %+v", st)
	}
	if _, err := s.Append(t.Context(), spoolRec(t, "after")); err != nil {
		t.Fatalf("append after the spool was emptied: %v", err)
	}
	s.Close()
	s = openSpool(t, dir)
	if st := s.Stats(); st.Pending != 1 || st.Integrated != uint64(n-1) {
		t.Fatalf("reopened: %+v, want 1 pending after %d integrated", st, n-1)
	}
}

// The integrated mark keeps its size (it is rewritten in place), and a
// mark an older release wrote unpadded is read, then rewritten at open.
func TestSpoolMarkInPlace(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	spoolN(t, s, 0, 3)
	mark := filepath.Join(dir, "integrated")
	before, err := os.Stat(mark)
	if err != nil {
		t.Fatalf("a new spool has no mark: %v", err)
	}
	if err := s.MarkIntegrated(2); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(mark)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !os.SameFile(before, after) {
		t.Fatalf("mark replaced (%d bytes, then %d; same file %v), want rewritten in place", before.Size(), after.Size(), os.SameFile(before, after))
	}
	s.Close()

	// An older release's mark.
	if err := os.WriteFile(mark, []byte("2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openSpool(t, dir)
	if got, err := s.Pending(10); err != nil || len(got) != 1 || got[0].Position != 3 {
		t.Fatalf("pending under an unpadded mark: %+v %v", got, err)
	}
	if fi, err := os.Stat(mark); err != nil || fi.Size() != before.Size() {
		t.Fatalf("unpadded mark not rewritten at open: %v %v", fi, err)
	}
	if err := s.MarkIntegrated(3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openSpool(t, dir)
	if st := s.Stats(); st.Pending != 0 || st.Integrated != 3 || st.Next != 4 {
		t.Fatalf("reopened: %+v", st)
	}
}

// snapshot is every file of dir and its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// A directory that holds no spool is refused, not made one, by an open
// that wants an existing spool and by ReadSpoolStats: an operator who
// points at a replica's data dir instead of its spool is told so, and
// nothing is written there.
func TestSpoolExistingOnly(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "credgate.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "nothing")
	for _, dir := range []string{root, missing} {
		if _, err := evidence.OpenSpool(dir, evidence.WithSpoolExisting()); !errors.Is(err, evidence.ErrNotSpool) {
			t.Errorf("OpenSpool(%s, existing): %v, want ErrNotSpool", dir, err)
		}
		if _, err := evidence.ReadSpoolStats(dir); !errors.Is(err, evidence.ErrNotSpool) {
			t.Errorf("ReadSpoolStats(%s): %v, want ErrNotSpool", dir, err)
		}
	}
	if got := snapshot(t, root); len(got) != 1 {
		t.Errorf("files in the directory after refusing it: %v", got)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing directory was created: %v", err)
	}

	dir := filepath.Join(root, "spool")
	s := openSpool(t, dir)
	spoolN(t, s, 0, 2)
	s.Close()
	s, err := evidence.OpenSpool(dir, evidence.WithSpoolExisting())
	if err != nil {
		t.Fatalf("an existing spool: %v", err)
	}
	defer s.Close()
	if st := s.Stats(); st.Pending != 2 {
		t.Errorf("existing spool: %+v", st)
	}
}

// ReadSpoolStats says what a spool holds without changing a byte of it:
// a torn tail stays (and is not counted), an integrated spool is not
// compacted, no lock file is made; and it reads a spool a replica holds.
func TestReadSpoolStats(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	es := spoolN(t, s, 0, 4)
	if err := s.MarkIntegrated(1); err != nil {
		t.Fatal(err)
	}
	live, err := evidence.ReadSpoolStats(dir)
	if err != nil {
		t.Fatalf("beside the running replica: %v", err)
	}
	if want := s.Stats(); live.Pending != want.Pending || live.Replica != want.Replica || !live.Oldest.Equal(want.Oldest) ||
		live.Integrated != want.Integrated || live.Next != want.Next || live.Bytes != want.Bytes {
		t.Errorf("read %+v, the spool says %+v", live, want)
	}
	if err := s.MarkIntegrated(4); err != nil {
		t.Fatal(err)
	}
	spoolN(t, s, 4, 1)
	s.Close()

	// A torn tail, and no lock file: both must stay as they are.
	f, err := os.OpenFile(filepath.Join(dir, "spool.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(filepath.Join(dir, "spool.lock")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	st, err := evidence.ReadSpoolStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Integrated != 4 || st.Next != 6 || st.Replica != es[0].Replica {
		t.Errorf("stats: %+v", st)
	}
	if after := snapshot(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("ReadSpoolStats changed the spool:\nbefore %q\nafter  %q", before, after)
	}
}
