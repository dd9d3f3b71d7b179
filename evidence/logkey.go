package evidence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrLogKey: the log already holds checkpoints that the replica's keys do
// not verify (signed by another key, or under another origin). A replica
// that signed on regardless would fork the log's history: every receipt,
// old ones included, would stop verifying under one key set.
var ErrLogKey = errors.New("the evidence log is signed by a key this replica does not have")

// CheckpointReader reads the latest stored checkpoint.
type CheckpointReader interface {
	// LatestCheckpoint returns ErrNoCheckpoint when none is stored.
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
}

// LogKeyError says why the stored log does not match a replica's keys.
type LogKeyError struct {
	// SignedBy names the keys ("name+hash") whose signatures the latest
	// stored checkpoint carries, as its note says.
	SignedBy []string
	// Origin is the stored checkpoint's origin when it is not the
	// replica's (WantOrigin); both empty when the origins agree.
	Origin, WantOrigin string
	// Size is the stored checkpoint's tree size.
	Size uint64
}

func (e *LogKeyError) Error() string {
	if e.Origin != "" {
		return fmt.Sprintf("the evidence log's checkpoints are for origin %q, not %q", e.Origin, e.WantOrigin)
	}
	if len(e.SignedBy) == 0 {
		return "the evidence log's latest checkpoint carries no signature"
	}
	return fmt.Sprintf("the evidence log's checkpoints are signed by key %s", strings.Join(e.SignedBy, ", "))
}

// Unwrap makes errors.Is(err, ErrLogKey) hold.
func (e *LogKeyError) Unwrap() error { return ErrLogKey }

// CheckLogKey verifies the latest stored checkpoint with verifiers (the
// replica's own key and any it was given from before a rotation) under
// origin. It returns nil when the log has no checkpoint yet or when the
// checkpoint verifies, and a *LogKeyError (ErrLogKey) when it does not, so
// that a replica refuses to start before it signs anything. verifiers may
// be nil: a replica without a key then passes only on an empty log.
func CheckLogKey(ctx context.Context, st CheckpointReader, origin string, verifiers note.Verifiers) error {
	cp, err := st.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read latest checkpoint: %w", err)
	}
	if verifiers == nil {
		verifiers = note.VerifierList()
	}
	sc, err := OpenCheckpoint(cp.Note, verifiers, "")
	if err == nil {
		if sc.Origin != origin {
			return &LogKeyError{Origin: sc.Origin, WantOrigin: origin, Size: cp.Size}
		}
		return nil
	}
	// Signed only by keys not given here: another replica's key. A
	// signature by a key given here that does not verify is another
	// matter (an altered checkpoint), reported as such.
	if names := unverifiedSigners(cp.Note, verifiers); names != nil {
		return &LogKeyError{SignedBy: names, Size: cp.Size}
	}
	return fmt.Errorf("the latest stored checkpoint (size %d): %w", cp.Size, err)
}

// unverifiedSigners lists the "name+hash" of every signature on a note
// when none of them is by a key of verifiers, and nil otherwise.
func unverifiedSigners(msg []byte, verifiers note.Verifiers) []string {
	_, err := note.Open(msg, verifiers)
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil
	}
	names := make([]string, 0, len(unverified.Note.UnverifiedSigs))
	for _, s := range unverified.Note.UnverifiedSigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return names
}
