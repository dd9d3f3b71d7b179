package sqlite

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/evidence"
)

// TestDerivedTablesPlans runs every read of the tables derived from checks
// (check_index, check_lists), and checks with EXPLAIN QUERY PLAN that none
// scans one of them whole and that every index on them is used by one of
// these statements: migration 0014 dropped the indexes nothing read, and an
// index written on every check and never read would be only cost. The push
// fan-out's Subscribers reads the checks of each subject and action from
// the window's start, never every check of the subject.
func TestDerivedTablesPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	rec := sqlplans.NewRecorder(db{r: s.r, w: s.w})
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	stmts := sqlplans.DerivedReads(t, sqlcommon.New(rec, dialect), rec, now, now.Add(-time.Hour))

	derived := []string{"check_index", "check_lists"}
	var indexes []string
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('check_index', 'check_lists')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(indexes)
	if want := []string{"check_index_action", "check_index_partner", "check_index_subject", "check_index_time"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on the derived tables %v, want %v", indexes, want)
	}
	used := map[string]bool{}
	n, subscribers := 0, 0
	for _, st := range stmts {
		if !strings.Contains(st.SQL, "check_index") && !strings.Contains(st.SQL, "check_lists") {
			continue
		}
		n++
		plan := explain(t, s, st)
		if strings.Contains(st.SQL, "FROM acts a") {
			subscribers++
			// The first action of each subject, the next one after each,
			// and the checks of each from the window's start.
			for _, want := range []string{"check_index_subject (subject=?)", "check_index_subject (subject=? AND action>?)",
				"check_index_subject (subject=? AND action=? AND checked_at>?)"} {
				if !slices.ContainsFunc(plan, func(line string) bool {
					return strings.HasPrefix(line, "SEARCH c USING ") && strings.HasSuffix(line, want)
				}) {
					t.Errorf("subscribers: no SEARCH … %s in\n%s", want, strings.Join(plan, "\n"))
				}
			}
		}
		for _, line := range plan {
			for _, ix := range indexes {
				if strings.Contains(line, " "+ix+" ") || strings.HasSuffix(line, " "+ix) {
					used[ix] = true
				}
			}
			// A table's own key is named in plans by the alias it is read
			// under: c (check_index) or l (check_lists).
			switch {
			case strings.HasPrefix(line, "SEARCH c USING INTEGER PRIMARY KEY") && strings.Contains(st.SQL, "FROM check_index c"):
				used["check_index key"] = true
			case strings.HasPrefix(line, "SEARCH l USING PRIMARY KEY") && strings.Contains(st.SQL, "JOIN check_lists l"):
				used["check_lists key"] = true
			}
			if strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, "json_each") && !strings.Contains(line, "CONSTANT ROW") {
				for _, tbl := range append(derived, "c", "l") {
					if strings.HasPrefix(line, "SCAN "+tbl) {
						t.Errorf("%s scans a derived table whole:\n%s", st.SQL, strings.Join(plan, "\n"))
					}
				}
			}
		}
	}
	if n < 20 || subscribers != 1 {
		t.Fatalf("only %d statements on the derived tables recorded, %d of Subscribers", n, subscribers)
	}
	for _, ix := range append(indexes, "check_index key", "check_lists key") {
		if !used[ix] {
			t.Errorf("no read uses index %s", ix)
		}
	}
}

func explain(t *testing.T, s *Store, st sqlcommon.Stmt) []string {
	t.Helper()
	rows, err := s.w.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+st.SQL, toArgs(st.Args)...)
	if err != nil {
		t.Fatalf("%s: %v", st.SQL, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestRecordsOfKindPlan checks that RecordsOfKind reads a kind other than
// checks through evidence_kind, which since migration 0016 leaves checks
// out (SQLite uses a partial index only when the query states its
// condition), and the checks by idx, the log's key: neither scans the log.
func TestRecordsOfKindPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	rec := sqlplans.NewRecorder(db{r: s.r, w: s.w})
	store := sqlcommon.New(rec, dialect)
	for kind, want := range map[evidence.Kind]string{
		evidence.KindAdmin: "USING INDEX evidence_kind (kind=? AND idx>?)",
		evidence.KindCheck: "USING INTEGER PRIMARY KEY (rowid>?)",
	} {
		rec.Reset()
		if _, err := store.RecordsOfKind(ctx, kind, 5, 10); err != nil {
			t.Fatal(err)
		}
		stmts := rec.Stmts()
		if len(stmts) != 1 {
			t.Fatalf("records of kind %s: %d statements", kind, len(stmts))
		}
		plan := explain(t, s, stmts[0])
		if !slices.ContainsFunc(plan, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("records of kind %s: plan %q, want %q", kind, plan, want)
		}
	}
}
