package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/policy"
)

// TestStoredDuplicatesPlans: the check of a load for stored duplicates
// probes entries by subject, for staged and held entries alike. Without
// statistics SQLite would rather probe entries_list, and read the whole
// list once per staged entry: a file of one list, re-imported, would
// never finish.
func TestStoredDuplicatesPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	rec := sqlplans.NewRecorder(db{r: s.r, w: s.w})
	st := sqlcommon.New(rec, dialect)
	at := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	e := policy.Entry{ID: "ent_1", Subject: policy.SubjectID{Kind: policy.KindOrganization, Value: "91350100M000100Y43"},
		List: "court_dishonest_debtor", OriginatingDepartment: "某法院", Reason: "r", LegalBasis: "b",
		DecidedAt: at, PublishedAt: at, CreatedAt: at, UpdatedAt: at, Version: 1}
	if err := st.BeginEntryLoad(ctx, "load_p", at); err != nil {
		t.Fatal(err)
	}
	if err := st.StageEntries(ctx, "load_p", []policy.Entry{e}); err != nil {
		t.Fatal(err)
	}
	held := e
	held.ID = "ent_2"
	rec.Reset()
	if _, err := st.StoredDuplicates(ctx, "load_p", []policy.Entry{held}, 10); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, stmt := range rec.Stmts() {
		if !strings.Contains(stmt.SQL, "JOIN entries e") && !strings.Contains(stmt.SQL, "FROM entries e") {
			continue
		}
		n++
		plan := strings.Join(explain(t, s, stmt), "\n")
		if !strings.Contains(plan, "entries_subject (subject=?)") || strings.Contains(plan, "entries_list") || strings.Contains(plan, "SCAN e") {
			t.Errorf("%s:\n%s\nwant entries probed through entries_subject", stmt.SQL, plan)
		}
	}
	if n != 2 {
		t.Fatalf("%d statements read entries, want 2 (staged, held)", n)
	}
	if err := st.DiscardEntryLoad(ctx, "load_p"); err != nil {
		t.Fatal(err)
	}
}
