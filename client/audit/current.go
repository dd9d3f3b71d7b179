package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// Re-proving an old receipt against today's log. A receipt proves its
// record is in the log as its checkpoint signed it; it stays proof that
// the record is in the log now only if today's checkpoint extends that one.
// A log restored from an older copy, or rewritten by someone holding the
// key, signs checkpoints that do not, and a receipt checked offline cannot
// tell.

// Errors.
var (
	// ErrNotInLog: a checkpoint verified earlier (a receipt's) is not a
	// prefix of the log the server serves now: the log was rolled back
	// (restored from an older copy, truncated) or forked (another history
	// signed in its place), or it is another log. The receipt still proves
	// what was signed then, not that the record is in the log now.
	ErrNotInLog = errors.New("not in the current log")
	// ErrLogUnread: the log could not be read (unreachable, failing,
	// refusing): nothing was established about today's log, neither way.
	ErrLogUnread = errors.New("the log could not be read")
)

// Current fetches the log's latest checkpoint and verifies it against the
// pinned keys (and the origin of WithOrigin, if any): ErrCheckpoint if it
// does not verify, ErrLogUnread if it could not be fetched.
func (a *Auditor) Current(ctx context.Context) (evidence.SignedCheckpoint, error) {
	raw, err := a.log.Checkpoint(ctx)
	if err != nil {
		return evidence.SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrLogUnread, err)
	}
	cp, err := evidence.OpenCheckpoint(raw, a.vs, a.origin)
	if err != nil {
		return evidence.SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return cp, nil
}

// Extends proves that cur, the log's checkpoint now (from Current),
// extends old, a checkpoint verified earlier (a receipt's): nil when it
// does; ErrNotInLog, saying whether the log was rolled back or forked, when
// it does not; ErrLogUnread when the consistency proof could not be had.
func (a *Auditor) Extends(ctx context.Context, old evidence.Checkpoint, cur evidence.SignedCheckpoint) error {
	switch {
	case old.Origin != cur.Origin:
		return fmt.Errorf("%w: the receipt's checkpoint is of log %q, the server serves log %q: re-prove it against the log that signed it",
			ErrNotInLog, old.Origin, cur.Origin)
	case cur.Size < old.Size:
		return fmt.Errorf("%w: rolled back: the receipt's checkpoint signed %d records and the log now has %d: "+
			"records from index %d on were removed (the log restored from an older copy, or truncated)",
			ErrNotInLog, old.Size, cur.Size, cur.Size)
	case cur.Size == old.Size:
		if cur.Root != old.Root {
			return fmt.Errorf("%w: forked: the log has the %d records of the receipt's checkpoint but its root is %x, not %x: "+
				"another history was signed in place of the one the receipt proves", ErrNotInLog, cur.Size, cur.Root, old.Root)
		}
		return nil
	}
	p, err := a.consistencyProof(ctx, old.Size, cur.Size)
	if err != nil {
		return fmt.Errorf("%w: consistency proof from %d to %d: %w", ErrLogUnread, old.Size, cur.Size, err)
	}
	if err := evidence.VerifyConsistency(old.Size, cur.Size, p, old.Root, cur.Root); err != nil {
		return fmt.Errorf("%w: rolled back or forked: the log of %d records the receipt's checkpoint signed is not a prefix of today's log of %d records "+
			"(the consistency proof fails: %v): the log was restored from an older copy or rewritten, and grew again with another history",
			ErrNotInLog, old.Size, cur.Size, err)
	}
	return nil
}

// VerifyReceiptCurrent verifies a receipt offline (VerifyReceipt) and then
// proves its checkpoint is a prefix of the log's checkpoint now: the
// record is still in the log. It returns what was verified and today's
// checkpoint. Errors: those of VerifyReceipt (an erased record's receipt
// that is still in the log returns with evidence.ErrRecordErased, as
// VerifyReceipt does), ErrCheckpoint, ErrNotInLog, ErrLogUnread.
//
// To re-prove many receipts against one checkpoint, call Current once and
// VerifyReceiptIn for each.
func (a *Auditor) VerifyReceiptCurrent(ctx context.Context, raw []byte) (evidence.Verified, evidence.SignedCheckpoint, error) {
	// Offline first: a receipt that does not verify needs no request.
	v, err := VerifyReceipt(raw, a.vs, a.origin)
	if err != nil && !errors.Is(err, evidence.ErrRecordErased) {
		return evidence.Verified{}, evidence.SignedCheckpoint{}, err
	}
	cur, cerr := a.Current(ctx)
	if cerr != nil {
		return evidence.Verified{}, evidence.SignedCheckpoint{}, cerr
	}
	v, err = a.stillIn(ctx, v, err, cur)
	return v, cur, err
}

// VerifyReceiptIn is VerifyReceiptCurrent against cur, a checkpoint from
// Current.
func (a *Auditor) VerifyReceiptIn(ctx context.Context, raw []byte, cur evidence.SignedCheckpoint) (evidence.Verified, error) {
	v, err := VerifyReceipt(raw, a.vs, a.origin)
	if err != nil && !errors.Is(err, evidence.ErrRecordErased) {
		return evidence.Verified{}, err
	}
	return a.stillIn(ctx, v, err, cur)
}

// stillIn proves the checkpoint of v, verified offline (offline is nil or
// wraps evidence.ErrRecordErased), a prefix of cur. Not being in the log
// outranks an erased body.
func (a *Auditor) stillIn(ctx context.Context, v evidence.Verified, offline error, cur evidence.SignedCheckpoint) (evidence.Verified, error) {
	if err := a.Extends(ctx, v.Checkpoint, cur); err != nil {
		return evidence.Verified{}, fmt.Errorf("record %d: %w", v.Record.Index, err)
	}
	return v, offline
}

// VerifyScreeningReceipt checks a screening's chained receipt offline:
// the answer in the job's tree, the job's record in the signed log.
// origin, when not empty, must be the checkpoint's.
func VerifyScreeningReceipt(raw []byte, vs note.Verifiers, origin string) (evidence.VerifiedScreening, error) {
	r, err := evidence.ParseScreeningReceipt(raw)
	if err != nil {
		return evidence.VerifiedScreening{}, err
	}
	v, err := evidence.VerifyScreeningReceipt(r, vs)
	if err != nil {
		return evidence.VerifiedScreening{}, err
	}
	if origin != "" && v.Job.Checkpoint.Origin != origin {
		return evidence.VerifiedScreening{}, fmt.Errorf("%w: the checkpoint is of origin %q, not %q", evidence.ErrCheckpointFormat, v.Job.Checkpoint.Origin, origin)
	}
	return v, nil
}

// VerifyScreeningReceiptIn verifies a screening's chained receipt offline
// and proves the job record's checkpoint is a prefix of cur, the log's
// checkpoint now (from Current): the job's record, whose root the answer
// is proven under, is still in the log. Errors as VerifyReceiptIn's.
func (a *Auditor) VerifyScreeningReceiptIn(ctx context.Context, raw []byte, cur evidence.SignedCheckpoint) (evidence.VerifiedScreening, error) {
	v, err := VerifyScreeningReceipt(raw, a.vs, a.origin)
	if err != nil {
		return evidence.VerifiedScreening{}, err
	}
	if err := a.Extends(ctx, v.Job.Checkpoint, cur); err != nil {
		return evidence.VerifiedScreening{}, fmt.Errorf("the screening's job record %d: %w", v.Job.Record.Index, err)
	}
	return v, nil
}
