package evidence

import (
	"context"
	"testing"
)

// okSink commits every batch at once.
type okSink struct{ next uint64 }

func (s *okSink) AppendBatch(_ context.Context, recs []Record) (uint64, error) {
	first := s.next
	s.next += uint64(len(recs))
	return first, nil
}

// A wait whose bound is acted on only after a commit has succeeded (its
// goroutine scheduled late, or select taking the bound over a result that
// came with it) does not mark the log stalled: nothing would clear the
// mark but the next probe, and every Append meanwhile would be refused.
// A wait with no commit since it began still marks it.
func TestLateStallMarkAfterACommitIsIgnored(t *testing.T) {
	a := NewAppender(&okSink{})
	defer a.Close()
	began := a.commits.Load()
	rec := Record{ID: "r1", Kind: KindAdmin, Partner: "p", Body: []byte("{}")}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	a.stall(context.Background(), began)
	if a.Stalled() {
		t.Fatal("a wait that began before a successful commit marked the log stalled after it")
	}
	a.stall(context.Background(), a.commits.Load())
	if !a.Stalled() {
		t.Fatal("a wait with no commit since it began did not mark the log stalled")
	}
}
