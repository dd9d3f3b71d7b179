package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// startLedger lists what a start of serve creates on disk — the data dir,
// the SQLite database, its lock file, the generated keys and
// administrator's credential, the spool dir — so that a start that fails
// before it serves removes them again, and nothing that was there before
// it. Its methods do nothing on a nil ledger (commands other than serve).
type startLedger struct {
	logger *slog.Logger
	paths  []string // in the order they were noted; removed last first
	// kept: what was generated is in use and stays, however the start ends
	// (keep); failed: the start failed (fail).
	kept, failed bool
	// freshDB: this start is creating the SQLite database (openStoreNoted).
	freshDB bool
}

func newStartLedger(logger *slog.Logger) *startLedger { return &startLedger{logger: logger} }

// absent notes path if nothing is there yet, and says whether it did:
// whatever is there when the start fails was put there by this start.
func (l *startLedger) absent(path string) bool {
	if l == nil {
		return false
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	l.paths = append(l.paths, path)
	return true
}

// absentDir notes the outermost directory of dir's path that does not
// exist yet (MkdirAll creates it and all below it), if any: only what this
// start created goes, never a parent it found.
func (l *startLedger) absentDir(dir string) {
	if l == nil {
		return
	}
	dir = filepath.Clean(dir)
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if top != "" {
		l.paths = append(l.paths, top)
	}
}

// keep makes everything noted so far, and after, stay: called once what
// was generated may have signed into a store that stays.
func (l *startLedger) keep() {
	if l != nil {
		l.kept = true
	}
}

// fail says that the start failed: settle removes what it noted.
func (l *startLedger) fail() {
	if l != nil {
		l.failed = true
	}
}

// settle removes what was noted, last first, if the start failed and
// nothing is kept. It runs as the store closes: after the database and
// the spool are closed, before the data dir's lock is released, so that
// no other server starts in the data dir meanwhile.
func (l *startLedger) settle() {
	if l == nil || !l.failed || l.kept {
		return
	}
	for _, p := range slices.Backward(l.paths) {
		if err := os.RemoveAll(p); err != nil {
			l.logger.Warn("a failed start could not remove what it created", "path", p, "error", err)
		}
	}
	l.paths = nil
}
