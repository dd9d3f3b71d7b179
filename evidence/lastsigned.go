package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/credgate/credgate/internal/durable"
)

// ErrLogRolledBack: the database's log is not an extension of a checkpoint
// this log already published (the latest one this replica signed or
// served, remembered outside the database): the database was restored
// from a backup or rolled back. Signing its tree would give two different
// histories under one origin and key, which C2SP tlog-checkpoint forbids
// and every auditor who saw the old one reports as a rewrite; the log
// refuses to sign until it is started as a new log (a new origin).
var ErrLogRolledBack = errors.New("the evidence log's database was restored or rolled back behind a checkpoint this log already published")

// RollbackError says what the database holds and what was published.
type RollbackError struct {
	// Published is the checkpoint the database's tree does not extend,
	// and Source where it was found: the replica's file (WithPublishedFile)
	// or the database's latest checkpoint. Size and Root are the tree's.
	Source    string
	Published SignedCheckpoint
	Size      uint64
	Root      [HashSize]byte
	// Err is why they are inconsistent (nil: the tree is smaller).
	Err error
}

func (e *RollbackError) Error() string {
	why := "smaller than"
	switch {
	case e.Err != nil && e.Size == e.Published.Size:
		why = "of the same size as, with another root than,"
	case e.Err != nil:
		why = fmt.Sprintf("not an extension of (%v)", e.Err)
	}
	return fmt.Sprintf("%v: the database's tree of %d records is %s the checkpoint of %d records this log published (%s)",
		ErrLogRolledBack, e.Size, why, e.Published.Size, e.Source)
}

// Unwrap makes errors.Is(err, ErrLogRolledBack) hold, and ErrTreeCorrupt:
// the stored log does not agree with what was published from it.
func (e *RollbackError) Unwrap() []error { return []error{ErrLogRolledBack, ErrTreeCorrupt} }

// WithPublishedFile makes the log remember, in the file path (outside the
// database, on the replica's own disk), the largest checkpoint of its
// origin that it has signed or served, and refuse to sign a tree that is
// not an extension of it (ErrLogRolledBack). Without it a database
// restored or rolled back behind a published checkpoint would get the
// real key's signature on a second history. The file holds the signed
// note itself, as auditors read it; one of another origin does not apply
// (a log restarted under a new origin is a new log) and is replaced.
func WithPublishedFile(path string) LogOption {
	return func(l *Log) { l.pubFile = path }
}

// loadPublished reads the remembered checkpoint: ok is false when there is
// none, or when it is of another origin.
func loadPublished(path, origin string) (sc SignedCheckpoint, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return SignedCheckpoint{}, false, nil
	}
	if err != nil {
		return SignedCheckpoint{}, false, fmt.Errorf("read the published checkpoint: %w", err)
	}
	// The note's text is what was signed; its signatures were checked when
	// it was signed or served, and the key may have been rotated since.
	text, _, found := bytes.Cut(b, []byte("\n\n"))
	var c Checkpoint
	if found {
		c, err = ParseCheckpoint(append(text, '\n'))
	}
	if !found || err != nil {
		return SignedCheckpoint{}, false, fmt.Errorf("%s is damaged (not a checkpoint note: %v); restore it from the replica's backup: "+
			"it is what keeps this log from signing a rolled-back database", path, err)
	}
	if c.Origin != origin {
		return SignedCheckpoint{}, false, nil
	}
	return SignedCheckpoint{Checkpoint: c, Note: b}, true, nil
}

// savePublished writes the remembered checkpoint durably: a crash leaves
// the old one or the new one whole.
func savePublished(path string, note []byte) error {
	if err := durable.WriteFile(filepath.Dir(path), filepath.Base(path), note); err != nil {
		return fmt.Errorf("remember the published checkpoint: %w", err)
	}
	return nil
}

// guard checks that the database's tree head extends the checkpoint this
// replica remembers publishing and the latest stored one (latest; none:
// there is none), which may be another replica's: consistency with both
// is what lets head be signed. A head that does not extend them stops
// the log's signing for good (ErrLogRolledBack); a store that cannot be
// read is an ordinary error, retried.
func (l *Log) guard(ctx context.Context, head Head, latest StoredCheckpoint, none bool) error {
	if h := l.halt.Load(); h != nil {
		return h
	}
	if l.pubFile == "" {
		return nil
	}
	l.mu.Lock()
	pub, ok := l.pub, l.pubOK
	l.mu.Unlock()
	if ok {
		if err := l.extends(ctx, head, pub.Size, pub.Root); err != nil {
			return l.stop(err, &RollbackError{Source: "remembered in " + l.pubFile, Published: pub, Size: head.Size, Root: head.Root})
		}
	}
	if !none && (!ok || latest.Size > pub.Size) {
		if err := l.extends(ctx, head, latest.Size, latest.Root); err != nil {
			return l.stop(err, &RollbackError{Source: "the database's latest checkpoint",
				Published: SignedCheckpoint{Checkpoint: Checkpoint{Origin: l.Origin(), Size: latest.Size, Root: latest.Root}, Note: latest.Note},
				Size:      head.Size, Root: head.Root})
		}
	}
	return nil
}

// errShorter: the tree is smaller than the checkpoint (no proof to read).
var errShorter = errors.New("the tree is smaller")

// extends proves that head extends the tree (size, root): nil if it does,
// an error wrapping ErrTreeCorrupt if it does not, errShorter if head is
// smaller, any other error the store's.
func (l *Log) extends(ctx context.Context, head Head, size uint64, root [HashSize]byte) error {
	switch {
	case head.Size < size:
		return errShorter
	case head.Size == size && head.Root == root:
		return nil
	case head.Size == size:
		return fmt.Errorf("%w: another root", ErrTreeCorrupt)
	}
	p, err := ConsistencyProof(ctx, l.store, size, head.Size)
	if err != nil {
		return fmt.Errorf("read the consistency proof from %d to %d records: %w", size, head.Size, err)
	}
	if err := VerifyConsistency(size, head.Size, p, root, head.Root); err != nil {
		return fmt.Errorf("%w: %w", ErrTreeCorrupt, err)
	}
	return nil
}

// stop turns a failed extends into the log's halt (and its one ERROR
// line), or passes a store error on.
func (l *Log) stop(err error, rb *RollbackError) error {
	if !errors.Is(err, errShorter) && !errors.Is(err, ErrTreeCorrupt) {
		return err
	}
	if !errors.Is(err, errShorter) {
		rb.Err = err
	}
	if l.halt.CompareAndSwap(nil, rb) {
		l.logger.Error("evidence: refusing to sign: the database was restored or rolled back behind a checkpoint this log published; "+
			"receipts fail until the log is restarted under a new origin (docs/OPERATIONS.md, Backup and restore)",
			"published_size", rb.Published.Size, "tree_size", rb.Size, "err", rb)
	}
	return l.halt.Load()
}

// publish remembers sc as the largest checkpoint published, when it is
// larger than the one remembered (guard has checked that it extends it).
func (l *Log) publish(sc SignedCheckpoint) error {
	if l.pubFile == "" {
		return nil
	}
	l.mu.Lock()
	pub, ok := l.pub, l.pubOK
	l.mu.Unlock()
	if ok && pub.Size >= sc.Size {
		return nil
	}
	if err := savePublished(l.pubFile, sc.Note); err != nil {
		return err
	}
	l.mu.Lock()
	l.pub, l.pubOK = sc, true
	l.mu.Unlock()
	return nil
}
