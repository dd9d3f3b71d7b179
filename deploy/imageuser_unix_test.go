//go:build unix

package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// readableBy says whether user uid of group gid may read a file of fi's
// owner and mode.
func readableBy(fi fs.FileInfo, uid, gid uint32) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // no owner to go by
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == uid:
		return perm&0o400 != 0
	case st.Gid == gid:
		return perm&0o040 != 0
	}
	return perm&0o004 != 0
}

// asImageUser says whether this test can run processes as the image's
// user: it runs as root.
func asImageUser() bool { return os.Geteuid() == 0 }

// runAsImageUser makes cmd run as the image's user when this test can
// (asImageUser), as the container does; otherwise as this test's user.
func runAsImageUser(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if !asImageUser() {
		return
	}
	uid, gid := imageUser(t)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: true}
}

// ownByImageUser gives path to the image's user when this test can, as
// the image's Dockerfile gives it its data dir, with mode.
func ownByImageUser(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if !asImageUser() {
		return
	}
	uid, gid := imageUser(t)
	if err := os.Chown(path, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

// reachable lets every user through the directories above path, up to
// the temporary directory (t.TempDir makes them 0700), so that the
// image's user reaches what the test laid out for it.
func reachable(t *testing.T, path string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for d := filepath.Dir(filepath.Clean(path)); d != top && d != filepath.Dir(d); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o111); err != nil {
			t.Fatal(err)
		}
	}
}
