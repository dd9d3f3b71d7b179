package evidence_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// freezableSink commits in memory, except while frozen: then a commit
// blocks until it is thawed or its context ends, as on a database stopped
// with SIGSTOP.
type freezableSink struct {
	mu      sync.Mutex
	thawed  chan struct{} // nil: not frozen
	next    uint64
	commits atomic.Int64
}

func (s *freezableSink) freeze() {
	s.mu.Lock()
	s.thawed = make(chan struct{})
	s.mu.Unlock()
}

func (s *freezableSink) thaw() {
	s.mu.Lock()
	close(s.thawed)
	s.thawed = nil
	s.mu.Unlock()
}

func (s *freezableSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	s.mu.Lock()
	thawed := s.thawed
	s.mu.Unlock()
	if thawed != nil {
		select {
		case <-thawed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.next
	s.next += uint64(len(recs))
	s.commits.Add(1)
	return first, nil
}

// With the log's database frozen, only the first appends wait out their
// bound: after that an append fails at once (ErrStalled, and
// ErrUnavailable, which is what sends a check to the spool), but for one
// probe per interval; the first commit that succeeds ends it. Before,
// every append waited its whole bound, and a replica's checks waited
// seconds each.
func TestAppendShortCutWhileStalled(t *testing.T) {
	sink := &freezableSink{}
	const (
		bound = 100 * time.Millisecond
		probe = 300 * time.Millisecond
	)
	app := evidence.NewAppender(sink, evidence.WithCommitTimeout(time.Hour), evidence.WithStallProbe(probe))
	defer app.Close()
	if _, err := app.AppendWithin(t.Context(), bound, record(0)); err != nil {
		t.Fatal(err)
	}

	sink.freeze()
	if _, err := app.AppendWithin(t.Context(), bound, record(1)); !errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, evidence.ErrStalled) {
		t.Fatalf("the first append on the frozen log: %v, want ErrUnavailable after its bound", err)
	}
	if !app.Stalled() {
		t.Fatal("not stalled after a wait ran past its bound")
	}
	start := time.Now()
	n, waited, stalled := 0, 0, 0
	for time.Since(start) < 5*probe {
		t0 := time.Now()
		_, err := app.AppendWithin(t.Context(), bound, record(2+n))
		n++
		if !errors.Is(err, evidence.ErrUnavailable) {
			t.Fatalf("append %d on the frozen log: %v, want ErrUnavailable", n, err)
		}
		if errors.Is(err, evidence.ErrStalled) {
			stalled++
		}
		if time.Since(t0) >= bound {
			waited++ // a probe
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	// Each probe waits its bound; at most one per probe interval.
	if most := int(took/probe) + 1; waited > most || stalled < n-most {
		t.Errorf("%d appends in %s: %d waited their bound, %d refused at once; want at most %d waits", n, took, waited, stalled, most)
	}
	if waited == 0 {
		t.Errorf("no probe in %s", took)
	}
	// A caller's own cancellation stays its own.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := app.AppendWithin(ctx, bound, record(999)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller on a stalled log: %v", err)
	}

	// Thawed: the commit under way lands, or the next probe's does, and
	// appends go through again.
	sink.thaw()
	deadline := time.Now().Add(20 * probe)
	for {
		_, err := app.AppendWithin(t.Context(), time.Minute, record(5000))
		if err == nil {
			break
		}
		if !errors.Is(err, evidence.ErrStalled) || time.Now().After(deadline) {
			t.Fatalf("append after the thaw: %v", err)
		}
		time.Sleep(probe / 10)
	}
	if app.Stalled() {
		t.Error("still stalled after a commit succeeded")
	}
	for i := range 20 {
		if _, err := app.AppendWithin(t.Context(), bound, record(6000+i)); err != nil {
			t.Fatalf("append %d after the thaw: %v", i, err)
		}
	}
}

// A commit that ran past the commit bound stalls the appender too, and a
// successful one ends it.
func TestAppendStalledByACommitPastItsBound(t *testing.T) {
	sink := &freezableSink{}
	app := evidence.NewAppender(sink, evidence.WithCommitTimeout(50*time.Millisecond), evidence.WithStallProbe(time.Hour))
	defer app.Close()
	sink.freeze()
	if _, err := app.Append(t.Context(), record(1)); !errors.Is(err, evidence.ErrUnavailable) {
		t.Fatalf("append on the frozen log: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !app.Stalled() {
		if time.Now().After(deadline) {
			t.Fatal("not stalled after a commit ran past its bound")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := app.Append(t.Context(), record(2)); !errors.Is(err, evidence.ErrStalled) || time.Since(start) > 40*time.Millisecond {
		t.Fatalf("append on the stalled log: %v after %s, want ErrStalled at once", err, time.Since(start))
	}
}
