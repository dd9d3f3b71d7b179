package evidence

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Pages of the checkpoint history.
const (
	DefaultHistoryPage = 20
	MaxHistoryPage     = 100
)

// HistoryEntry is one stored checkpoint of the log's history, as checked
// on the server: its signature against every key the log has used, and
// the consistency proof from the next older checkpoint to it, read from
// the stored tree and verified against both signed roots.
type HistoryEntry struct {
	StoredCheckpoint
	// Signers are the keys (name+hash) whose signatures on the note
	// verify; SignatureErr says why the note does not verify, if not.
	Signers      []string
	SignatureErr error
	// Older is the size of the next older stored checkpoint; HasOlder is
	// false for the oldest. ProofHashes is the consistency proof's length
	// and ConsistencyErr what failed, if anything: a failure means the
	// history was rewritten (the older root is not a prefix of this one).
	Older          uint64
	HasOlder       bool
	ProofHashes    int
	ConsistencyErr error
}

// History returns up to limit stored checkpoints of sizes below below (0:
// from the latest), largest first, each verified: signed by a key of the
// log, and consistent with the next older one (the one after it in the
// page; the last of a page is checked against the first of the next
// page, read here too). limit is at most MaxHistoryPage; 0 is
// DefaultHistoryPage.
func (l *Log) History(ctx context.Context, below uint64, limit int) ([]HistoryEntry, error) {
	if limit <= 0 {
		limit = DefaultHistoryPage
	}
	limit = min(limit, MaxHistoryPage)
	cps, err := l.store.Checkpoints(ctx, below, limit+1)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	vs, err := l.verifiers(ctx)
	if err != nil {
		return nil, err
	}
	n := min(len(cps), limit)
	out := make([]HistoryEntry, n)
	for i := range n {
		e := HistoryEntry{StoredCheckpoint: cps[i]}
		e.Signers, e.SignatureErr = l.checkSigned(cps[i], vs)
		if i+1 < len(cps) {
			older := cps[i+1]
			e.Older, e.HasOlder = older.Size, true
			e.ProofHashes, e.ConsistencyErr = l.checkConsistent(ctx, older, cps[i])
			if e.ConsistencyErr != nil && !errors.Is(e.ConsistencyErr, ErrTreeCorrupt) {
				// The store failed, not the history.
				return nil, e.ConsistencyErr
			}
		}
		out[i] = e
	}
	return out, nil
}

// checkSigned verifies a stored checkpoint's note with the log's keys and
// that it states the row's size and root.
func (l *Log) checkSigned(cp StoredCheckpoint, vs note.Verifiers) ([]string, error) {
	sc, err := OpenCheckpoint(cp.Note, vs, l.Origin())
	if err != nil {
		return nil, err
	}
	if sc.Size != cp.Size || sc.Root != cp.Root {
		return nil, fmt.Errorf("%w: the note states %d records, the row %d or another root", ErrTreeCorrupt, sc.Size, cp.Size)
	}
	n, err := note.Open(cp.Note, vs)
	if err != nil {
		return nil, err
	}
	signers := make([]string, 0, len(n.Sigs))
	for _, s := range n.Sigs {
		signers = append(signers, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return signers, nil
}

// checkConsistent reads the consistency proof from older to newer and
// verifies it against their roots. A proof that does not verify is
// ErrTreeCorrupt; other errors are the store's.
func (l *Log) checkConsistent(ctx context.Context, older, newer StoredCheckpoint) (int, error) {
	p, err := ConsistencyProof(ctx, l.store, older.Size, newer.Size)
	if err != nil {
		return 0, err
	}
	if err := VerifyConsistency(older.Size, newer.Size, p, older.Root, newer.Root); err != nil {
		return len(p), fmt.Errorf("%w: the checkpoint of %d records is not consistent with the one of %d: %w",
			ErrTreeCorrupt, newer.Size, older.Size, err)
	}
	return len(p), nil
}
