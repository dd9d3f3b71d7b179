package evidence_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// gatedStore holds the first AddCheckpoint until released and counts the
// reads of the latest checkpoint.
type gatedStore struct {
	*memStore
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
	latests atomic.Int64
	// grow, when set, appends a record before every read of the tree head:
	// the background load of checks that never stops growing the log.
	grow func() evidence.Record
}

func (g *gatedStore) TreeHead(ctx context.Context) (evidence.Head, error) {
	if g.grow != nil {
		if _, err := g.memStore.AppendBatch(ctx, []evidence.Record{g.grow()}); err != nil {
			return evidence.Head{}, err
		}
	}
	return g.memStore.TreeHead(ctx)
}

func (g *gatedStore) AddCheckpoint(ctx context.Context, c evidence.StoredCheckpoint) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.gate
	}
	return g.memStore.AddCheckpoint(ctx, c)
}

func (g *gatedStore) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	g.latests.Add(1)
	return g.memStore.LatestCheckpoint(ctx)
}

// TestReceiptCallersShareOneSigning: while one checkpoint is being signed,
// the receipt callers of newer records wait together and one more
// signature serves them all, instead of one each, although the log grows
// all the while (so each would otherwise find the latest checkpoint stale).
func TestReceiptCallersShareOneSigning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := &gatedStore{memStore: newMemStore(), gate: make(chan struct{}), entered: make(chan struct{})}
	s := newSigner(t, "credgate.test")
	l := evidence.NewLog(g, s)
	vs := verifiersOf(t, s.VerifierKey())
	first := []evidence.Record{sealed(t, "first")}
	if _, err := g.AppendBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	first[0], _ = g.Record(ctx, "first")
	firstDone := make(chan error, 1)
	go func() {
		_, err := l.Receipt(ctx, first[0])
		firstDone <- err
	}()
	<-g.entered // the first round is signing and held

	const callers = 20
	recs := make([]evidence.Record, callers)
	for i := range recs {
		recs[i] = sealed(t, fmt.Sprintf("later-%d", i))
	}
	if _, err := g.AppendBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	before := g.latests.Load()
	var bg atomic.Int64
	g.grow = func() evidence.Record { return sealed(t, fmt.Sprintf("bg-%d", bg.Add(1))) }
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		rec, _ := g.Record(ctx, recs[i].ID)
		wg.Go(func() {
			r, err := l.Receipt(ctx, rec)
			if err == nil {
				_, err = evidence.VerifyReceipt(r, vs)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	// Each caller reads the latest checkpoint once before it joins a round.
	for g.latests.Load() < before+callers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	// One for the first record, one for the 20 that waited (one more at
	// most, if a caller had not joined when the first round ended).
	if n := g.checkpointCount(); n > 3 {
		t.Fatalf("%d checkpoints signed for %d receipt callers waiting together", n, callers)
	}
}

// TestReceiptReusesCoveringCheckpoint: a record covered by a checkpoint
// already signed gets its receipt with no read of the latest checkpoint and
// no new signature.
func TestReceiptReusesCoveringCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := &gatedStore{memStore: newMemStore(), gate: make(chan struct{}), entered: make(chan struct{})}
	close(g.gate)
	s := newSigner(t, "credgate.test")
	l := evidence.NewLog(g, s)
	recs := []evidence.Record{sealed(t, "a"), sealed(t, "b"), sealed(t, "c")}
	if _, err := g.AppendBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	last, _ := g.Record(ctx, "c")
	if _, err := l.Receipt(ctx, last); err != nil {
		t.Fatal(err)
	}
	cps, reads := g.checkpointCount(), g.latests.Load()
	// Records appended since do not matter: "a" is covered.
	if _, err := g.AppendBatch(ctx, []evidence.Record{sealed(t, "d")}); err != nil {
		t.Fatal(err)
	}
	a, _ := g.Record(ctx, "a")
	r, err := l.Receipt(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if r.TreeSize != 3 {
		t.Fatalf("receipt proves into a tree of %d, want the covering checkpoint of 3", r.TreeSize)
	}
	if g.checkpointCount() != cps || g.latests.Load() != reads {
		t.Fatalf("a covered record signed (%d→%d checkpoints) or read the latest (%d→%d)",
			cps, g.checkpointCount(), reads, g.latests.Load())
	}
}
