package evidence_test

import (
	"context"
	"errors"
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
