package service_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// recorder is an EvidenceLog that keeps the records it is given.
type recorder struct {
	next service.EvidenceLog
	mu   sync.Mutex
	recs []evidence.Record
}

func (r *recorder) Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error) {
	r.mu.Lock()
	r.recs = append(r.recs, recs...)
	r.mu.Unlock()
	return r.next.Append(ctx, recs...)
}

// The checker hands the log each check's indexed members with its body
// (evidence.Record.Check), so that stores need not parse it again; a
// re-run as of a past time, which stores do not index, carries none.
// That the facts are what the body says is sqlcommon's FuzzCheckFacts.
func TestCheckRecordCarriesFacts(t *testing.T) {
	t.Parallel()
	w := newLCWorld(t, cstAt(2026, 1, 4, 9))
	w.create(safetyEntry(cstAt(2026, 1, 5, 0)))
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: evidence.NewAppender(w.store)}
	checker := service.NewChecker(cat, w.store, rec, w.store, service.WithClock(w.clock.Now), service.WithHistory(w.store))
	w.clock.Set(cstAt(2026, 3, 1, 9))
	past := cstAt(2026, 1, 4, 12)
	var answers []service.CheckAnswer
	for _, req := range []service.CheckRequest{
		{Subject: lcOrg, Action: "government_procurement"},
		{Subject: lcOrg2, Action: "government_procurement"},
		{Subject: lcOrg, Action: "government_procurement", AsOf: &past},
	} {
		ans, err := checker.Check(t.Context(), admin, req)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, ans)
	}
	if len(rec.recs) != 3 {
		t.Fatalf("%d records for 3 checks", len(rec.recs))
	}
	restricted, clear := answers[0], answers[1]
	if restricted.Outcome != policy.OutcomeRestrict || clear.Outcome != policy.OutcomeClear {
		t.Fatalf("outcomes %s, %s", restricted.Outcome, clear.Outcome)
	}
	var lists []string
	for _, m := range restricted.Measures {
		if m.Status == policy.MeasureApplied {
			lists = append(lists, m.List)
		}
	}
	if len(lists) == 0 {
		t.Fatal("no measure applied to a listed subject")
	}
	want := []*evidence.CheckFacts{
		{Subject: lcOrg, Action: "government_procurement", Outcome: "restrict", Region: restricted.Context.Region, Lists: lists},
		{Subject: lcOrg2, Action: "government_procurement", Outcome: "clear", Region: clear.Context.Region},
		nil,
	}
	for i, r := range rec.recs {
		if r.ID != answers[i].CheckID || !reflect.DeepEqual(r.Check, want[i]) {
			t.Errorf("record %s carries %+v, want %+v", r.ID, r.Check, want[i])
		}
	}
}
