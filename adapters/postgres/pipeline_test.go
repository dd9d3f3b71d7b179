package postgres_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func pipeRecord(t *testing.T, id string) evidence.Record {
	t.Helper()
	r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "client", At: time.Now(), Body: []byte(`{}`)}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	return r
}

// holdAppendLock takes s's append lock on a connection of the test's own
// and returns a function that reports how many sessions wait on it, and
// one that releases it.
func holdAppendLock(t *testing.T, s *postgres.Store) (waiting func() int, release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	class, key := postgres.AppendLockKey(s)
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock($1, $2)`, class, key); err != nil {
		t.Fatal(err)
	}
	waiting = func() int {
		var n int
		// A two-key advisory lock shows its keys as oids (unsigned).
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND NOT granted AND objsubid = 2 AND classid = $1 AND objid = $2 AND database = (
				SELECT oid FROM pg_database WHERE datname = current_database())`,
			int64(uint32(class)), int64(uint32(key))).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	release = func() {
		if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_unlock($1, $2)`, class, key); err != nil {
			t.Fatal(err)
		}
	}
	return waiting, release
}

// waitFor polls until cond holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queueAtTheLock holds s's append lock, sends first and then second
// through app, and returns once both commits wait on the lock (the second
// sent while the first waits); release lets them through.
func queueAtTheLock(t *testing.T, s *postgres.Store, app *evidence.Appender, first, second evidence.Record) (a, b chan appended, release func()) {
	t.Helper()
	waiting, release := holdAppendLock(t, s)
	a = appendAsync(t, app, first)
	waitFor(t, "the first commit waits on the lock", func() bool { return waiting() == 1 })
	b = appendAsync(t, app, second)
	waitFor(t, "a second commit sent while the first waits", func() bool { return waiting() == 2 })
	return a, b, release
}

type appended struct {
	recs []evidence.Record
	err  error
}

func appendAsync(t *testing.T, app *evidence.Appender, rec evidence.Record) chan appended {
	ch := make(chan appended, 1)
	go func() {
		recs, err := app.Append(t.Context(), rec)
		ch <- appended{recs, err}
	}()
	return ch
}

// pipelining is the appender these tests are about: it sends a commit
// while the one before still waits. It is closed when the test ends.
func pipelining(t *testing.T, s *postgres.Store) *evidence.Appender {
	app := evidence.NewAppender(s, evidence.WithLeafSink(s), evidence.WithCommitsInFlight(2))
	t.Cleanup(app.Close)
	return app
}

// landsAt fails unless the append ch answers succeeded at index want.
func landsAt(t *testing.T, what string, ch chan appended, want uint64) {
	t.Helper()
	r := <-ch
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	if r.recs[0].Index != want {
		t.Fatalf("%s at index %d, want %d", what, r.recs[0].Index, want)
	}
}

// checkLog fails unless the log holds want records at 0..want-1 and the
// stored tree head is the tree of exactly those records, in index order.
func checkLog(t *testing.T, s *postgres.Store, ids []string, want int) {
	t.Helper()
	var recs []evidence.Record
	for _, id := range ids {
		r, err := s.Record(t.Context(), id)
		if errors.Is(err, evidence.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	if len(recs) != want {
		t.Fatalf("%d records in the log, want %d", len(recs), want)
	}
	tree, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Index != uint64(i) {
			t.Fatalf("record %s at index %d, want %d: a hole in the log", r.ID, r.Index, i)
		}
		tree.Append(evidence.LeafHash(r), nil)
	}
	head, err := s.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != uint64(want) || head.Root != tree.Root() {
		t.Fatalf("stored tree head: %d records, root %x; the log's records make %d, root %x",
			head.Size, head.Root, want, tree.Root())
	}
}

// While one batch is held in PostgreSQL (the test holds the append lock),
// the appender sends the next one behind it: two commits wait on the lock
// at once, neither is answered before the lock is released, and they
// commit in the order sent.
func TestSecondCommitSentWhileFirstWaits(t *testing.T) {
	t.Parallel()
	_, stores := replicas(t, 1)
	s := stores[0]
	app := pipelining(t, s)
	// The first append reads the head (general path); later ones follow.
	if _, err := app.Append(t.Context(), pipeRecord(t, "r0")); err != nil {
		t.Fatal(err)
	}

	first, second, release := queueAtTheLock(t, s, app, pipeRecord(t, "r1"), pipeRecord(t, "r2"))
	select {
	case r := <-first:
		t.Fatalf("answered (%v) before its commit", r.err)
	case r := <-second:
		t.Fatalf("answered (%v) before its commit", r.err)
	default:
	}
	release()
	landsAt(t, "record r1", first, 1)
	landsAt(t, "record r2", second, 2)
	checkLog(t, s, []string{"r0", "r1", "r2"}, 3)
}

// A batch that fails in PostgreSQL (here a record id already in the log)
// takes the one sent behind it down its guard: that one is not committed
// where the failed one would have left the log, and lands, through the
// general path, at the log's real end.
func TestCommitBehindAFailedOneIsNotOnTopOfIt(t *testing.T) {
	t.Parallel()
	_, stores := replicas(t, 1)
	s := stores[0]
	app := pipelining(t, s)
	for _, id := range []string{"r0", "r1"} {
		if _, err := app.Append(t.Context(), pipeRecord(t, id)); err != nil {
			t.Fatal(err)
		}
	}

	failing, behind, release := queueAtTheLock(t, s, app, pipeRecord(t, "r0"), pipeRecord(t, "r2"))
	release()
	if r := <-failing; !errors.Is(r.err, service.ErrConflict) || !errors.Is(r.err, evidence.ErrUnavailable) {
		t.Fatalf("duplicate record: %v, want ErrUnavailable wrapping ErrConflict", r.err)
	}
	landsAt(t, "record behind the failed batch", behind, 2)
	checkLog(t, s, []string{"r0", "r1", "r2"}, 3)
}

// The batch before failed, and another replica appended as many records
// meanwhile: the log has the size the batch behind was predicted to
// follow, but not its tree. The guard checks the root too, so the batch
// behind is not committed over a tree it did not grow.
func TestCommitBehindChecksTheRootNotOnlyTheSize(t *testing.T) {
	t.Parallel()
	_, stores := replicas(t, 2)
	a, b := stores[0], stores[1]
	app := pipelining(t, a)
	if _, err := app.Append(t.Context(), pipeRecord(t, "a0")); err != nil {
		t.Fatal(err)
	}
	// Another replica appends one record: a's tip is now one behind.
	if _, err := b.AppendBatch(t.Context(), []evidence.Record{pipeRecord(t, "b0")}); err != nil {
		t.Fatal(err)
	}

	// The first is predicted to follow a0 (size 1): its guard fails, and on
	// the general path the duplicate id fails it. The one behind is
	// predicted to follow a0 and the duplicate: size 2, as the log has.
	failing, behind, release := queueAtTheLock(t, a, app, pipeRecord(t, "a0"), pipeRecord(t, "a1"))
	release()
	if r := <-failing; !errors.Is(r.err, service.ErrConflict) {
		t.Fatalf("duplicate record: %v, want ErrConflict", r.err)
	}
	landsAt(t, "record behind", behind, 2)
	checkLog(t, a, []string{"a0", "b0", "a1"}, 3)
}

// Two stores (two replicas), each with its own pipelining appender, append
// to one log at once: every record gets its own index, no gap, and the
// tree is the tree of the log.
func TestTwoPipelinedReplicasAppendConcurrently(t *testing.T) {
	t.Parallel()
	_, stores := replicas(t, 2)
	const perStore = 300
	var ids []string
	errs := make(chan error, 2*perStore)
	idx := make(chan uint64, 2*perStore)
	for si, s := range stores {
		app := pipelining(t, s)
		for i := range perStore {
			id := string(rune('a'+si)) + "-" + time.Duration(i).String()
			ids = append(ids, id)
			rec := pipeRecord(t, id)
			go func() {
				recs, err := app.Append(t.Context(), rec)
				if err != nil {
					errs <- err
					return
				}
				idx <- recs[0].Index
			}()
		}
	}
	seen := map[uint64]bool{}
	for range 2 * perStore {
		select {
		case err := <-errs:
			t.Fatal(err)
		case i := <-idx:
			if seen[i] {
				t.Fatalf("index %d given twice", i)
			}
			seen[i] = true
		}
	}
	checkLog(t, stores[0], ids, 2*perStore)
}
