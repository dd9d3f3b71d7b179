package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// With the log's database frozen, only the first check waits out the
// spool's bound: the appender is then stalled, and the checks after it are
// spooled at once (but for a probe now and then), each answered with a
// promise. Before, every check waited the whole bound, and a replica
// topped out near 100 checks a second with checks waiting seconds.
func TestSpoolAtOnceWhileTheLogIsStalled(t *testing.T) {
	w := newSpoolWorld(t) // a spool bound of 1 s
	frozen := make(chan struct{})
	w.sink.hold.Store(&frozen)
	defer close(frozen) // the commit still waiting, before the appender closes
	const bound = time.Second

	if a, err := w.check(testenv.USCC(t, "91110000MA0000131")); err != nil || a.Receipt.State != service.ReceiptSpooled {
		t.Fatalf("first check on the frozen log: %+v %v", a.Receipt, err)
	}
	start := time.Now()
	waited := 0
	for i := range 30 {
		t0 := time.Now()
		a, err := w.check(testenv.USCC(t, fmt.Sprintf("91110000MA00002%02d", i)))
		if err != nil || a.Receipt.State != service.ReceiptSpooled || a.Receipt.Promise == nil {
			t.Fatalf("check %d on the frozen log: %+v %v", i, a.Receipt, err)
		}
		if time.Since(t0) >= bound {
			waited++
		}
	}
	took := time.Since(start)
	// A probe (one per evidence.DefaultStallProbe) waits the bound; no
	// other check does.
	if most := int(took/(500*time.Millisecond)) + 1; waited > most {
		t.Errorf("%d of 30 checks waited the spool's bound in %s (at most %d probes)", waited, took.Round(time.Millisecond), most)
	}
	if st := w.log.SpoolStatus(); st.Pending != 31 {
		t.Errorf("spool: %+v, want 31 pending", st)
	}
}
