package sqlite

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

// TestHistoryIsAppendOnly: the entry history and the violation records
// refuse updates and deletes, whoever connects to the file.
func TestHistoryIsAppendOnly(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO entries (id, subject, subject_kind, list, originating_department, reason, legal_basis,
			decided_at, published_at, created_at, updated_at, version) VALUES ('e', 's', 'person', 'l', 'd', 'r', 'b', 1, 1, 1, 1, 1)`,
		`INSERT INTO violation_records (id, subject, subject_kind, rule_set, item, severity, decided_at, recorded_at,
			department, reference) VALUES ('v', 's', 'person', 'rs', 'i', 'general', 1, 1, 'd', 'r')`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE entry_versions SET reason = 'rewritten'`,
		`DELETE FROM entry_versions`,
		`UPDATE violation_records SET item = 'x'`,
		`DELETE FROM violation_records`,
		// An update that does not bump the version would overwrite history.
		`UPDATE entries SET reason = 'sneaky' WHERE id = 'e'`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM entry_versions WHERE id = 'e' AND reason = 'r'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("history: %d rows, %v", n, err)
	}
}

func BenchmarkHistoryWrites(b *testing.B) {
	storetest.BenchHistoryWrites(b, func(tb testing.TB) service.Store {
		s, err := Open(tb.Context(), tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}, func(tb testing.TB, st service.Store) {
		if _, err := st.(*Store).w.ExecContext(tb.Context(), `DROP TRIGGER entries_version_update`); err != nil {
			tb.Fatal(err)
		}
	})
}
