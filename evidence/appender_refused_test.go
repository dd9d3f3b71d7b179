package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// sqlStateError is a database error with a SQLSTATE, as pgconn.PgError.
type sqlStateError struct{ code string }

func (e sqlStateError) Error() string    { return "ERROR: refused (SQLSTATE " + e.code + ")" }
func (e sqlStateError) SQLState() string { return e.code }

// refusingSink commits to a memStore, but refuses, as PostgreSQL refused a
// body holding \u0000 (SQLSTATE 22P05), every batch with a poisoned
// record; its first commit waits for release, so that the records
// appended meanwhile go together in the next batch.
type refusingSink struct {
	*memStore
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches [][]string
}

func (s *refusingSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	s.mu.Lock()
	s.batches = append(s.batches, ids)
	s.mu.Unlock()
	for _, r := range recs {
		if bytes.Contains(r.Body, []byte("poison")) {
			return 0, fmt.Errorf("append evidence: %w", sqlStateError{"22P05"})
		}
	}
	return s.memStore.AppendBatch(ctx, recs)
}

// TestGroupCommitWithoutTheRefusedRecord: a record the database refuses
// for what it holds fails alone; the records that shared its group commit
// are committed, in order, and the commit hook sees the log's order. Before,
// every one of them failed with it (and checks among them were spooled).
func TestGroupCommitWithoutTheRefusedRecord(t *testing.T) {
	sink := &refusingSink{memStore: newMemStore(), release: make(chan struct{}), entered: make(chan struct{})}
	var (
		hookMu sync.Mutex
		hooked []uint64
	)
	app := evidence.NewAppender(sink, evidence.WithCommitHook(func(recs []evidence.Record) {
		hookMu.Lock()
		defer hookMu.Unlock()
		for _, r := range recs {
			hooked = append(hooked, r.Index)
		}
	}))
	defer app.Close()

	first := make(chan error, 1)
	go func() {
		_, err := app.Append(context.Background(), record(-1))
		first <- err
	}()
	<-sink.entered
	const n = 24
	poisoned := map[int]bool{3: true, 4: true, 17: true}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := record(i)
			if poisoned[i] {
				r.Body = []byte(`{"note":"poison\u0000"}`)
			}
			_, errs[i] = app.Append(context.Background(), r)
		}()
	}
	for app.Queued() < n {
		time.Sleep(time.Millisecond)
	}
	close(sink.release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		switch {
		case poisoned[i] && (!errors.Is(err, evidence.ErrRefused) || !errors.Is(err, evidence.ErrUnavailable) || !evidence.Refused(err)):
			t.Errorf("poisoned record %d: %v, want ErrRefused and ErrUnavailable", i, err)
		case !poisoned[i] && err != nil:
			t.Errorf("record %d failed with a poisoned one: %v", i, err)
		}
	}
	if got := len(sink.recs); got != 1+n-len(poisoned) {
		t.Fatalf("%d records in the log, want %d", got, 1+n-len(poisoned))
	}
	for i, idx := range hooked {
		if idx != uint64(i) {
			t.Fatalf("the commit hook saw %v, not the log's order", hooked)
		}
	}
	if len(hooked) != len(sink.recs) {
		t.Fatalf("hooked %d records, the log holds %d", len(hooked), len(sink.recs))
	}
	// The group was one batch, refused whole, then committed in parts.
	if b := sink.batchesSeen(); len(b) < 3 || len(b[1]) != n {
		t.Fatalf("batches %v", b)
	}
}

// A failure that is not a refusal (the database away) still fails the
// whole group, and is not a refusal.
func TestGroupCommitFailsWholeWhenTheDatabaseIsAway(t *testing.T) {
	st := newMemStore()
	st.failAt = errors.New("connection refused")
	app := evidence.NewAppender(st)
	defer app.Close()
	_, err := app.Append(context.Background(), record(1), record(2))
	if !errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, evidence.ErrRefused) || evidence.Refused(err) {
		t.Fatalf("%v", err)
	}
	for _, code := range []string{"08006", "57P01", "53300", "40001"} {
		if evidence.Refused(sqlStateError{code}) {
			t.Errorf("SQLSTATE %s taken for a refusal of the records", code)
		}
	}
	for _, code := range []string{"22P05", "22021", "23505", "23514"} {
		if !evidence.Refused(fmt.Errorf("x: %w", sqlStateError{code})) {
			t.Errorf("SQLSTATE %s not taken for a refusal", code)
		}
	}
}

func (s *refusingSink) batchesSeen() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.batches...)
}
