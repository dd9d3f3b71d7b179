package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/policy"
)

// EntryLoader stages a bulk load of entries and swaps it in whole: the
// entries are written in chunks where readers do not see them — staging
// rows moved into the entries in one transaction at the end (SQLite), or
// the entries themselves inside the load's own transaction (PostgreSQL,
// which then writes each row once) — so that a file of any size is kept
// all or nothing.
type EntryLoader interface {
	// BeginEntryLoad registers load id begun at now, and clears what
	// abandoned loads left.
	BeginEntryLoad(ctx context.Context, id string, now time.Time) error
	// StageEntries writes entries, with their person links, into the
	// load's staging area.
	StageEntries(ctx context.Context, id string, entries []policy.Entry) error
	// CommitEntryLoad moves every staged entry of the load into the
	// entries and writes c, in one transaction, and returns how many
	// staged entries it moved. A load commits once: ErrNotFound after.
	CommitEntryLoad(ctx context.Context, id string, c EntryChanges) (int64, error)
	// DiscardEntryLoad deletes what the load staged.
	DiscardEntryLoad(ctx context.Context, id string) error
	// StoredDuplicates returns the entries staged in load id, and those
	// of held (the entries its commit will insert), that repeat a stored
	// entry: one with the same EntryKey, whatever its status. Each names
	// the least id of the stored entries it repeats; at most limit, by id.
	// No two entries of a load share a key (the service refuses such a
	// file first). It first waits until any other load that called it has
	// committed or been discarded, and makes later callers wait for this
	// one: two loads of one file checked at once would otherwise both
	// pass. With id "" it checks held alone and waits for nothing.
	StoredDuplicates(ctx context.Context, id string, held []policy.Entry, limit int) ([]StoredDuplicate, error)
}

// EntryKey is what makes two entries one decision: the same originating
// department's decision, at the same instant, to list the same subject on
// the same list (as Prepare leaves them: trimmed, to the microsecond).
type EntryKey struct {
	Subject               string
	List                  string
	OriginatingDepartment string
	DecidedAt             time.Time
}

// KeyOf returns e's key.
func KeyOf(e policy.Entry) EntryKey {
	return EntryKey{Subject: e.Subject.Value, List: e.List, OriginatingDepartment: e.OriginatingDepartment, DecidedAt: e.DecidedAt}
}

// StoredDuplicate is an entry of a load that repeats a stored entry.
type StoredDuplicate struct {
	Key      EntryKey
	ID       string // the load's entry
	StoredID string // the stored entry it repeats
}

// Limits of a streamed import.
const (
	// MaxImportEntries caps one import file: ten times the largest list
	// a department publishes, so that a runaway file stops.
	MaxImportEntries = 100_000_000
	// MaxImportErrors caps the bad lines reported for one file; reading
	// stops there.
	MaxImportErrors = 1000
	// importChunk entries are staged at a time.
	importChunk = 10_000
	// maxHookSubjects: a load touching more subjects leaves their cache
	// invalidation to the store's change log (the hook would hold them
	// all in memory).
	maxHookSubjects = 100_000
)

// ImportResult is what a stored import holds: how many entries, and
// their ids as its audit record names them (every id up to
// maxImportIDs, else the first, the last and the SHA-256 of all).
type ImportResult struct {
	Count     int64
	IDs       []string
	FirstID   string
	LastID    string
	IDsSHA256 string
}

// ImportFile streams an import file of any size into the store, all or
// nothing: every line is validated as Import does, good entries are staged
// in chunks while the file is read, and only when the whole file is good
// is the import recorded as an act and the staged entries swapped in. Bad
// lines (up to MaxImportErrors) are an ImportError and nothing is kept.
// progress, if not nil, is called with the bytes read so far.
//
// Entries of lists with cross-list rules are held in memory until the end,
// as one may close another of the same file; all others stream. Of every
// line, 16 bytes are kept until the end of reading, to refuse a line that
// repeats an earlier one's entry (importDuplicates). Once the whole file
// is staged, one query of the store refuses the lines that repeat a stored
// entry (storedDuplicateLines): a file imported again, or an import
// retried whose answer was lost, lists nothing twice.
func (s *Entries) ImportFile(ctx context.Context, r io.Reader, format ImportFormat, progress func(int64)) (ImportResult, error) {
	ir, err := NewImportReader(r, format, progress)
	if err != nil {
		return ImportResult{}, err
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return ImportResult{}, err
	}
	id := "load_" + strings.ReplaceAll(uid.String(), "-", "")
	if err := s.store.BeginEntryLoad(ctx, id, s.now().UTC()); err != nil {
		return ImportResult{}, fmt.Errorf("store import: %w", err)
	}
	defer func() {
		// Staged rows go whatever happened; a crash leaves them to the
		// next load's BeginEntryLoad.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = s.store.DiscardEntryLoad(dctx, id)
	}()

	dups := newImportDuplicates()
	defer dups.close()
	st, err := s.stageFile(ctx, id, ir, dups)
	if err != nil {
		return ImportResult{}, err
	}
	// From here until the commit or the discard, other imports wait at
	// this check: each sees the entries of those before it.
	bad, err := s.storedDuplicateLines(ctx, id, st.held, dups)
	if err != nil {
		return ImportResult{}, fmt.Errorf("store import: %w", err)
	}
	if len(bad) > 0 {
		return ImportResult{}, &ImportError{Lines: bad}
	}
	x, err := s.crossList(ctx, st.held, st.heldLines)
	if err != nil {
		return ImportResult{}, err
	}
	inserts, updates := x.entries, x.updates
	var moved int64
	if err := s.audit.do(ctx, ActEntriesImported, "entries", x.describe(st.ids.details()), func() error {
		moved, err = s.store.CommitEntryLoad(ctx, id, EntryChanges{Insert: inserts, Update: updates})
		return err
	}); err != nil {
		return ImportResult{}, fmt.Errorf("store import: %w", err)
	}
	if moved+int64(len(inserts)) != int64(st.ids.n) {
		return ImportResult{}, fmt.Errorf("store import: %d entries stored of %d", moved+int64(len(inserts)), st.ids.n)
	}
	if st.subjects != nil {
		s.changed(st.subjects...)
	}
	s.changedEntries(inserts)
	s.changedEntries(updates)
	return st.ids.result(), nil
}

// staged is what stageFile read.
type staged struct {
	ids       importIDs
	held      []policy.Entry // entries of lists with cross-list rules
	heldLines []int
	subjects  []string // nil past maxHookSubjects
}

// stageFile reads the whole file, preparing each line, and stages good
// entries in chunks on another goroutine while it reads on. dups learns
// every good line's key.
func (s *Entries) stageFile(ctx context.Context, id string, ir *ImportReader, dups *importDuplicates) (*staged, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []policy.Entry, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range chunks {
			if sctx.Err() != nil {
				continue
			}
			if err := s.store.StageEntries(sctx, id, c); err != nil {
				cancel(fmt.Errorf("store import: %w", err))
			}
		}
	}()
	st := &staged{ids: newImportIDs(), subjects: []string{}}
	var bad []LineError
	chunk := make([]policy.Entry, 0, importChunk)
	err := func() error {
		for {
			if sctx.Err() != nil {
				return context.Cause(sctx)
			}
			in, line, err := ir.Next()
			var le LineError
			switch {
			case errors.Is(err, io.EOF):
				return nil
			case errors.As(err, &le):
				bad = append(bad, le)
			case err != nil:
				return err
			default:
				e, perr := s.Prepare(in)
				if perr != nil {
					bad = append(bad, LineError{Line: line, Err: perr})
					break
				}
				dups.add(e, line)
				if len(bad) > 0 {
					break // validated only: the file is refused
				}
				if st.ids.n >= MaxImportEntries {
					return fmt.Errorf("%w: more than %d entries", ErrImportTooLarge, MaxImportEntries)
				}
				st.ids.add(e.ID)
				if st.subjects != nil {
					st.subjects = append(st.subjects, affected(e)...)
					if len(st.subjects) > maxHookSubjects {
						st.subjects = nil
					}
				}
				if s.catalog.CrossListInvolved(e.List) {
					st.held, st.heldLines = append(st.held, e), append(st.heldLines, line)
					break
				}
				chunk = append(chunk, e)
				if len(chunk) == importChunk {
					chunks <- chunk
					chunk = make([]policy.Entry, 0, importChunk)
				}
			}
			if len(bad) >= MaxImportErrors {
				return nil
			}
		}
	}()
	if err == nil {
		bad, err = withDuplicates(bad, dups)
	}
	if err == nil && len(bad) == 0 && len(chunk) > 0 {
		chunks <- chunk
	}
	close(chunks)
	<-done
	if err == nil && sctx.Err() != nil {
		err = context.Cause(sctx)
	}
	switch {
	case err != nil:
		return nil, err
	case len(bad) > 0:
		return nil, &ImportError{Lines: bad}
	case st.ids.n == 0:
		return nil, &ImportError{Lines: []LineError{{Line: 0, Err: errors.New("no entries")}}}
	}
	return st, nil
}

// importIDs digests the ids of an import as its audit record names them,
// one at a time, so that a load of any size is named in constant memory.
type importIDs struct {
	n           int
	ids         []string
	first, last string
	h           hash.Hash
}

func newImportIDs() importIDs { return importIDs{h: sha256.New()} }

func (d *importIDs) add(id string) {
	if d.n == 0 {
		d.first = id
	}
	d.n++
	d.last = id
	if d.n <= maxImportIDs {
		d.ids = append(d.ids, id)
	} else {
		d.ids = nil
	}
	d.h.Write([]byte(id))
	d.h.Write([]byte{'\n'})
}

func (d *importIDs) details() map[string]any {
	m := map[string]any{"count": d.n}
	switch {
	case d.n == 0:
	case d.n <= maxImportIDs:
		m["entry_ids"] = d.ids
	default:
		m["first_entry_id"], m["last_entry_id"] = d.first, d.last
		m["entry_ids_sha256"] = hex.EncodeToString(d.h.Sum(nil))
	}
	return m
}

func (d *importIDs) result() ImportResult {
	r := ImportResult{Count: int64(d.n), FirstID: d.first, LastID: d.last, IDsSHA256: hex.EncodeToString(d.h.Sum(nil))}
	if d.n <= maxImportIDs {
		r.IDs = d.ids
	}
	return r
}
