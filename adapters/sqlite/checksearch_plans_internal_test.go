package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/internal/sqlplans"
	"github.com/credgate/credgate/service"
)

// TestCheckSearchPlans holds the auditor's check search to the indexes of
// check_index: with a partner it seeks check_index_partner, with an action
// check_index_action, otherwise check_index_time, each over the period and
// in the answer's order (no sort), never scanning every check.
func TestCheckSearchPlans(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	rec := sqlplans.NewRecorder(db{r: s.r, w: s.w})
	store := sqlcommon.New(rec, dialect)
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	cursor := &service.CheckCursor{CheckedAt: now.Add(-time.Hour), Index: 42}
	for _, tc := range []struct {
		q    service.CheckQuery
		want string
	}{
		{service.CheckQuery{Partner: "p1"}, "USING INDEX check_index_partner (partner=? AND checked_at>? AND checked_at<?)"},
		{service.CheckQuery{Partner: "p1", Action: "bank_credit", Outcome: "clear", After: cursor}, "USING INDEX check_index_partner (partner=? AND checked_at>? AND checked_at<?)"},
		{service.CheckQuery{Action: "bank_credit"}, "USING INDEX check_index_action (action=? AND checked_at>? AND checked_at<?)"},
		{service.CheckQuery{Action: "bank_credit", Outcome: "deny", After: cursor}, "USING INDEX check_index_action (action=? AND checked_at>? AND checked_at<?)"},
		{service.CheckQuery{}, "USING INDEX check_index_time (checked_at>? AND checked_at<?)"},
		{service.CheckQuery{Outcome: "restrict", After: cursor}, "USING INDEX check_index_time (checked_at>? AND checked_at<?)"},
	} {
		tc.q.From, tc.q.To, tc.q.Limit = now.Add(-service.DefaultCheckWindow), now, 50
		rec.Reset()
		if _, err := store.FindChecks(t.Context(), tc.q); err != nil {
			t.Fatal(err)
		}
		stmts := rec.Stmts()
		if len(stmts) != 1 {
			t.Fatalf("%+v: %d statements", tc.q, len(stmts))
		}
		plan := explain(t, s, stmts[0])
		text := strings.Join(plan, "\n")
		t.Logf("%+v:\n%s", tc.q, text)
		if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH c ") || !strings.HasSuffix(plan[0], tc.want) {
			t.Errorf("%+v: plan\n%s\nwant only SEARCH c %s (no scan, no sort)", tc.q, text, tc.want)
		}
	}
}
