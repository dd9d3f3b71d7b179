package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// appendChecks appends batches of n records each.
func appendChecks(t *testing.T, s *Store, batches, n int, next *int) {
	t.Helper()
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for range batches {
		recs := make([]evidence.Record, n)
		for i := range recs {
			recs[i] = evidence.Record{ID: fmt.Sprintf("rec-%07d", *next), Kind: evidence.KindAdmin, Partner: "p",
				At: at, Body: fmt.Appendf(nil, `{"n":%d,"pad":"%0200d"}`, *next, 0)}
			if err := recs[i].Seal(); err != nil {
				t.Fatal(err)
			}
			*next++
		}
		if _, err := s.AppendBatch(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// stopCheckpoints stops the checkpointer's goroutine before any commit
// kicks it, leaving its connection to the test: a checkpoint of its own,
// run whenever the goroutine got the CPU, made the WAL start over in the
// middle of a test under load (seen with -race).
func stopCheckpoints(s *Store) {
	s.ckpt.stopOnce.Do(func() { close(s.ckpt.stop) })
	<-s.ckpt.done
}

// walFrames is the number of frames the WAL holds, from a PASSIVE
// checkpoint on the checkpointer's connection.
func walFrames(t *testing.T, s *Store) int64 {
	t.Helper()
	n, err := s.ckpt.run1(t.Context(), "PASSIVE")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCheckpointerBoundsTheWAL checks that the WAL is not checkpointed by
// the commits themselves, and that once it passes the bound the
// checkpointer's RESTART makes the next commit write from the start of the
// WAL again (a PASSIVE checkpoint alone does not while commits continue).
func TestCheckpointerBoundsTheWAL(t *testing.T) {
	t.Parallel()
	const maxFrames = 64
	// The goroutine is stopped; the test runs the checkpoints itself.
	s := openTemp(t, WithCheckpoint(24*time.Hour, maxFrames))
	stopCheckpoints(s)
	next := 0
	appendChecks(t, s, 1, 10, &next)
	if _, err := s.ckpt.run1(t.Context(), "FULL"); err != nil {
		t.Fatal(err)
	}
	before := walFrames(t, s)
	appendChecks(t, s, 40, 20, &next)
	grown := walFrames(t, s)
	// The WAL kept every commit's frames: no commit checkpointed and
	// started it over.
	if grown < before+maxFrames {
		t.Fatalf("WAL of %d frames after 40 commits (had %d): the commits checkpointed", grown, before)
	}
	mode, err := s.ckpt.checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if mode != "RESTART" {
		t.Fatalf("checkpoint of a WAL of %d frames (bound %d): %s, want RESTART", grown, maxFrames, mode)
	}
	appendChecks(t, s, 1, 10, &next)
	if after := walFrames(t, s); after >= grown || after >= maxFrames {
		t.Fatalf("WAL of %d frames after the RESTART and one commit (had %d): not started over", after, grown)
	}
	// Below the bound, a PASSIVE checkpoint is all.
	if mode, err := s.ckpt.checkpoint(t.Context()); err != nil || mode != "PASSIVE" {
		t.Fatalf("checkpoint below the bound: %s, %v; want PASSIVE", mode, err)
	}
	recs, err := s.RecordsBetween(t.Context(), 0, uint64(next))
	if err != nil || len(recs) != next {
		t.Fatalf("%d records read back (%v), want %d", len(recs), err, next)
	}
}

// TestAutomaticCheckpointOption checks that WithCheckpoint(0, …) leaves the
// checkpoints to SQLite in the writer, as before the checkpointer.
func TestAutomaticCheckpointOption(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), t.TempDir(), WithCheckpoint(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ckpt != nil {
		t.Fatal("a checkpointer with an interval of 0")
	}
	var auto int
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 1000 {
		t.Fatalf("wal_autocheckpoint = %d, want SQLite's 1000", auto)
	}
}

// lines is an io.Writer that hands each write to a channel, dropping what
// the test no longer reads.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}

// TestCheckpointerLogsToTheStoresLogger checks that a failed checkpoint is
// a warning in the logger given to Open, not in the process default.
func TestCheckpointerLogsToTheStoresLogger(t *testing.T) {
	t.Parallel()
	got := make(lines, 16)
	s := openTemp(t, WithCheckpoint(time.Millisecond, 0), WithLogger(slog.New(slog.NewTextHandler(got, nil))))
	// Every checkpoint fails from here on; Close closing it again is harmless.
	if err := s.ckpt.db.Close(); err != nil {
		t.Fatal(err)
	}
	s.ckpt.committed()
	select {
	case line := <-got:
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "sqlite: checkpoint") {
			t.Errorf("logged %q, want a checkpoint warning", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failed checkpoint logged nothing to the store's logger")
	}
}
