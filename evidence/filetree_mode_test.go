package evidence

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The tree's level files hash answers about persons: they are created
// readable by credgate's user only, whatever the process's umask.
func TestFileTreeLevelsArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "tree")
	w, err := CreateFileTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		w.Append(HashLeaf([]byte{byte(i)}))
	}
	if _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) == 0 {
		t.Fatal("no level files")
	}
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", de.Name(), info.Mode().Perm())
		}
	}
}
