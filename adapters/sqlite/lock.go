package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// LockFileName is the lock file a serving process holds in its data dir.
const LockFileName = "credgate.lock"

// ErrDataDirLocked: another process (or another server in this one) holds
// the data dir. Two servers on one SQLite database would each believe they
// alone append to the evidence log.
var ErrDataDirLocked = errors.New("the data dir is in use by another credgate")

// LockedError names the lock file and, when it says so, the pid of the
// process holding it.
type LockedError struct {
	Path string
	PID  int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s: %s is locked by process %d", ErrDataDirLocked, e.Path, e.PID)
	}
	return fmt.Sprintf("%s: %s is locked", ErrDataDirLocked, e.Path)
}

// Unwrap makes errors.Is(err, ErrDataDirLocked) hold.
func (e *LockedError) Unwrap() error { return ErrDataDirLocked }

// DirLock is an exclusive lock on a data dir, held until Release (or the
// process ends: the operating system drops it, so a crash leaves no stale
// lock behind, only the file).
type DirLock struct {
	f *os.File
}

// LockDataDir takes the exclusive lock of dir (which must exist) without
// waiting, and writes this process's pid into the lock file. It returns a
// *LockedError (ErrDataDirLocked) when another holder has it. The Store
// takes it only to migrate (and not when this process holds it already),
// so tools may read and write a served database of the current schema.
func LockDataDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock file: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	if !held {
		// The holder wrote its pid after locking; read, never written here.
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		return nil, &LockedError{Path: path, PID: max(pid, 0)}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) // the pid is a courtesy to the next one
	}
	heldDirs.add(f)
	return &DirLock{f: f}, nil
}

// Release drops the lock. The file stays: removing it would let a waiting
// process lock a file nobody else can see.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	heldDirs.remove(l.f)
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// heldDirs are the lock files this process holds (DirLock), so that Open can
// tell its own process's lock, which it may migrate under, from another's.
var heldDirs heldLocks

type heldLocks struct {
	mu    sync.Mutex
	files []*os.File
}

func (h *heldLocks) add(f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files = append(h.files, f)
}

func (h *heldLocks) remove(f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files = slices.DeleteFunc(h.files, func(g *os.File) bool { return g == f })
}

// has reports whether this process holds the lock of dir.
func (h *heldLocks) has(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, LockFileName))
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.files {
		if gi, err := f.Stat(); err == nil && os.SameFile(fi, gi) {
			return true
		}
	}
	return false
}

// lockForMigration makes sure this process holds dir's lock while it
// migrates: it holds it already (release does nothing), or takes it until
// release; held by another process, it is a *LockedError.
func lockForMigration(dir string) (release func(), err error) {
	if heldDirs.has(dir) {
		return func() {}, nil
	}
	l, err := LockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release() }, nil
}
