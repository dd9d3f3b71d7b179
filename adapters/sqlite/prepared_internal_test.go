package sqlite

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// kept returns the texts kept prepared and how many wait to be.
func (p *preparedStmts) kept() (map[string]bool, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	m := map[string]bool{}
	for q := range p.m {
		m[q] = true
	}
	return m, len(p.pending)
}

// TestEvidenceInsertsPreparedOnFirstUse: Open compiles none of the
// evidence inserts; a commit that used one leaves it prepared for the
// next, which reuses it, and only the texts worth keeping are kept.
func TestEvidenceInsertsPreparedOnFirstUse(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	if m, n := s.prepared.kept(); len(m) != 0 || n != 0 {
		t.Fatalf("after Open: %d statements prepared, %d pending; want none", len(m), n)
	}
	next := 0
	appendChecks(t, s, 1, 1, &next)
	one, pending := s.prepared.kept()
	if len(one) == 0 || pending != 0 {
		t.Fatalf("after a batch of one: %d statements kept, %d pending", len(one), pending)
	}
	want := map[string]bool{}
	for _, q := range s.EvidenceInsertTexts() {
		want[q] = true
	}
	for q := range one {
		if !want[q] {
			t.Errorf("kept a text that is not an evidence insert: %.80s", q)
		}
	}
	s.prepared.mu.RLock()
	first := map[string]any{}
	for q, st := range s.prepared.m {
		first[q] = st
	}
	s.prepared.mu.RUnlock()

	appendChecks(t, s, 2, 1, &next) // the same texts again
	appendChecks(t, s, 1, 5, &next) // a chunk of four and one
	more, pending := s.prepared.kept()
	if pending != 0 || len(more) <= len(one) {
		t.Fatalf("after batches of five: %d kept (%d before), %d pending", len(more), len(one), pending)
	}
	s.prepared.mu.RLock()
	for q, st := range first {
		if s.prepared.m[q] != st {
			t.Errorf("a kept statement was prepared again: %.80s", q)
		}
	}
	s.prepared.mu.RUnlock()
}

// TestEvidenceInsertsPreparedUnderConcurrentCommits: commits of every
// size from several goroutines while their first uses are being prepared
// (a transaction waiting on the connection, another preparing after its
// commit) neither deadlock nor lose a record, and Close after them
// releases every statement.
func TestEvidenceInsertsPreparedUnderConcurrentCommits(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const workers, rounds = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				recs := make([]evidence.Record, 1+(w*rounds+r)%17)
				for i := range recs {
					recs[i] = evidence.Record{ID: fmt.Sprintf("w%d-r%d-%d", w, r, i), Kind: evidence.KindAdmin,
						Partner: "p", At: at, Body: []byte(`{"n":1}`)}
					if err := recs[i].Seal(); err != nil {
						errs <- err
						return
					}
				}
				if _, err := s.AppendBatch(t.Context(), recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m, pending := s.prepared.kept(); len(m) == 0 || pending != 0 {
		t.Fatalf("%d statements kept, %d pending", len(m), pending)
	}
	h, err := s.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for w := range workers {
		for r := range rounds {
			total += 1 + (w*rounds+r)%17
		}
	}
	if h.Size != uint64(total) {
		t.Fatalf("log holds %d records, want %d", h.Size, total)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
