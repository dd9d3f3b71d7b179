package service_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// Drain integrates everything pending when the log is there, gives up
// with the count still pending when its time runs out on a log that is
// away, and at once on an error waiting will not cure.
func TestSpoolDrain(t *testing.T) {
	w := newSpoolWorld(t)
	w.sink.down.Store(true)
	for _, s := range []string{"91110000MA0000141", "91110000MA0000142", "91110000MA0000143"} {
		if _, err := w.check(testenv.USCC(t, s)); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if n, err := w.log.Drain(ctx); n != 3 || !errors.Is(err, evidence.ErrUnavailable) {
		t.Errorf("drain with the log away: %d pending, %v; want 3 and ErrUnavailable", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("drain with the log away took %s, past its deadline of 300ms", took)
	}

	w.sink.down.Store(false)
	if n, err := w.log.Drain(t.Context()); n != 0 || err != nil {
		t.Fatalf("drain with the log back: %d pending, %v", n, err)
	}
	if st := w.log.SpoolStatus(); st.State != service.SpoolEmpty || st.Integrated != 3 {
		t.Fatalf("after the drain: %+v", st)
	}

	// An error waiting will not cure ends the drain at once.
	w.sink.down.Store(true)
	if _, err := w.check(testenv.USCC(t, "91110000MA0000144")); err != nil {
		t.Fatal(err)
	}
	w.sink.down.Store(false)
	sp := &faultySpool{Spool: w.spool}
	full := error(&os.PathError{Op: "write", Path: "spool/integrated", Err: syscall.EIO})
	sp.err.Store(&full)
	log := service.NewSpoolingLog(w.app, sp, w.signer, w.store)
	start = time.Now()
	if n, err := log.Drain(t.Context()); n != 1 || !errors.Is(err, syscall.EIO) {
		t.Errorf("drain of a spool that cannot be marked: %d pending, %v", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("drain of a spool that cannot be marked took %s", took)
	}
}
