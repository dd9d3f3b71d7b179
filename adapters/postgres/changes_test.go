package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
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
