package evidence_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// gatedLeafSink is a real store behind a gate: its first commit waits to
// be released, so a test can watch what happens meanwhile. It records the
// leaf hashes it was handed.
type gatedLeafSink struct {
	inner   evidence.LeafSink
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	batches [][]evidence.Record
	leaves  [][][evidence.HashSize]byte
}

func (s *gatedLeafSink) AppendBatch(context.Context, []evidence.Record) (uint64, error) {
	panic("the appender must hand a LeafSink its leaves")
}

func (s *gatedLeafSink) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	s.mu.Lock()
	first := len(s.batches) == 0
	s.batches = append(s.batches, append([]evidence.Record(nil), recs...))
	s.leaves = append(s.leaves, append([][evidence.HashSize]byte(nil), leaves...))
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return s.inner.AppendLeaves(ctx, recs, leaves)
}

// While one batch is being committed, the next forms and is hashed: the
// records arriving meanwhile are queued with their leaf hashes computed,
// and all go in the one commit that follows.
func TestNextBatchFormsWhileOneFlushes(t *testing.T) {
	st := openStore(t)
	sink := &gatedLeafSink{inner: st, entered: make(chan struct{}), release: make(chan struct{})}
	app := evidence.NewAppender(sink, evidence.WithLeafSink(sink))
	defer app.Close()

	var wg sync.WaitGroup
	errs := make([]error, 11)
	wg.Go(func() { _, errs[0] = app.Append(t.Context(), record(0)) })
	<-sink.entered
	const n = 10
	for i := 1; i <= n; i++ {
		wg.Go(func() { _, errs[i] = app.Append(t.Context(), record(i)) })
	}
	// The flush is held: wait (bounded) until all ten are queued.
	deadline := time.Now().Add(10 * time.Second)
	for app.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records queued behind the held flush", app.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
	sink.mu.Lock()
	if len(sink.batches) != 1 {
		t.Fatalf("%d commits started while the first was held; at most one may be in flight", len(sink.batches))
	}
	sink.mu.Unlock()
	close(sink.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if len(sink.batches) != 2 || len(sink.batches[1]) != n {
		sizes := make([]int, len(sink.batches))
		for i, b := range sink.batches {
			sizes[i] = len(b)
		}
		t.Fatalf("batch sizes %v, want [1 %d]: the records queued during the flush did not go together", sizes, n)
	}
	for i, rec := range sink.batches[1] {
		if sink.leaves[1][i] != evidence.LeafHash(rec) {
			t.Fatalf("record %s: the leaf handed to the commit is not its leaf hash", rec.ID)
		}
	}
	// The records are in the log, in the tree, in commit order.
	head, err := st.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != n+1 {
		t.Fatalf("tree of %d records, want %d", head.Size, n+1)
	}
}
