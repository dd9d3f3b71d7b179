package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Idempotency keys (POST /v1/checks, Idempotency-Key; IETF
// draft-ietf-httpapi-idempotency-key-header). A partner whose answer was
// lost (a timeout, a dropped connection) after credgate recorded the check
// retries with the same key and gets the answer recorded the first time,
// the same check id and bytes, and nothing new is recorded: otherwise each
// retry was one more check expecting feedback, overdue later, that the
// partner could not name.
//
// The key is in the check's body (idempotency_key), and the store maps
// (partner, key) to the check in the appending transaction
// (IdempotencyStore): the mapping survives a restart and every replica
// sharing the database sees it. On one replica the checks of one key run
// one at a time (keyedChecks), so a retry sent before the first answer
// waits for it and replays it. Two replicas deciding the same key at the
// same instant may both record: the store's lookup precedes the append and
// nothing holds the key between them across replicas.
//
// A keyed check is never spooled (spool.go): while the log's database is
// away its key cannot be looked up, and an answer given then might be a
// second record of a check already made. It is refused, 503
// store_unavailable with Retry-After, and the retry replays or records.
//
// A batch (POST /v1/checks:batch) takes a key too (idempotency_batch.go).
// Each replica's IdempotencySweeper deletes the mappings once no lookup
// reads them (idempotency_sweep.go).

// IdempotencyKeyLifetime is how long a key replays its check; after it the
// key records a new check.
const IdempotencyKeyLifetime = 24 * time.Hour

// MaxIdempotencyKeyLen bounds a key (printable ASCII).
const MaxIdempotencyKeyLen = 255

// Errors of idempotency keys.
var (
	// ErrInvalidIdempotencyKey: the key is empty, longer than
	// MaxIdempotencyKeyLen, or not printable ASCII.
	ErrInvalidIdempotencyKey = errors.New("invalid idempotency key")
	// ErrIdempotencyKeyReused: the key was sent before, within its
	// lifetime, with another request.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with another request")
)

// IdempotencyStore maps a partner's idempotency keys to its checks; both
// stores are one (adapters/internal/sqlcommon/idempotency.go), writing the
// mapping of each keyed check record as they append it.
type IdempotencyStore interface {
	// CheckByIdempotencyKey returns the id of the first check partner
	// sent with key at or after since, or evidence.ErrNotFound.
	CheckByIdempotencyKey(ctx context.Context, partner, key string, since time.Time) (string, error)
	// IdempotentChecks returns the checks partner sent at or after since
	// with key, alone (mapped under key) or in a batch (mapped under
	// BatchIdempotencyKey(key)), in the order they were checked (then by
	// id), at most limit; none is an empty slice, not an error.
	IdempotentChecks(ctx context.Context, partner, key string, since time.Time, limit int) ([]IdempotentCheck, error)
}

// IdempotentCheck is a check recorded under an idempotency key.
type IdempotentCheck struct {
	CheckID string
	// Batch: the check was one of a batch sent with the key
	// (POST /v1/checks:batch), not a check alone.
	Batch bool
}

// batchKeySuffix ends the key a store maps a batch's checks under: a
// control character, which no key holds (ValidIdempotencyKey), so that
// the two never meet.
const batchKeySuffix = "\x1fbatch"

// BatchIdempotencyKey is what a store maps each check of a batch sent with
// key under (idempotency_batch.go), so that a key sent with a batch is
// never taken for one sent with a check alone, nor the reverse.
func BatchIdempotencyKey(key string) string { return key + batchKeySuffix }

// ValidIdempotencyKey reports whether key is 1 to MaxIdempotencyKeyLen
// printable ASCII characters (space to tilde).
func ValidIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: %d characters, 1 to %d allowed", ErrInvalidIdempotencyKey, len(key), MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: character %d is not printable ASCII", ErrInvalidIdempotencyKey, i+1)
		}
	}
	return nil
}

// WithIdempotencyStore sets where idempotency keys are looked up (default:
// the checker's records, when they are one).
func WithIdempotencyStore(s IdempotencyStore) CheckerOption {
	return func(c *Checker) { c.idem = s }
}

// CheckByIdempotencyKey is the store's, bounded like every read of a
// request: a database that does not answer is ErrStoreUnavailable.
func (b *BoundedStore) CheckByIdempotencyKey(ctx context.Context, partner, key string, since time.Time) (string, error) {
	is, ok := b.Store.(IdempotencyStore)
	if !ok {
		return "", errors.New("the store keeps no idempotency keys")
	}
	return bounded(ctx, b, func(ctx context.Context) (string, error) {
		return is.CheckByIdempotencyKey(ctx, partner, key, since)
	})
}

// IdempotentChecks is the store's, bounded like CheckByIdempotencyKey.
func (b *BoundedStore) IdempotentChecks(ctx context.Context, partner, key string, since time.Time, limit int) ([]IdempotentCheck, error) {
	is, ok := b.Store.(IdempotencyStore)
	if !ok {
		return nil, errors.New("the store keeps no idempotency keys")
	}
	return bounded(ctx, b, func(ctx context.Context) ([]IdempotentCheck, error) {
		return is.IdempotentChecks(ctx, partner, key, since, limit)
	})
}

var _ IdempotencyStore = (*BoundedStore)(nil)

// checkKeyed is Check for a request with an idempotency key: it replays
// the check the partner sent with key within its lifetime, refuses the key
// reused for another request, or decides and records a new check holding
// the key.
func (c *Checker) checkKeyed(ctx context.Context, caller Caller, subject policy.SubjectID, p checkParams, key string) (CheckAnswer, error) {
	if err := ValidIdempotencyKey(key); err != nil {
		return CheckAnswer{}, err
	}
	if c.idem == nil {
		return CheckAnswer{}, errors.New("idempotency keys: the store keeps none")
	}
	p.idempotencyKey = key
	release, err := c.keyed.acquire(ctx, caller.ClientID+"\x00"+key)
	if err != nil {
		return CheckAnswer{}, err
	}
	defer release()
	found, err := c.idem.IdempotentChecks(ctx, caller.ClientID, key, c.now().Add(-IdempotencyKeyLifetime), 1)
	switch {
	case err != nil:
		return CheckAnswer{}, fmt.Errorf("look up idempotency key: %w", storeUnavailable(err))
	case len(found) > 0 && found[0].Batch:
		return CheckAnswer{}, fmt.Errorf("%w: key %q was sent with a batch (POST /v1/checks:batch)", ErrIdempotencyKeyReused, key)
	case len(found) > 0:
		return c.replay(ctx, caller, found[0].CheckID, subject, p)
	}
	ans, rec, err := c.decide(ctx, caller, subject, p)
	if err != nil {
		return CheckAnswer{}, err
	}
	recs, err := c.appendEvidence(ctx, rec)
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
			// Not spooled (spool.go): the key could not be honoured.
			err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		return CheckAnswer{}, fmt.Errorf("record check: %w", err)
	}
	ans.Receipt = c.receipt(ctx, recs[0])
	return ans, nil
}

// storeUnavailable makes a failed lookup of a key ErrStoreUnavailable
// when the database is away (a store not bounded by BoundedStore says so
// otherwise).
func storeUnavailable(err error) error {
	if !errors.Is(err, ErrStoreUnavailable) && (Unreachable(err) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return err
}

// replay is the answer of check id, recorded under the request's key: the
// recorded body byte for byte and its receipt, as GET /v1/checks/{id}
// proves it. A request that differs from the recorded one (what the
// answer says was asked: the subject, action, reference, effective
// context, valid_at and as_of) is ErrIdempotencyKeyReused.
func (c *Checker) replay(ctx context.Context, caller Caller, id string, subject policy.SubjectID, p checkParams) (CheckAnswer, error) {
	rec, err := c.records.Record(ctx, id)
	if err != nil {
		return CheckAnswer{}, fmt.Errorf("read the check of idempotency key: %w", storeUnavailable(err))
	}
	if rec.Kind != evidence.KindCheck || rec.Partner != caller.ClientID {
		// Never another partner's: the mapping is by partner.
		return CheckAnswer{}, fmt.Errorf("check %q of idempotency key is not the partner's", id)
	}
	if err := c.verifyRecord(ctx, rec); err != nil {
		return CheckAnswer{}, err
	}
	var ans CheckAnswer
	if err := json.Unmarshal(rec.Body, &ans); err != nil {
		return CheckAnswer{}, fmt.Errorf("decode stored check %q: %w", id, err)
	}
	asked := requestFingerprint(subject.Value, p.action, p.reference, p.past, p.validAt, contextView(p.context))
	recorded := requestFingerprint(ans.Subject.ID, ans.Action, ans.Reference, ans.AsOf, ans.ValidAt, ans.Context)
	if asked != recorded {
		return CheckAnswer{}, fmt.Errorf("%w: key %q was sent with another request for check %s", ErrIdempotencyKeyReused,
			p.idempotencyKey, id)
	}
	ans.body, ans.replayed = rec.Body, true
	ans.Receipt = receipt(rec)
	return ans, nil
}

// requestFingerprint is the canonical form of what a check asked, as its
// answer states it.
func requestFingerprint(subject, action, reference string, asOf, validAt *time.Time, cv ContextView) string {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	b, _ := json.Marshal(struct {
		Subject   string      `json:"subject"`
		Action    string      `json:"action"`
		Reference string      `json:"reference"`
		AsOf      *time.Time  `json:"as_of"`
		ValidAt   *time.Time  `json:"valid_at"`
		Context   ContextView `json:"context"`
	}{subject, action, reference, utc(asOf), utc(validAt), cv})
	return string(b)
}

// keyedChecks runs the checks of one (partner, key) on this replica one at
// a time: a retry sent while the first is deciding waits, then finds its
// record and replays it instead of recording another.
type keyedChecks struct {
	mu      sync.Mutex
	running map[string]chan struct{}
}

// acquire waits until no check of k runs here, then holds k until
// release is called.
func (k *keyedChecks) acquire(ctx context.Context, key string) (release func(), err error) {
	for {
		k.mu.Lock()
		done, busy := k.running[key]
		if !busy {
			if k.running == nil {
				k.running = make(map[string]chan struct{})
			}
			done = make(chan struct{})
			k.running[key] = done
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.running, key)
				k.mu.Unlock()
				close(done)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
