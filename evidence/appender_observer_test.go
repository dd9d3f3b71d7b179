package evidence_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// observed keeps what a CommitObserver was told.
type observed struct {
	mu      sync.Mutex
	waits   []time.Duration
	totals  []time.Duration
	batches []observedBatch
}

type observedBatch struct {
	records   int
	lag, took time.Duration
	err       error
}

func (o *observed) Waited(wait, total time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, wait)
	o.totals = append(o.totals, total)
}

func (o *observed) Committed(n int, lag, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches = append(o.batches, observedBatch{n, lag, took, err})
}

// Records queued behind a held commit are told their wait behind it: at
// least from when they were all queued to when the commit was released,
// which no clock can make shorter, and each record's total is its wait
// plus its batch's commit. The second batch's start lag counts from the
// first commit's end, not from its records' queueing.
func TestObserverSeesTheWaitBehindTheCommitInFlight(t *testing.T) {
	st := openStore(t)
	sink := &gatedLeafSink{inner: st, entered: make(chan struct{}), release: make(chan struct{})}
	obs := &observed{}
	app := evidence.NewAppender(sink, evidence.WithLeafSink(sink), evidence.WithCommitObserver(obs))
	defer app.Close()

	const n = 10
	wg, errs := queueBehindAHeldCommit(t, app, sink, n)
	queued := time.Now()
	time.Sleep(5 * time.Millisecond) // the hold the waits must include
	held := time.Since(queued)
	close(sink.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.batches) != 2 || obs.batches[0].records != 1 || obs.batches[1].records != n {
		t.Fatalf("observed batches %+v, want one of 1 record then one of %d", obs.batches, n)
	}
	if len(obs.waits) != n+1 {
		t.Fatalf("%d waits observed, want one per record (%d)", len(obs.waits), n+1)
	}
	second := obs.batches[1]
	for i := 1; i <= n; i++ {
		if obs.waits[i] < held {
			t.Errorf("record queued behind the held commit waited %v, less than the %v it was held", obs.waits[i], held)
		}
		if obs.totals[i] != obs.waits[i]+second.took {
			t.Errorf("total %v is not wait %v + commit %v", obs.totals[i], obs.waits[i], second.took)
		}
		// The batch could start only once the first commit ended, after the
		// hold: its lag is at most what its records waited beyond the hold.
		if second.lag < 0 || second.lag > obs.waits[i]-held {
			t.Errorf("start lag %v counts the wait behind the commit in flight (wait %v, held %v)", second.lag, obs.waits[i], held)
		}
	}
	for _, b := range obs.batches {
		if b.err != nil {
			t.Errorf("commit observed as failed: %v", b.err)
		}
	}
}

// A failed commit is observed with its error, and its record's wait too.
func TestObserverSeesFailedCommits(t *testing.T) {
	boom := errors.New("disk gone")
	sink := &countingSink{inner: openStore(t), fail: boom}
	obs := &observed{}
	app := evidence.NewAppender(sink, evidence.WithCommitObserver(obs))
	defer app.Close()
	if _, err := app.Append(context.Background(), record(1)); !errors.Is(err, evidence.ErrUnavailable) {
		t.Fatalf("append over a failing sink: %v, want ErrUnavailable", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.batches) != 1 || !errors.Is(obs.batches[0].err, boom) || obs.batches[0].records != 1 {
		t.Fatalf("observed %+v, want one failed batch of one record", obs.batches)
	}
	if len(obs.waits) != 1 {
		t.Fatalf("%d waits observed, want 1", len(obs.waits))
	}
}
