package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/service"
)

// replicaStore is one replica's view of the shared store, counting the
// batches whose progress this replica wrote.
type replicaStore struct {
	*sqlite.Store
	batches atomic.Int64
}

func (s *replicaStore) UpdateScreening(ctx context.Context, j service.ScreeningJob) error {
	err := s.Store.UpdateScreening(ctx, j)
	if err == nil && j.State == service.ScreeningRunning && j.Done > 0 {
		s.batches.Add(1)
	}
	return err
}

// logBuffer is a log destination safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runScreenings runs sc until the test ends.
func runScreenings(t *testing.T, sc *service.Screenings) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestScreeningRunOnceByReplicasSharingADir: two replicas on one store
// and one screenings dir, both running, run a job once (its batches'
// progress written by one of them only, once each), and both serve its
// results. Before jobs were leased, both ran it at once, each writing
// over the other's results.
func TestScreeningRunOnceByReplicasSharingADir(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	dir := t.TempDir()
	stA, stB := &replicaStore{Store: w.store}, &replicaStore{Store: w.store}
	a := service.NewScreenings(w.checker, stA, dir)
	b := service.NewScreenings(w.checker, stB, dir)
	ctx := context.Background()
	const n = 4001 // three batches
	job, err := a.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "RA", n)))
	if err != nil {
		t.Fatal(err)
	}
	runScreenings(t, a)
	runScreenings(t, b)
	if j := waitScreening(t, a, job.ID); j.State != service.ScreeningDone || j.Done != n || j.TreeSize != n {
		t.Fatalf("job: %+v", j)
	}
	ba, bb := stA.batches.Load(), stB.batches.Load()
	if ba+bb != 3 || (ba != 0 && bb != 0) {
		t.Fatalf("batches written: %d by A, %d by B; want all 3 by one replica", ba, bb)
	}
	var fromA, fromB bytes.Buffer
	if _, err := a.ResultsNDJSON(ctx, admin, job.ID, &fromA); err != nil {
		t.Fatalf("results from A: %v", err)
	}
	if _, err := b.ResultsNDJSON(ctx, admin, job.ID, &fromB); err != nil {
		t.Fatalf("results from B: %v", err)
	}
	if bytes.Count(fromA.Bytes(), []byte("\n")) != n || !bytes.Equal(fromA.Bytes(), fromB.Bytes()) {
		t.Fatalf("results: %d lines from A, the same from B: %v", bytes.Count(fromA.Bytes(), []byte("\n")), bytes.Equal(fromA.Bytes(), fromB.Bytes()))
	}
	if j, err := w.store.GetScreening(ctx, job.ID); err != nil || j.Runner != "" {
		t.Fatalf("the done job's lease: %q %v, want released", j.Runner, err)
	}
}

// TestScreeningReplicasWithSeparateDirs: a replica whose screenings dir
// does not have a job's files (the dir is not shared) leaves the job
// queued, warns once naming store.screenings_dir, and answers its results
// ErrScreeningUnavailable once the replica that has them ran it; only
// past the retention are they ErrScreeningExpired. Before, that replica
// failed the job ("the job's files are unreadable"), and called results
// it did not have expired.
func TestScreeningReplicasWithSeparateDirs(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	var logs logBuffer
	a := service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsClock(clock))
	b := service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsClock(clock),
		service.WithScreeningsLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	job, err := a.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "RB", 3)))
	if err != nil {
		t.Fatal(err)
	}
	runScreenings(t, b)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), job.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about %s: %q", job.ID, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // two more passes of B's Run
	if j, err := b.Get(ctx, admin, job.ID); err != nil || j.State != service.ScreeningQueued || j.Error != "" {
		t.Fatalf("the job B has no files of: %+v %v, want queued", j, err)
	}
	if got := logs.String(); strings.Count(got, "screening="+job.ID) != 1 || !strings.Contains(got, "level=WARN") || !strings.Contains(got, "store.screenings_dir") {
		t.Fatalf("B's warnings: %q, want one naming store.screenings_dir", got)
	}

	runScreenings(t, a)
	if j := waitScreening(t, a, job.ID); j.State != service.ScreeningDone {
		t.Fatalf("job run by A: %+v", j)
	}
	if _, err := a.ResultsNDJSON(ctx, admin, job.ID, io.Discard); err != nil {
		t.Fatalf("results from A: %v", err)
	}
	if _, err := b.ResultsNDJSON(ctx, admin, job.ID, io.Discard); !errors.Is(err, service.ErrScreeningUnavailable) || !strings.Contains(err.Error(), "store.screenings_dir") {
		t.Fatalf("results from B: %v, want ErrScreeningUnavailable naming store.screenings_dir", err)
	}
	offset.Store(int64(service.DefaultScreeningRetention + time.Hour))
	if _, err := b.ResultsNDJSON(ctx, admin, job.ID, io.Discard); !errors.Is(err, service.ErrScreeningExpired) {
		t.Fatalf("results from B past the retention: %v, want ErrScreeningExpired", err)
	}
}

// TestScreeningOfADeadRunnerResumedOnceItsLeaseEnds: a job whose lease
// a runner holds (one that died mid-job) is left alone until the lease
// ends, then resumed by another replica and done.
func TestScreeningOfADeadRunnerResumedOnceItsLeaseEnds(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	sc := service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsClock(clock), service.WithScreeningsLease(time.Minute))
	ctx := context.Background()
	job, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "RC", 3)))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.store.ClaimScreening(ctx, job.ID, "dead-replica", time.Now(), time.Hour); err != nil || !ok {
		t.Fatalf("the dead runner's claim: %v %v", ok, err)
	}
	runScreenings(t, sc)
	time.Sleep(2500 * time.Millisecond)
	if j, err := sc.Get(ctx, admin, job.ID); err != nil || j.State != service.ScreeningQueued || j.Runner != "dead-replica" {
		t.Fatalf("a job leased to another runner: %+v %v, want left queued", j, err)
	}
	offset.Store(int64(61 * time.Minute))
	if j := waitScreening(t, sc, job.ID); j.State != service.ScreeningDone || j.Done != 3 {
		t.Fatalf("the job once its lease ended: %+v", j)
	}
}
