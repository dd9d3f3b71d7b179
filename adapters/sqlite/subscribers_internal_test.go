package sqlite

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
)

// TestMigrationKeepsSubscribers opens a database a release before
// migration 0013 left, whose triggers derived checked_subjects and
// check_index from its checks: after migrating (0017 drops
// checked_subjects), Subscribers, reading check_index, finds the partners
// checked_subjects held, but for a re-run as of a past time.
func TestMigrationKeepsSubscribers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	w := openBefore(t, dir, "0013")
	recs, _, since := storetest.MigrationChecks(t)
	insertRaw(t, w, recs, 0)
	rows, err := w.w.QueryContext(ctx, `SELECT subject, partner FROM checked_subjects WHERE checked_at >= ? ORDER BY subject, partner`,
		since.UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	var before [][2]string
	for rows.Next() {
		var r [2]string
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		before = append(before, r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	w.w.Close()

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var tables int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'checked_subjects'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("checked_subjects or its indexes left after 0017: %d, %v", tables, err)
	}
	storetest.CheckMigratedSubscribers(t, before, s)
}
