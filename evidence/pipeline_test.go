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

	const n = 10
	wg, errs := queueBehindAHeldCommit(t, app, sink, n)
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

// pipeSink is a real store behind a gate that says each batch is on its
// way (evidence.BatchSent) as a pipelining database store does, then holds
// the first commit until released. A batch entering while another commits
// waits for it before committing, as it would on the database's append
// lock, so the log's order is the order of sending.
type pipeSink struct {
	inner   evidence.LeafSink
	release chan struct{}
	mu      sync.Mutex
	entered []chan struct{} // closed as the i-th batch arrives
	sizes   []int
	prev    chan struct{} // closed when the batch before commits
}

func newPipeSink(inner evidence.LeafSink) *pipeSink {
	s := &pipeSink{inner: inner, release: make(chan struct{})}
	for range 8 {
		s.entered = append(s.entered, make(chan struct{}))
	}
	return s
}

func (s *pipeSink) AppendBatch(context.Context, []evidence.Record) (uint64, error) {
	panic("the appender must hand a LeafSink its leaves")
}

func (s *pipeSink) AppendLeaves(ctx context.Context, recs []evidence.Record, leaves [][evidence.HashSize]byte) (uint64, error) {
	s.mu.Lock()
	n := len(s.sizes)
	s.sizes = append(s.sizes, len(recs))
	prev, mine := s.prev, make(chan struct{})
	s.prev = mine
	s.mu.Unlock()
	defer close(mine)
	close(s.entered[n])
	evidence.BatchSent(ctx)
	if n == 0 {
		<-s.release
	}
	if prev != nil {
		<-prev
	}
	return s.inner.AppendLeaves(ctx, recs, leaves)
}

func (s *pipeSink) batches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

// With a sink that says each batch is on its way, the next batch is sent
// while the first is still committing — two in flight, never three — and
// its callers are answered only once their own commit has returned.
func TestSecondBatchSentWhileFirstCommits(t *testing.T) {
	st := openStore(t)
	sink := newPipeSink(st)
	app := evidence.NewAppender(sink, evidence.WithLeafSink(sink), evidence.WithCommitsInFlight(2))
	defer app.Close()

	type result struct {
		recs []evidence.Record
		err  error
	}
	appendAsync := func(i int) chan result {
		ch := make(chan result, 1)
		go func() {
			recs, err := app.Append(t.Context(), record(i))
			ch <- result{recs, err}
		}()
		return ch
	}
	first := appendAsync(0)
	<-sink.entered[0]
	second := appendAsync(1)
	select {
	case <-sink.entered[1]:
	case <-time.After(10 * time.Second):
		t.Fatal("the second batch was not sent while the first was committing")
	}
	// Two are in flight: the records arriving now wait for the first to
	// finish, and go together.
	const n = 5
	var rest []chan result
	for i := range n {
		rest = append(rest, appendAsync(2+i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for app.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records queued behind two batches in flight", app.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
	if b := sink.batches(); len(b) != 2 {
		t.Fatalf("batches sent %v while the first was held, want two", b)
	}
	select {
	case r := <-second:
		t.Fatalf("the second batch was answered (%v) before it was committed", r.err)
	default:
	}
	close(sink.release)
	var idx []uint64
	for _, ch := range append([]chan result{first, second}, rest...) {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		idx = append(idx, r.recs[0].Index)
	}
	if idx[0] != 0 || idx[1] != 1 {
		t.Fatalf("indexes %v: the batches did not commit in the order they were sent", idx)
	}
	if b := sink.batches(); len(b) != 3 || b[2] != n {
		t.Fatalf("batch sizes %v, want [1 1 %d]", b, n)
	}
}

// By default one commit is in flight at a time, even with a sink that
// says each batch is on its way.
func TestOneCommitInFlightByDefault(t *testing.T) {
	st := openStore(t)
	sink := newPipeSink(st)
	app := evidence.NewAppender(sink, evidence.WithLeafSink(sink))
	defer app.Close()

	done := make(chan error, 2)
	go func() { _, err := app.Append(t.Context(), record(0)); done <- err }()
	<-sink.entered[0]
	go func() { _, err := app.Append(t.Context(), record(1)); done <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for app.Queued() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second record did not queue")
		}
		time.Sleep(time.Millisecond)
	}
	if b := sink.batches(); len(b) != 1 {
		t.Fatalf("batches %v sent with one commit in flight allowed", b)
	}
	close(sink.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// queueBehindAHeldCommit appends record(0), whose commit sink holds, then
// records 1..n, and returns once all n are queued behind that commit (a
// bounded wait). The caller releases sink, waits on wg and reads errs[i],
// record i's error.
func queueBehindAHeldCommit(t *testing.T, app *evidence.Appender, sink *gatedLeafSink, n int) (*sync.WaitGroup, []error) {
	t.Helper()
	wg := &sync.WaitGroup{}
	errs := make([]error, n+1)
	wg.Go(func() { _, errs[0] = app.Append(t.Context(), record(0)) })
	<-sink.entered
	for i := 1; i <= n; i++ {
		wg.Go(func() { _, errs[i] = app.Append(t.Context(), record(i)) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for app.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records queued behind the held commit", app.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return wg, errs
}
