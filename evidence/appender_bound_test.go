package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// stuckSink is a database that stops answering in the middle of a commit
// and ignores its deadline: AppendBatch returns only when released.
type stuckSink struct {
	entered chan struct{}
	release chan struct{}
}

func (s *stuckSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return 0, errors.New("connection reset")
}

// A record queued behind a batch whose commit is stuck waits no longer
// than the commit bound in all: it is refused (ErrUnavailable) while that
// commit is still stuck, instead of waiting for that batch's bound and
// then its own.
func TestAppendWaitsAtMostTheCommitBound(t *testing.T) {
	sink := &stuckSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	const bound = 100 * time.Millisecond
	app := evidence.NewAppender(sink, evidence.WithCommitTimeout(bound))
	defer app.Close()
	defer close(sink.release) // before Close: the loop is stuck in the sink

	first := make(chan error, 1)
	go func() { _, err := app.Append(context.Background(), record(1)); first <- err }()
	<-sink.entered // the first batch is committing, and stuck

	second := make(chan error, 1)
	go func() { _, err := app.Append(context.Background(), record(2)); second <- err }()
	for name, ch := range map[string]chan error{"queued": second, "stuck": first} {
		select {
		case err := <-ch:
			if !errors.Is(err, evidence.ErrUnavailable) {
				t.Errorf("%s record: %v, want ErrUnavailable", name, err)
			}
		case <-time.After(100 * bound):
			t.Fatalf("%s record: still waiting after 100 times the commit bound", name)
		}
	}

	// A caller's own deadline stays its own error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := app.Append(ctx, record(3)); !errors.Is(err, context.Canceled) || errors.Is(err, evidence.ErrUnavailable) {
		t.Errorf("cancelled caller: %v, want context.Canceled", err)
	}
}

// AppendWithin bounds the wait by its own d when that is shorter than the
// commit bound (the spool's bound: a check is spooled after it, not after a
// commit's), and by the commit bound when that is shorter.
func TestAppendWithinItsOwnBound(t *testing.T) {
	sink := &stuckSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	const short = 100 * time.Millisecond
	app := evidence.NewAppender(sink, evidence.WithCommitTimeout(time.Hour))
	defer app.Close()
	defer close(sink.release)
	wait := func(app *evidence.Appender, d time.Duration, want string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := app.AppendWithin(context.Background(), d, record(1)); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, evidence.ErrUnavailable) || !strings.Contains(err.Error(), want) {
				t.Errorf("AppendWithin(%s): %v, want ErrUnavailable after %s", d, err, want)
			}
		case <-time.After(100 * short):
			t.Fatalf("AppendWithin(%s): still waiting after %s", d, 100*short)
		}
	}
	wait(app, short, "no commit within 100ms")

	other := &stuckSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	capped := evidence.NewAppender(other, evidence.WithCommitTimeout(short))
	defer capped.Close()
	defer close(other.release)
	wait(capped, time.Hour, "no commit within 100ms")
}

// heldSink commits in memory, but holds its first commit until released,
// and remembers every record handed to it.
type heldSink struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	ids     []string
	next    uint64
}

func (s *heldSink) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	select {
	case s.entered <- struct{}{}:
		<-s.release
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.next
	for _, r := range recs {
		s.ids = append(s.ids, r.ID)
	}
	s.next += uint64(len(recs))
	return first, nil
}

// A record whose caller stopped waiting (its commit bound passed while it
// was queued behind a held commit) is not written afterwards: nobody would
// answer on it. The records of one Append come back in their order.
func TestAppendWritesNothingForACallerThatGaveUp(t *testing.T) {
	sink := &heldSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	const bound = 50 * time.Millisecond
	app := evidence.NewAppender(sink, evidence.WithCommitTimeout(bound))
	defer app.Close()

	first := make(chan error, 1)
	go func() { _, err := app.Append(context.Background(), record(1)); first <- err }()
	<-sink.entered
	if _, err := app.Append(context.Background(), record(2), record(3)); !errors.Is(err, evidence.ErrUnavailable) {
		t.Fatalf("queued behind the held commit: %v, want ErrUnavailable", err)
	}
	close(sink.release)
	<-first // held past its own bound: its error is not what this test is about
	// Appends fail at once (ErrStalled) from the first bound that passed
	// until a commit succeeds: the held one, now released.
	for deadline := time.Now().Add(10 * time.Second); app.Stalled(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still stalled after the held commit was released")
		}
	}

	got, err := app.Append(context.Background(), record(4), record(5), record(6))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if want := record(4 + i).ID; r.ID != want || r.Index != got[0].Index+uint64(i) {
			t.Errorf("record %d: %s at %d, want %s at %d", i, r.ID, r.Index, want, got[0].Index+uint64(i))
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, id := range sink.ids {
		if id == record(2).ID || id == record(3).ID {
			t.Errorf("record %s written after its caller gave up (written: %v)", id, sink.ids)
		}
	}
}

type deadlineSink struct{}

func (deadlineSink) AppendBatch(context.Context, []evidence.Record) (uint64, error) {
	return 0, fmt.Errorf("write: %w", context.DeadlineExceeded)
}

// A commit that ran out of its bound is the log being unavailable, not a
// deadline of the caller's: callers that classify a context error as
// "interrupted" must not see one.
func TestCommitPastItsBoundIsUnavailable(t *testing.T) {
	app := evidence.NewAppender(deadlineSink{})
	defer app.Close()
	_, err := app.Append(context.Background(), record(1))
	if !errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append: %v, want ErrUnavailable without context.DeadlineExceeded", err)
	}
}
