package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func TestChangesConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunChanges(t, func(t *testing.T) storetest.ChangeStore {
		return openIn(t, testenv.PostgresURL(), testenv.FreshSchema(t, "credgate_test"), postgres.WithMaxConns(4))
	})
}

// TestChangesOfLongTransaction: a transaction that began before a reading
// and commits after it, with changes numbered before those of transactions
// that committed earlier, is still found by the next reading. A change log
// read by "id greater than the last seen" would miss it.
func TestChangesOfLongTransaction(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(4))
	ctx := t.Context()
	c0, err := s.ChangeCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	long, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	insert := `INSERT INTO ` + pgx.Identifier{schema, "entries"}.Sanitize() + ` (id, subject, subject_kind, list,
		originating_department, reason, legal_basis, decided_at, published_at, created_at, updated_at, version)
		VALUES ($1, $2, 'person', 'l', 'd', 'r', 'b', now(), now(), now(), now(), 1)`
	if _, err := long.Exec(ctx, insert, "slow", "SLOW"); err != nil {
		t.Fatal(err)
	}
	// A second transaction on the store commits first.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, insert, "fast", "FAST"); err != nil {
		t.Fatal(err)
	}
	cs, c1, lost, err := s.SubjectChanges(ctx, c0, 100)
	if err != nil || lost {
		t.Fatalf("first reading: %v %v", lost, err)
	}
	if subjects := subjectsOf(cs); !slices.Equal(subjects, []string{"FAST"}) {
		t.Fatalf("first reading: %v, want only FAST (SLOW has not committed)", subjects)
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cs, _, lost, err = s.SubjectChanges(ctx, c1, 100)
	if err != nil || lost {
		t.Fatalf("second reading: %v %v", lost, err)
	}
	if subjects := subjectsOf(cs); !slices.Contains(subjects, "SLOW") {
		t.Fatalf("second reading: %v, missing SLOW, which committed after the first reading", subjects)
	}
}

func subjectsOf(cs []service.SubjectChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Subject)
	}
	slices.Sort(out)
	return out
}

// TestChangeNoticesStayInTheirSchema: stores in two schemas of one
// database share the notices' channel; a watch passes on only its own
// schema's. Notices reach a listener in commit order, so when the second
// schema's arrives the first's would have been heard before it.
func TestChangeNoticesStayInTheirSchema(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	mySchema, otherSchema := testenv.FreshSchema(t, "credgate_test"), testenv.FreshSchema(t, "credgate_test")
	mine := openIn(t, url, mySchema, postgres.WithMaxConns(4))
	openIn(t, url, otherSchema, postgres.WithMaxConns(4)) // migrates it
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var heard atomic.Int32
	go mine.WatchSubjectChanges(ctx, func() { heard.Add(1) })
	wait := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); heard.Load() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d notices, want %d", heard.Load(), n)
			}
		}
	}
	wait(1) // the watch began
	insert := `INSERT INTO %s (id, subject, subject_kind, list, originating_department, reason, legal_basis,
		decided_at, published_at, created_at, updated_at, version)
		VALUES ($1, $2, 'person', 'l', 'd', 'r', 'b', now(), now(), now(), now(), 1)`
	for _, schema := range []string{otherSchema, mySchema} {
		if _, err := admin.Exec(ctx, fmt.Sprintf(insert, pgx.Identifier{schema, "entries"}.Sanitize()), "e1", "S1"); err != nil {
			t.Fatal(err)
		}
	}
	wait(2)
	time.Sleep(100 * time.Millisecond)
	if n := heard.Load(); n != 2 {
		t.Fatalf("%d notices: the other schema's change was passed on", n)
	}
}

// watchUntilEnd runs s's watch in the background: notices counts its
// calls of changed, and ended receives what it returned.
func watchUntilEnd(t *testing.T, s *postgres.Store) (notices *atomic.Int32, ended chan error) {
	t.Helper()
	notices, ended = new(atomic.Int32), make(chan error, 1)
	go func() { ended <- s.WatchSubjectChanges(t.Context(), func() { notices.Add(1) }) }()
	for deadline := time.Now().Add(10 * time.Second); notices.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not begin")
		}
	}
	return notices, ended
}

// endsWithin fails unless the watch ends, with an error that is not its
// context's, within d.
func endsWithin(t *testing.T, ended chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ended:
		if err == nil || t.Context().Err() != nil {
			t.Fatalf("%s: the watch ended with %v", what, err)
		}
		t.Logf("%s: %v", what, err)
	case <-time.After(d):
		t.Fatalf("%s: the watch still runs after %v", what, d)
	}
}

// TestChangeWatchEndsWithItsConnection: a watch ends, so that the cache
// watches again, when its backend is terminated (an administrator, a
// failover), and when the server stops answering (a partition looks the
// same from here): then at its next ping, within the idle time and the
// ping's bound. It must not hang, reporting a quiet log meanwhile.
func TestChangeWatchEndsWithItsConnection(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a server of its own")
	}
	pg := testenv.StartPostgres(t)
	s := openIn(t, pg.URL(), "", postgres.WithMaxConns(2), postgres.WithWatchIdle(300*time.Millisecond))
	admin, err := pgx.Connect(t.Context(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	_, ended := watchUntilEnd(t, s)
	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'credgate change log watch'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d watching backends, want 1: %v", killed, err)
	}
	endsWithin(t, ended, 10*time.Second, "backend terminated")

	_, ended = watchUntilEnd(t, s)
	pg.Signal(syscall.SIGSTOP)
	defer pg.Signal(syscall.SIGCONT)
	endsWithin(t, ended, 5*time.Second, "server frozen")
}
