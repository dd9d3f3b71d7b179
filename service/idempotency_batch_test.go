package service_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// batchBytes is what a batch answered, each item's check as sent or its
// error's text.
func batchBytes(t *testing.T, items []service.BatchItem) []string {
	t.Helper()
	out := make([]string, len(items))
	for i, it := range items {
		if it.Err != nil {
			out[i] = "error: " + it.Err.Error()
			continue
		}
		out[i] = string(answerBytes(t, *it.Answer))
	}
	return out
}

// TestIdempotencyKeyReplaysTheFirstBatch: a batch sent again with its key,
// within 24 hours and after a restart, replays every check and problem
// and records nothing; another batch, or a check alone, under the key is
// ErrIdempotencyKeyReused; after 24 hours the key records anew.
func TestIdempotencyKeyReplaysTheFirstBatch(t *testing.T) {
	eachReopenedStore(t, func(t *testing.T, open func() testStore) {
		ctx := context.Background()
		now := idemClock()
		w := newIdemWorld(t, open(), now)
		orgs := idemCaller
		orgs.SubjectKinds = []policy.SubjectKind{policy.KindOrganization}
		org1, org2 := testenv.USCC(t, "91350100M00020001"), testenv.USCC(t, "91350100M00020002")
		req := service.BatchRequest{Subjects: []string{org1, "not an identifier", "11010519491231002X", org2, org1},
			Action: "bank_credit", Reference: "SCREEN-1", IdempotencyKey: "batch-1"}

		first, err := w.checker.CheckBatch(ctx, orgs, req)
		if err != nil {
			t.Fatal(err)
		}
		want := batchBytes(t, first)
		if first[0].Answer == nil || first[1].Err == nil || !errors.Is(first[2].Err, service.ErrSubjectKindNotAllowed) ||
			first[3].Answer == nil || first[4].Answer == nil || first[0].Answer.Replayed() {
			t.Fatalf("first batch: %v", want)
		}
		w.wantCheckRecords(3, "the batch")

		now.Add(int64(time.Hour))
		again, err := w.checker.CheckBatch(ctx, orgs, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := batchBytes(t, again); !slices.Equal(got, want) {
			t.Fatalf("the replay differs:\n got %v\nwant %v", got, want)
		}
		for _, i := range []int{0, 3, 4} {
			if !again[i].Answer.Replayed() {
				t.Fatalf("item %d not marked replayed", i)
			}
		}
		w.wantCheckRecords(3, "the replay")

		for name, other := range map[string]func(r *service.BatchRequest){
			"fewer subjects":    func(r *service.BatchRequest) { r.Subjects = r.Subjects[:4] },
			"more subjects":     func(r *service.BatchRequest) { r.Subjects = append(r.Subjects[:5:5], org2) },
			"another order":     func(r *service.BatchRequest) { r.Subjects = []string{org2, r.Subjects[1], r.Subjects[2], org1, org1} },
			"another reference": func(r *service.BatchRequest) { r.Reference = "SCREEN-2" },
			"another action":    func(r *service.BatchRequest) { r.Action = "public_tendering" },
		} {
			r := req
			r.Subjects = append([]string(nil), req.Subjects...)
			other(&r)
			if _, err := w.checker.CheckBatch(ctx, orgs, r); !errors.Is(err, service.ErrIdempotencyKeyReused) {
				t.Fatalf("%s under the key: %v, want ErrIdempotencyKeyReused", name, err)
			}
		}
		alone := service.CheckRequest{Subject: org1, Action: "bank_credit", Reference: "SCREEN-1", IdempotencyKey: "batch-1"}
		if _, err := w.checker.Check(ctx, orgs, alone); !errors.Is(err, service.ErrIdempotencyKeyReused) {
			t.Fatalf("the batch's key with a check alone: %v, want ErrIdempotencyKeyReused", err)
		}
		alone.IdempotencyKey = "alone-1"
		if _, err := w.checker.Check(ctx, orgs, alone); err != nil {
			t.Fatal(err)
		}
		single := service.BatchRequest{Subjects: []string{org1}, Action: "bank_credit", Reference: "SCREEN-1", IdempotencyKey: "alone-1"}
		if _, err := w.checker.CheckBatch(ctx, orgs, single); !errors.Is(err, service.ErrIdempotencyKeyReused) {
			t.Fatalf("a check's key with a batch: %v, want ErrIdempotencyKeyReused", err)
		}
		w.wantCheckRecords(4, "refusals")

		// A restart: the key still replays.
		w = w.restart(open)
		again, err = w.checker.CheckBatch(ctx, orgs, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := batchBytes(t, again); !slices.Equal(got, want) {
			t.Fatalf("the replay after a restart differs:\n got %v\nwant %v", got, want)
		}

		// After the key's lifetime it records anew.
		now.Add(int64(service.IdempotencyKeyLifetime))
		later, err := w.checker.CheckBatch(ctx, orgs, req)
		if err != nil {
			t.Fatal(err)
		}
		if later[0].Answer.Replayed() || later[0].Answer.CheckID == first[0].Answer.CheckID {
			t.Fatalf("after 24 hours: replayed %v", later[0].Answer.Replayed())
		}
		w.wantCheckRecords(7, "the key's lifetime")
	})
}

// TestIdempotencyKeyBatchNotSpooled: with the log's database away, a keyed
// batch is refused (ErrStoreUnavailable) and nothing of it spooled, where a
// keyless one is spooled; its retry once the database is back records it
// once.
func TestIdempotencyKeyBatchNotSpooled(t *testing.T) {
	w := newSpoolWorld(t)
	admin := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	req := service.BatchRequest{Subjects: []string{testenv.USCC(t, "91110000MA0000105"), testenv.USCC(t, "91110000MA0000106")},
		Action: "government_procurement", IdempotencyKey: "spool-batch"}

	w.sink.down.Store(true)
	keyless := req
	keyless.IdempotencyKey = ""
	if _, err := w.checker.CheckBatch(t.Context(), admin, keyless); err != nil {
		t.Fatalf("a keyless batch with the log down (spooled): %v", err)
	}
	if _, err := w.checker.CheckBatch(t.Context(), admin, req); !errors.Is(err, service.ErrStoreUnavailable) {
		t.Fatalf("a keyed batch with the log down: %v, want ErrStoreUnavailable", err)
	}
	if st := w.log.SpoolStatus(); st.Pending != 2 {
		t.Fatalf("%d records spooled, want the keyless batch's 2", st.Pending)
	}

	w.sink.down.Store(false)
	first, err := w.checker.CheckBatch(t.Context(), admin, req)
	if err != nil || first[0].Answer.Replayed() {
		t.Fatalf("the retry with the log back: %v", err)
	}
	again, err := w.checker.CheckBatch(t.Context(), admin, req)
	if err != nil || !again[0].Answer.Replayed() || again[1].Answer.CheckID != first[1].Answer.CheckID {
		t.Fatalf("the next retry: %v", err)
	}
}
