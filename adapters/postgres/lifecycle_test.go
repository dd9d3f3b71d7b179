package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func TestLifecycleConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunLifecycle(t, func(t *testing.T) service.Store { return openStore(t) })
}

func BenchmarkLifecycleReads(b *testing.B) { storetest.BenchLifecycleReads(b, openStore) }

// TestHistoryIsAppendOnly: the entry history and the violation records
// refuse updates, deletes and truncation, whoever connects.
func TestHistoryIsAppendOnly(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	openIn(t, url, schema)
	ctx := t.Context()
	table := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	for _, q := range []string{
		`INSERT INTO ` + table("entries") + ` (id, subject, subject_kind, list, originating_department, reason, legal_basis,
			decided_at, published_at, created_at, updated_at, version) VALUES ('e', 's', 'person', 'l', 'd', 'r', 'b', now(), now(), now(), now(), 1)`,
		`INSERT INTO ` + table("violation_records") + ` (id, subject, subject_kind, rule_set, item, severity, decided_at, recorded_at,
			department, reference) VALUES ('v', 's', 'person', 'rs', 'i', 'general', now(), now(), 'd', 'r')`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE ` + table("entry_versions") + ` SET reason = 'rewritten'`,
		`DELETE FROM ` + table("entry_versions"),
		`TRUNCATE ` + table("entry_versions"),
		`UPDATE ` + table("violation_records") + ` SET item = 'x'`,
		`DELETE FROM ` + table("violation_records"),
		`UPDATE ` + table("entries") + ` SET reason = 'sneaky' WHERE id = 'e'`,
	} {
		if _, err := admin.Exec(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+table("entry_versions")+` WHERE id = 'e' AND reason = 'r'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("history: %d rows, %v", n, err)
	}
}

func BenchmarkHistoryWrites(b *testing.B) {
	url, admin := testenv.Postgres(b)
	schemas := map[service.Store]string{}
	storetest.BenchHistoryWrites(b, func(tb testing.TB) service.Store {
		schema := testenv.FreshSchema(tb, "credgate_test")
		s := openIn(tb, url, schema, postgres.WithMaxConns(4))
		schemas[s] = schema
		return s
	}, func(tb testing.TB, s service.Store) {
		if _, err := admin.Exec(tb.Context(), `ALTER TABLE `+pgx.Identifier{schemas[s], "entries"}.Sanitize()+
			` DISABLE TRIGGER entries_version`); err != nil {
			tb.Fatal(err)
		}
	})
}
