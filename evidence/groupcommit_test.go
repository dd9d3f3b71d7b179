package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
)

// countingSink wraps a real store and counts commits, so tests can see
// that concurrent appends share them.
type countingSink struct {
	inner evidence.Sink
	mu    sync.Mutex
	calls int
	sizes []int
	fail  error
}

func (s *countingSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	s.mu.Lock()
	s.calls++
	s.sizes = append(s.sizes, len(recs))
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return 0, fail
	}
	return s.inner.AppendBatch(ctx, recs)
}

func record(i int) evidence.Record {
	return evidence.Record{ID: fmt.Sprintf("rec-%06d", i), Kind: evidence.KindCheck, Partner: "p", At: time.Now().UTC(), Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestGroupCommitSharesCommits(t *testing.T) {
	st := openStore(t)
	sink := &countingSink{inner: st}
	app := evidence.NewAppender(sink)
	defer app.Close()

	const n = 400
	var wg sync.WaitGroup
	idx := make([]uint64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs, err := app.Append(context.Background(), record(i))
			errs[i] = err
			if err == nil {
				idx[i] = recs[0].Index
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[idx[i]] {
			t.Fatalf("index %d given twice", idx[i])
		}
		seen[idx[i]] = true
	}
	for i := range uint64(n) {
		if !seen[i] {
			t.Fatalf("index %d missing: indexes are not consecutive", i)
		}
	}
	if sink.calls >= n {
		t.Fatalf("%d commits for %d concurrent records: no group commit", sink.calls, n)
	}
	// Every answered record is really in the store, with its hash.
	for i := range n {
		got, err := st.Record(context.Background(), fmt.Sprintf("rec-%06d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != evidence.RecordHash(got.Salt, got.Body) {
			t.Fatalf("record %d: hash does not match salt and body", i)
		}
	}
	t.Logf("%d records in %d commits", n, sink.calls)
}

func TestAppendManyKeepsOrder(t *testing.T) {
	st := openStore(t)
	app := evidence.NewAppender(st, evidence.WithMaxBatch(7))
	defer app.Close()
	recs := make([]evidence.Record, 50)
	for i := range recs {
		recs[i] = record(i)
	}
	got, err := app.Append(context.Background(), recs...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].ID != recs[i].ID || got[i].Index != uint64(i) {
			t.Fatalf("record %d: %s at %d", i, got[i].ID, got[i].Index)
		}
		if got[i].Hash == ([32]byte{}) || len(got[i].Salt) != evidence.SaltSize {
			t.Fatalf("record %d not sealed", i)
		}
	}
}

func TestAppendFailureAnswersNobody(t *testing.T) {
	st := openStore(t)
	boom := errors.New("disk on fire")
	sink := &countingSink{inner: st, fail: boom}
	app := evidence.NewAppender(sink)
	defer app.Close()
	if _, err := app.Append(context.Background(), record(1)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the sink's error", err)
	}
	if _, err := st.Record(context.Background(), "rec-000001"); !errors.Is(err, evidence.ErrNotFound) {
		t.Fatalf("a failed record was stored: %v", err)
	}
	// The appender recovers once the sink does.
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	if _, err := app.Append(context.Background(), record(2)); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAfterCloseAndCancel(t *testing.T) {
	st := openStore(t)
	app := evidence.NewAppender(st)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := app.Append(ctx, record(1)); err == nil {
		t.Fatal("append with a canceled context succeeded")
	}
	app.Close()
	if _, err := app.Append(context.Background(), record(2)); !errors.Is(err, evidence.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	app.Close() // closing twice is harmless
}

func BenchmarkAppendConcurrent(b *testing.B) {
	st, err := sqlite.Open(context.Background(), sqlitetest.Dir(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	app := evidence.NewAppender(st)
	defer app.Close()
	var mu sync.Mutex
	n := 0
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			if _, err := app.Append(context.Background(), record(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
