package service_test

import (
	"errors"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestIdempotencyKeyNotSpooled: with the log's database away, a check
// without a key is spooled and answered, but one with a key is refused
// (503 store_unavailable): its key could not be looked up, nor a retry
// replay it, until the spool is integrated. Its retry once the database is
// back records it once.
func TestIdempotencyKeyNotSpooled(t *testing.T) {
	w := newSpoolWorld(t)
	admin := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	subject := testenv.USCC(t, "91110000MA0000103")
	req := service.CheckRequest{Subject: subject, Action: "government_procurement", IdempotencyKey: "spool-key"}

	w.sink.down.Store(true)
	if _, err := w.check(testenv.USCC(t, "91110000MA0000104")); err != nil {
		t.Fatalf("a keyless check with the log down (spooled): %v", err)
	}
	if _, err := w.checker.Check(t.Context(), admin, req); !errors.Is(err, service.ErrStoreUnavailable) {
		t.Fatalf("a keyed check with the log down: %v, want ErrStoreUnavailable", err)
	}
	if st := w.log.SpoolStatus(); st.Pending != 1 {
		t.Fatalf("%d records spooled, want the keyless one only", st.Pending)
	}

	w.sink.down.Store(false)
	first, err := w.checker.Check(t.Context(), admin, req)
	if err != nil || first.Replayed() {
		t.Fatalf("the retry with the log back: %v, replayed %v", err, first.Replayed())
	}
	again, err := w.checker.Check(t.Context(), admin, req)
	if err != nil || !again.Replayed() || again.CheckID != first.CheckID {
		t.Fatalf("the next retry: %v, replayed %v", err, again.Replayed())
	}
}
