package sqlite

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/evidence"
)

// TestDerivedTablesPlans runs every read of the tables derived from checks
// (check_index, check_lists, checked_subjects) and the pruning of checked
// subjects, and checks with EXPLAIN QUERY PLAN that none scans one of them
// whole and that every index on them is used by one of these statements:
// migration 0014 dropped the indexes nothing read, and an index written on
// every check and never read would be only cost.
func TestDerivedTablesPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	rec := sqlplans.NewRecorder(db{r: s.r, w: s.w})
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	stmts := sqlplans.DerivedReads(t, sqlcommon.New(rec, dialect), rec, now, now.Add(-time.Hour))

	derived := []string{"check_index", "check_lists", "checked_subjects"}
	var indexes []string
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('check_index', 'check_lists', 'checked_subjects')`)
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
	if want := []string{"check_index_action", "check_index_partner", "check_index_subject", "check_index_time",
		"checked_subjects_floor"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on the derived tables %v, want %v", indexes, want)
	}
	used := map[string]bool{}
	n := 0
	for _, st := range stmts {
		if !strings.Contains(st.SQL, "check_index") && !strings.Contains(st.SQL, "check_lists") && !strings.Contains(st.SQL, "checked_subjects") {
			continue
		}
		n++
		plan := explain(t, s, st)
		for _, line := range plan {
			for _, ix := range indexes {
				if strings.Contains(line, " "+ix+" ") || strings.HasSuffix(line, " "+ix) {
					used[ix] = true
				}
			}
			// A table's own key is named in plans by the alias it is read
			// under: c (check_index, checked_subjects) or l (check_lists).
			switch {
			case strings.HasPrefix(line, "SEARCH c USING INTEGER PRIMARY KEY") && strings.Contains(st.SQL, "FROM check_index c"):
				used["check_index key"] = true
			case strings.HasPrefix(line, "SEARCH c USING PRIMARY KEY") && strings.Contains(st.SQL, "FROM checked_subjects c"):
				used["checked_subjects key"] = true
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
	if n < 20 {
		t.Fatalf("only %d statements on the derived tables recorded", n)
	}
	for _, ix := range append(indexes, "check_index key", "checked_subjects key", "check_lists key") {
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

// TestPruneCheckedSubjectsByFloor checks migration 0014's pruning: a later
// check of a subject leaves checked_floor (so its index entry does not
// move), pruning deletes exactly the subjects last checked before the time
// and raises the floor of those it keeps to their checked_at.
func TestPruneCheckedSubjectsByFloor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	n := 0
	check := func(subject string, at time.Time) evidence.Record {
		n++
		id := fmt.Sprintf("chk-%d", n)
		r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "p1", At: at,
			Body: []byte(`{"check_id":"` + id + `","subject":{"id":"` + subject + `"},"action":"bank_credit","outcome":"clear","context":{}}`)}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, batch := range [][]evidence.Record{
		{check("S1", t0), check("S2", t0), check("S3", t0)},
		{check("S1", t0.Add(48*time.Hour)), check("S3", t0.Add(2*time.Hour))},
	} {
		if _, err := s.AppendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() map[string][2]int64 {
		out := map[string][2]int64{}
		r, err := s.r.QueryContext(ctx, `SELECT subject, checked_at, checked_floor FROM checked_subjects`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var subject string
			var at, floor int64
			if err := r.Scan(&subject, &at, &floor); err != nil {
				t.Fatal(err)
			}
			out[subject] = [2]int64{at, floor}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	us := func(d time.Duration) int64 { return t0.Add(d).UnixMicro() }
	if got, want := rows(), map[string][2]int64{
		"S1": {us(48 * time.Hour), us(0)}, "S2": {us(0), us(0)}, "S3": {us(2 * time.Hour), us(0)},
	}; !maps.Equal(got, want) {
		t.Fatalf("after two commits %v, want %v", got, want)
	}
	// Checked before t0+1h: S2 only; S3 (t0+2h) and S1 stay, floors raised.
	if _, err := s.PruneEvents(ctx, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := rows(), map[string][2]int64{
		"S1": {us(48 * time.Hour), us(48 * time.Hour)}, "S3": {us(2 * time.Hour), us(2 * time.Hour)},
	}; !maps.Equal(got, want) {
		t.Fatalf("after pruning before t0+1h %v, want %v", got, want)
	}
	subs, err := s.Subscribers(ctx, []string{"S1", "S2", "S3"}, t0.Add(time.Hour))
	if err != nil || len(subs) != 2 || subs[0].Subject != "S1" || subs[1].Subject != "S3" {
		t.Fatalf("subscribers %+v, %v; want S1 and S3", subs, err)
	}
	if _, err := s.PruneEvents(ctx, t0, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := rows(); len(got) != 1 || got["S1"] != [2]int64{us(48 * time.Hour), us(48 * time.Hour)} {
		t.Fatalf("after pruning before t0+3h %v, want S1 alone", got)
	}
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
