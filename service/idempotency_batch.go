package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Idempotency keys of batches (POST /v1/checks:batch, Idempotency-Key): a
// bank whose batch's answer was lost retries it with the same key and gets
// the first answer again, every subject's check or problem, and nothing is
// recorded twice.
//
// How a batch is stored: each of its recorded checks is a keyed check like
// one sent alone (its body names the key, it is never spooled), mapped in
// check_idempotency in the transaction that appends the batch, under
// BatchIdempotencyKey(key) rather than the key itself. No row of its own,
// no column more and no write outside the appending transaction: a batch is
// replayed exactly when its checks were recorded, a crash cannot leave a
// batch half-mapped, and the rows are pruned with the others. What the
// rows do not hold is derived again from the request, which a replay must
// repeat: a subject's problem is a function of its identifier
// (invalid_subject_id) or of its kind for the partner
// (subject_kind_not_allowed), and every other subject of the batch was
// recorded, in request order (one append, consecutive in the log). The
// suffixed key keeps a batch's key and a lone check's apart: each refuses
// the other's (ErrIdempotencyKeyReused). A keyless batch pays one
// comparison (CheckBatch).
//
// Bounds: a batch whose subjects all had problems recorded nothing, so
// its retry answers again (the same problems, nothing recorded, not
// marked replayed); a retry after the partner was allowed a kind it was
// refused is ErrIdempotencyKeyReused, the recorded batch being no longer
// the request's answer.

// maxBatchRows bounds the rows a batch's replay reads: a batch records at
// most MaxBatch checks, and two replicas deciding the key at once (see
// idempotency.go) at most twice as many.
const maxBatchRows = 2 * MaxBatch

// checkBatchKeyed is CheckBatch for a batch with an idempotency key: it
// replays the batch the partner sent with key within its lifetime,
// refuses the key reused for another request, or decides and records the
// batch, each check holding the key.
func (c *Checker) checkBatchKeyed(ctx context.Context, caller Caller, subjects []string, p checkParams, key string) ([]BatchItem, error) {
	if err := ValidIdempotencyKey(key); err != nil {
		return nil, err
	}
	if c.idem == nil {
		return nil, errors.New("idempotency keys: the store keeps none")
	}
	p.idempotencyKey = key
	// One lock per key, shared with checks sent alone: a batch and a
	// check with one key do not run at once here either.
	release, err := c.keyed.acquire(ctx, caller.ClientID+"\x00"+key)
	if err != nil {
		return nil, err
	}
	defer release()
	found, err := c.idem.IdempotentChecks(ctx, caller.ClientID, key, c.now().Add(-IdempotencyKeyLifetime), maxBatchRows)
	switch {
	case err != nil:
		return nil, fmt.Errorf("look up idempotency key: %w", storeUnavailable(err))
	case len(found) > 0 && !found[0].Batch:
		return nil, fmt.Errorf("%w: key %q was sent with a check (POST /v1/checks)", ErrIdempotencyKeyReused, key)
	case len(found) > 0:
		ids := make([]string, 0, len(found))
		for _, f := range found {
			if f.Batch {
				ids = append(ids, f.CheckID)
			}
		}
		return c.replayBatch(ctx, caller, ids, subjects, p)
	}
	return c.checkBatch(ctx, caller, subjects, p)
}

// replayBatch is the answer of the batch whose checks are ids, recorded
// under the request's key: each recorded check's body byte for byte with
// its receipt, and each other subject's problem as the request gives it
// again. A request that differs from the recorded one is
// ErrIdempotencyKeyReused.
func (c *Checker) replayBatch(ctx context.Context, caller Caller, ids []string, subjects []string, p checkParams) ([]BatchItem, error) {
	recs, err := c.batchRecords(ctx, caller, ids)
	if err != nil {
		return nil, err
	}
	reused := func(why string) error {
		return fmt.Errorf("%w: key %q was sent with another batch (%s)", ErrIdempotencyKeyReused, p.idempotencyKey, why)
	}
	cv := contextView(p.context)
	asked := requestFingerprint("", p.action, p.reference, nil, p.validAt, cv)
	items := make([]BatchItem, len(subjects))
	next := 0
	for i, raw := range subjects {
		subject, err := policy.ParseSubjectID(raw)
		if err != nil {
			items[i].Err = err
			continue
		}
		if next < len(recs) && recs[next].ans.Subject.ID == subject.Value {
			r := &recs[next]
			next++
			if recorded := requestFingerprint("", r.ans.Action, r.ans.Reference, r.ans.AsOf, r.ans.ValidAt, r.ans.Context); recorded != asked {
				return nil, reused("another action, reference, context or valid_at")
			}
			ans := r.ans
			ans.body, ans.replayed = r.rec.Body, true
			ans.Receipt = receipt(r.rec)
			items[i].Answer = &ans
			continue
		}
		if !caller.mayCheckKind(subject.Kind) {
			items[i].Err = fmt.Errorf("%w: %s", ErrSubjectKindNotAllowed, subject.Kind)
			continue
		}
		return nil, reused(fmt.Sprintf("subjects[%d] was not checked under it", i))
	}
	// Records left over are another replica's record of the same batch
	// (idempotency.go), whole and in the same order, or the key was sent
	// with more subjects than now.
	for j, r := range recs[next:] {
		if next == 0 || r.ans.Subject.ID != recs[j%next].ans.Subject.ID {
			return nil, reused("it checked subjects not asked now")
		}
	}
	if (len(recs)-next)%max(next, 1) != 0 {
		return nil, reused("it checked subjects not asked now")
	}
	return items, nil
}

// batchRecord is a recorded check of a batch, decoded.
type batchRecord struct {
	rec evidence.Record
	ans CheckAnswer
}

// batchRecords reads, verifies and decodes the checks ids of a batch, in
// log order (the batch's order).
func (c *Checker) batchRecords(ctx context.Context, caller Caller, ids []string) ([]batchRecord, error) {
	out := make([]batchRecord, len(ids))
	sem := make(chan struct{}, c.fanout)
	errs := make(chan error, len(ids))
	for i, id := range ids {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			rec, err := c.records.Record(ctx, id)
			if err != nil {
				errs <- fmt.Errorf("read the check of idempotency key: %w", storeUnavailable(err))
				return
			}
			if rec.Kind != evidence.KindCheck || rec.Partner != caller.ClientID {
				// Never another partner's: the mapping is by partner.
				errs <- fmt.Errorf("check %q of idempotency key is not the partner's", id)
				return
			}
			if err := c.verifyRecord(ctx, rec); err != nil {
				errs <- err
				return
			}
			out[i].rec = rec
			if err := json.Unmarshal(rec.Body, &out[i].ans); err != nil {
				errs <- fmt.Errorf("decode stored check %q: %w", id, err)
			}
		}()
	}
	for range c.fanout {
		sem <- struct{}{}
	}
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b batchRecord) int {
		switch {
		case a.rec.Index < b.rec.Index:
			return -1
		case a.rec.Index > b.rec.Index:
			return 1
		}
		return 0
	})
	return out, nil
}
