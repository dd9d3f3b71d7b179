package postgres_test

import (
	"slices"
	"testing"

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
