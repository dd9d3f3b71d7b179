package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// IdempotencyStore is a store that maps idempotency keys to checks and
// prunes the mappings (check_idempotency).
type IdempotencyStore interface {
	service.Store
	service.IdempotencyStore
	service.IdempotencyPruner
}

// RunIdempotency runs the conformance tests of idempotency keys: keys sent
// with a check alone and with a batch (POST /v1/checks, :batch), and the
// sweep that deletes mappings past the keys' lifetime.
func RunIdempotency(t *testing.T, open func(t *testing.T) IdempotencyStore) {
	runEach(t, open, "Idempotency/", []named[IdempotencyStore]{
		{"AloneAndBatch", testIdempotentChecks},
		{"Prune", testIdempotencyPrune},
		{"PruneConcurrently", testIdempotencyPruneConcurrently},
	})
}

// keyedCheck is a check record sent with key: alone (its facts, as the
// checker writes them, name the key) or, with batch, one of a batch (its
// facts name service.BatchIdempotencyKey(key), its body the key).
func keyedCheck(id, partner, key string, batch bool, at time.Time) evidence.Record {
	r := checkBody(id, partner, "S-"+id, "bank_credit", "clear", "", at)
	r.Body = append(r.Body[:len(r.Body)-1], fmt.Sprintf(`,"idempotency_key":%q}`, key)...)
	f := &evidence.CheckFacts{Subject: "S-" + id, Action: "bank_credit", Outcome: "clear", IdempotencyKey: key}
	if batch {
		f.IdempotencyKey = service.BatchIdempotencyKey(key)
	}
	r.Check = f
	return r
}

func idempotentIDs(t *testing.T, s IdempotencyStore, partner, key string, since time.Time, limit int) []service.IdempotentCheck {
	t.Helper()
	got, err := s.IdempotentChecks(t.Context(), partner, key, since, limit)
	if err != nil {
		t.Fatalf("IdempotentChecks(%s, %s): %v", partner, key, err)
	}
	return got
}

// testIdempotentChecks: a key's checks are found by partner and key, a
// batch's apart from a check alone's, in the order they were checked,
// from a time on.
func testIdempotentChecks(t *testing.T, s IdempotencyStore) {
	ctx := t.Context()
	b := followUpBase
	// The body alone names the key (a record re-run as of a past time has
	// no facts): mapped as a check alone.
	bodyOnly := keyedCheck("c5", "p1", "k5", false, b)
	bodyOnly.Check = nil
	appendAll(t, s,
		keyedCheck("c1", "p1", "k1", false, b),
		keyedCheck("c3", "p1", "kb", true, b.Add(2*time.Second)),
		keyedCheck("c2", "p1", "kb", true, b.Add(time.Second)),
		keyedCheck("c4", "p2", "k1", false, b),
		bodyOnly,
		checkBody("c6", "p1", "S6", "bank_credit", "clear", "", b),
	)
	if got := idempotentIDs(t, s, "p1", "k5", b.Add(-time.Hour), 10); !slices.Equal(got, []service.IdempotentCheck{{CheckID: "c5"}}) {
		t.Errorf("a key its body alone names: %v", got)
	}
	alone := []service.IdempotentCheck{{CheckID: "c1"}}
	batch := []service.IdempotentCheck{{CheckID: "c2", Batch: true}, {CheckID: "c3", Batch: true}}
	if got := idempotentIDs(t, s, "p1", "k1", b.Add(-time.Hour), 10); !slices.Equal(got, alone) {
		t.Errorf("p1's k1: %v, want %v", got, alone)
	}
	if got := idempotentIDs(t, s, "p1", "kb", b.Add(-time.Hour), 10); !slices.Equal(got, batch) {
		t.Errorf("p1's batch kb, in the order checked: %v, want %v", got, batch)
	}
	if got := idempotentIDs(t, s, "p1", "kb", b.Add(-time.Hour), 1); !slices.Equal(got, batch[:1]) {
		t.Errorf("p1's kb, limit 1: %v, want %v", got, batch[:1])
	}
	if got := idempotentIDs(t, s, "p1", "kb", b.Add(time.Second+time.Microsecond), 10); !slices.Equal(got, batch[1:]) {
		t.Errorf("p1's kb since after c2: %v, want %v", got, batch[1:])
	}
	if got := idempotentIDs(t, s, "p3", "k1", b.Add(-time.Hour), 10); len(got) != 0 {
		t.Errorf("another partner's key: %v, want none", got)
	}
	// The mapping of a batch is not a check alone's.
	if _, err := s.CheckByIdempotencyKey(ctx, "p1", "kb", b.Add(-time.Hour)); !errors.Is(err, evidence.ErrNotFound) {
		t.Errorf("CheckByIdempotencyKey of a batch's key: %v, want ErrNotFound", err)
	}
	if id, err := s.CheckByIdempotencyKey(ctx, "p2", "k1", b.Add(-time.Hour)); err != nil || id != "c4" {
		t.Errorf("CheckByIdempotencyKey(p2, k1): %q, %v", id, err)
	}
}

// testIdempotencyPrune: the sweep's statement deletes at most its limit
// of the mappings older than its time, the oldest first; younger ones stay
// and are found as before, alone or in a batch; with nothing older left it
// deletes nothing.
func testIdempotencyPrune(t *testing.T, s IdempotencyStore) {
	ctx := t.Context()
	now := followUpBase.Add(48 * time.Hour)
	cutoff := now.Add(-service.IdempotencyKeyRetention)
	var recs []evidence.Record
	for i := range 5 {
		// Old: past the retention, alone and in a batch.
		recs = append(recs, keyedCheck(fmt.Sprintf("old%d", i), "p1", fmt.Sprintf("old-%d", i%2), i%2 == 1, cutoff.Add(-time.Duration(5-i)*time.Minute)))
	}
	recs = append(recs,
		// At the cutoff exactly: kept (before is strict).
		keyedCheck("edge", "p1", "edge", false, cutoff),
		keyedCheck("young", "p1", "young", false, now.Add(-23*time.Hour)),
		keyedCheck("youngb1", "p1", "yb", true, now.Add(-time.Hour)),
		keyedCheck("youngb2", "p1", "yb", true, now.Add(-time.Hour+time.Millisecond)),
	)
	appendAll(t, s, recs...)

	var counts []int64
	for {
		n, err := s.PruneIdempotencyKeys(ctx, cutoff, 2)
		if err != nil {
			t.Fatalf("PruneIdempotencyKeys: %v", err)
		}
		counts = append(counts, n)
		if n < 2 || len(counts) > 10 {
			break
		}
	}
	if want := []int64{2, 2, 1}; !slices.Equal(counts, want) {
		t.Errorf("deleted per statement %v, want %v", counts, want)
	}
	if n, err := s.PruneIdempotencyKeys(ctx, cutoff, 2); err != nil || n != 0 {
		t.Errorf("a sweep with nothing to delete: %d, %v", n, err)
	}
	all := time.Time{}
	for _, k := range []string{"old-0", "old-1"} {
		if got := idempotentIDs(t, s, "p1", k, all, 10); len(got) != 0 {
			t.Errorf("key %s after pruning: %v, want none", k, got)
		}
	}
	if got := idempotentIDs(t, s, "p1", "edge", all, 10); !slices.Equal(got, []service.IdempotentCheck{{CheckID: "edge"}}) {
		t.Errorf("the mapping at the cutoff: %v", got)
	}
	// Within the key's lifetime the lookups a replay makes find them.
	since := now.Add(-service.IdempotencyKeyLifetime)
	if id, err := s.CheckByIdempotencyKey(ctx, "p1", "young", since); err != nil || id != "young" {
		t.Errorf("a young key after pruning: %q, %v", id, err)
	}
	want := []service.IdempotentCheck{{CheckID: "youngb1", Batch: true}, {CheckID: "youngb2", Batch: true}}
	if got := idempotentIDs(t, s, "p1", "yb", since, 10); !slices.Equal(got, want) {
		t.Errorf("a young batch after pruning: %v, want %v", got, want)
	}
	// The records themselves stay: only their mappings go.
	if _, err := s.Record(ctx, "old0"); err != nil {
		t.Errorf("a pruned key's record: %v", err)
	}
}

// testIdempotencyPruneConcurrently: sweeps at once (replicas sharing the
// database) delete every old mapping once between them, and fail on none.
func testIdempotencyPruneConcurrently(t *testing.T, s IdempotencyStore) {
	ctx := t.Context()
	cutoff := followUpBase
	const old = 240
	recs := make([]evidence.Record, 0, old+1)
	for i := range old {
		recs = append(recs, keyedCheck(fmt.Sprintf("o%03d", i), "p1", fmt.Sprintf("k%03d", i), i%3 == 0,
			cutoff.Add(-time.Duration(old-i)*time.Second)))
	}
	recs = append(recs, keyedCheck("y", "p1", "y", false, cutoff.Add(time.Second)))
	appendAll(t, s, recs...)

	var (
		mu    sync.Mutex
		total int64
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.PruneIdempotencyKeys(ctx, cutoff, 7)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent sweep: %v", err)
	}
	if n, err := s.PruneIdempotencyKeys(ctx, cutoff, 1000); err != nil || n != 0 {
		t.Errorf("after the sweeps: %d more deleted, %v", n, err)
	}
	if total != old {
		t.Errorf("the sweeps deleted %d between them, want %d", total, old)
	}
	if got := idempotentIDs(t, s, "p1", "y", time.Time{}, 10); len(got) != 1 {
		t.Errorf("the young key: %v", got)
	}
}
