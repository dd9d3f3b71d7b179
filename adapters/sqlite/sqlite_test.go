package sqlite_test

import (
	"context"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

func openStore(tb testing.TB) service.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), tb.TempDir())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store { return openStore(t) })
}

// TestReopen checks that migrations are idempotent and that what was
// committed is there after the store is closed and opened again.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	e := policy.Entry{ID: "e1", Subject: policy.SubjectID{Kind: policy.KindPerson, Value: "P1"}, Version: 1}
	if err := s.InsertEntries(ctx, []policy.Entry{e}); err != nil {
		t.Fatal(err)
	}
	rec := evidence.Record{ID: "r1", Kind: evidence.KindAdmin, Body: []byte("{}")}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []evidence.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err = sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if _, err := s.GetEntry(ctx, "e1"); err != nil {
			t.Errorf("entry lost on reopen: %v", err)
		}
		if first, err := s.AppendBatch(ctx, nil); err != nil || first != 1 {
			t.Errorf("after reopen, next index = %d, %v; want 1", first, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sqlite.Open(ctx, t.TempDir()); err == nil {
		t.Fatal("Open with a canceled context succeeded")
	}
}

func BenchmarkAppendBatch(b *testing.B) { storetest.BenchAppendBatch(b, openStore) }

func BenchmarkEntriesAffecting(b *testing.B) { storetest.BenchEntriesAffecting(b, openStore) }
