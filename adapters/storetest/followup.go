package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// FollowUpStore is a store with the follow-up reads (feedback, statistics,
// coverage, commitments), which both adapters provide.
type FollowUpStore interface {
	service.Store
	service.FollowUpStore
}

// RunFollowUp runs the follow-up conformance tests: what the stores derive
// from the evidence log (migration 0010) and the reads over it.
func RunFollowUp(t *testing.T, open func(t *testing.T) FollowUpStore) {
	runEach(t, open, "FollowUp/", []named[FollowUpStore]{
		{"IndexesChecks", testIndexesChecks},
		{"Feedback", testFeedbackRows},
		{"Overdue", testOverdue},
		{"Stats", testStats},
		{"ApprovedAfter", testApprovedAfter},
		{"FeedbackLate", testFeedbackLate},
		{"LastChecks", testLastChecks},
		{"LastChecksCurrent", testLastChecksCurrent},
		{"Commitments", testCommitments},
		{"BodiesWithNUL", testBodiesWithNUL},
	})
}

var followUpBase = time.Date(2026, 11, 2, 9, 0, 0, 123456000, time.UTC)

// checkRecord is a check record shaped as credgate writes it.
func checkBody(id, partner, subject, action, outcome, region string, at time.Time, lists ...string) evidence.Record {
	measures := ""
	for i, l := range lists {
		if i > 0 {
			measures += ","
		}
		measures += fmt.Sprintf(`{"id":"m-%s","list":%q,"effect":"restrict","status":"applied"}`, l, l)
	}
	ctx := "{}"
	if region != "" {
		ctx = fmt.Sprintf(`{"region":%q}`, region)
	}
	body := fmt.Sprintf(`{"check_id":%q,"partner":%q,"subject":{"id":%q,"kind":"organization"},"action":%q,"outcome":%q,"measures":[%s],"entries":[],"context":%s}`,
		id, partner, subject, action, outcome, measures, ctx)
	return evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: partner, At: at, Body: []byte(body)}
}

func feedbackRecord(id, check, partner, decision string, applied, notApplied int, at time.Time) evidence.Record {
	ms := ""
	for i := range applied + notApplied {
		if i > 0 {
			ms += ","
		}
		ms += fmt.Sprintf(`{"id":"m%d","applied":%t}`, i, i < applied)
	}
	body := fmt.Sprintf(`{"feedback_id":%q,"check_id":%q,"decision":%q,"measures":[%s]}`, id, check, decision, ms)
	return evidence.Record{ID: id, Kind: evidence.KindFeedback, Partner: partner, At: at, Body: []byte(body)}
}

func commitmentRecord(recID, id, op, partner string, at time.Time) evidence.Record {
	body := fmt.Sprintf(`{"commitment_id":%q,"op":%q,"subject":{"id":"91110000MA00000001","kind":"organization"},"kind":"missing_materials","check_id":"c1","due":"2026-12-10"}`, id, op)
	return evidence.Record{ID: recID, Kind: evidence.KindCommitment, Partner: partner, At: at, Body: []byte(body)}
}

func appendAll(t *testing.T, s service.Store, recs ...evidence.Record) {
	t.Helper()
	for i := range recs {
		if err := recs[i].Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendBatch(t.Context(), recs); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func testIndexesChecks(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	past := checkBody("c-asof", "admin", "S1", "bank_credit", "clear", "", followUpBase)
	past.Body = []byte(`{"check_id":"c-asof","subject":{"id":"S1"},"action":"bank_credit","outcome":"clear","as_of":"2026-01-01T00:00:00Z"}`)
	appendAll(t, s,
		checkBody("c1", "p1", "S1", "bank_credit", "restrict", "440300", followUpBase, "black", "yellow"),
		past,
		// Bodies that are not credgate's own are ignored, never refused.
		evidence.Record{ID: "x1", Kind: evidence.KindCheck, Partner: "p", At: followUpBase, Body: []byte(`{"check_id":"x1"}`)},
		evidence.Record{ID: "x2", Kind: evidence.KindCheck, Partner: "p", At: followUpBase, Body: append([]byte(`{"n":1}`), 0xff)},
		evidence.Record{ID: "x3", Kind: evidence.KindFeedback, Partner: "p", At: followUpBase, Body: []byte(`{"feedback_id":"x3"}`)},
	)
	c, err := s.IndexedCheck(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := service.IndexedCheck{CheckID: "c1", Index: 0, Partner: "p1", Subject: "S1", Action: "bank_credit", Outcome: "restrict",
		Region: "440300", CheckedAt: stored(followUpBase)}
	if c != want {
		t.Fatalf("indexed %+v, want %+v", c, want)
	}
	for _, id := range []string{"c-asof", "x1", "x2"} {
		if _, err := s.IndexedCheck(ctx, id); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s indexed: %v", id, err)
		}
	}
	rows, err := s.CheckStats(ctx, service.StatsQuery{From: followUpBase, To: followUpBase.Add(time.Second), By: service.StatsList})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Key != "black" || rows[1].Key != "yellow" {
		t.Fatalf("by list: %+v", rows)
	}
}

func testFeedbackRows(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	appendAll(t, s,
		checkBody("c1", "p1", "S1", "bank_credit", "restrict", "", followUpBase, "black"),
		feedbackRecord("f1", "c1", "p1", "refused", 1, 0, followUpBase.Add(time.Hour)),
		feedbackRecord("f2", "c1", "p1", "approved_with_conditions", 0, 1, followUpBase.Add(2*time.Hour)),
		checkBody("c2", "p2", "S2", "bank_credit", "restrict", "", followUpBase, "black"),
		feedbackRecord("f3", "c2", "p2", "refused", 2, 1, followUpBase.Add(3*time.Hour)),
	)
	fb, err := s.FeedbackOf(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 2 || fb[0].ID != "f1" || fb[1].ID != "f2" || fb[1].Decision != "approved_with_conditions" ||
		fb[1].NotApplied != 1 || fb[1].Applied != 0 || fb[0].Applied != 1 || !fb[1].RecordedAt.Equal(stored(followUpBase.Add(2*time.Hour))) {
		t.Fatalf("feedback of c1: %+v", fb)
	}
	all, err := s.ListFeedback(ctx, service.FeedbackFilter{After: -1})
	if err != nil || len(all) != 3 {
		t.Fatalf("all feedback: %+v, %v", all, err)
	}
	own, err := s.ListFeedback(ctx, service.FeedbackFilter{Partner: "p2", After: -1})
	if err != nil || len(own) != 1 || own[0].ID != "f3" || own[0].Applied != 2 {
		t.Fatalf("p2's feedback: %+v, %v", own, err)
	}
	page, err := s.ListFeedback(ctx, service.FeedbackFilter{After: all[0].Index, Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != "f2" {
		t.Fatalf("page after f1: %+v, %v", page, err)
	}
}

func testOverdue(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	appendAll(t, s,
		checkBody("old", "p1", "S1", "bank_credit", "restrict", "", followUpBase),
		checkBody("old-clear", "p1", "S2", "bank_credit", "clear", "", followUpBase),
		checkBody("old-answered", "p1", "S3", "bank_credit", "prohibit", "", followUpBase),
		feedbackRecord("f1", "old-answered", "p1", "refused", 1, 0, followUpBase.Add(time.Hour)),
		checkBody("old-other", "p2", "S4", "government_procurement", "restrict", "", followUpBase),
		checkBody("recent", "p1", "S5", "bank_credit", "restrict", "", followUpBase.Add(48*time.Hour)),
	)
	cut := []service.ActionCutoff{
		{Actions: []string{"bank_credit"}, Before: followUpBase.Add(24 * time.Hour)},
		{Actions: []string{"government_procurement"}, Before: followUpBase.Add(-time.Hour)},
	}
	got, err := s.OverdueChecks(ctx, service.OverdueFilter{Cutoffs: cut, After: -1})
	if err != nil || len(got) != 1 || got[0].CheckID != "old" {
		t.Fatalf("overdue: %+v, %v", got, err)
	}
	cut[1].Before = followUpBase.Add(time.Hour)
	got, err = s.OverdueChecks(ctx, service.OverdueFilter{Cutoffs: cut, After: -1})
	if err != nil || len(got) != 2 || got[1].CheckID != "old-other" {
		t.Fatalf("overdue with procurement due: %+v, %v", got, err)
	}
	got, err = s.OverdueChecks(ctx, service.OverdueFilter{Cutoffs: cut, Partner: "p2", After: -1})
	if err != nil || len(got) != 1 || got[0].CheckID != "old-other" {
		t.Fatalf("p2's overdue: %+v, %v", got, err)
	}
	got, err = s.OverdueChecks(ctx, service.OverdueFilter{Cutoffs: cut, After: got[0].Index})
	if err != nil || len(got) != 0 {
		t.Fatalf("after the last: %+v, %v", got, err)
	}
	n, err := s.OverdueCounts(ctx, service.StatsQuery{From: followUpBase, To: followUpBase.Add(72 * time.Hour), By: service.StatsPartner}, cut)
	if err != nil || n["p1"] != 1 || n["p2"] != 1 || len(n) != 2 {
		t.Fatalf("overdue counts: %v, %v", n, err)
	}
	n, err = s.OverdueCounts(ctx, service.StatsQuery{From: followUpBase, To: followUpBase.Add(72 * time.Hour)}, nil)
	if err != nil || len(n) != 0 {
		t.Fatalf("no cutoffs, nothing overdue: %v, %v", n, err)
	}
}

func testStats(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	appendAll(t, s,
		checkBody("a", "p1", "S1", "bank_credit", "restrict", "440300", followUpBase, "black"),
		checkBody("b", "p1", "S2", "bank_credit", "clear", "440300", followUpBase.Add(time.Minute)),
		checkBody("c", "p2", "S3", "government_procurement", "restrict", "", followUpBase.Add(2*time.Minute), "black"),
		feedbackRecord("f1", "a", "p1", "refused", 1, 0, followUpBase.Add(time.Hour)),
		feedbackRecord("f2", "a", "p1", "refused", 2, 1, followUpBase.Add(2*time.Hour)), // the correction counts
		checkBody("later", "p1", "S1", "bank_credit", "restrict", "", followUpBase.Add(40*24*time.Hour)),
	)
	q := service.StatsQuery{From: followUpBase, To: followUpBase.Add(24 * time.Hour), By: service.StatsPartner}
	rows, err := s.CheckStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := []service.StatsRow{
		{Key: "p1", Outcome: "clear", Checks: 1},
		{Key: "p1", Outcome: "restrict", Checks: 1, WithFeedback: 1, Applied: 2, NotApplied: 1},
		{Key: "p2", Outcome: "restrict", Checks: 1},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("by partner:\n got %+v\nwant %+v", rows, want)
	}
	q.By = service.StatsTotal
	rows, err = s.CheckStats(ctx, q)
	if err != nil || len(rows) != 2 || rows[1].Checks != 2 || rows[1].Key != "" {
		t.Fatalf("total: %+v, %v", rows, err)
	}
	q.By, q.Partner = service.StatsRegion, "p1"
	rows, err = s.CheckStats(ctx, q)
	if err != nil || len(rows) != 2 || rows[0].Key != "440300" {
		t.Fatalf("p1 by region: %+v, %v", rows, err)
	}
	q.By = service.StatsAction
	if _, err := s.CheckStats(ctx, service.StatsQuery{From: q.From, To: q.To, By: "nonsense"}); err == nil {
		t.Fatal("an unknown grouping was accepted")
	}
}

func testLastChecks(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	appendAll(t, s,
		checkBody("early", "p1", "S1", "bank_credit", "clear", "", followUpBase),
		checkBody("late", "p1", "S1", "bank_credit", "prohibit", "", followUpBase.Add(time.Hour)),
		feedbackRecord("f1", "late", "p1", "approved_with_conditions", 0, 1, followUpBase.Add(2*time.Hour)),
		checkBody("other", "p2", "S2", "bank_credit", "restrict", "", followUpBase.Add(time.Hour)),
	)
	probes := []service.CheckProbe{
		{Subject: "S1", Action: "bank_credit", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(3 * time.Hour)},
		{Subject: "S1", Action: "bank_credit", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(30 * time.Minute)},
		{Subject: "S1", Action: "bank_credit", Since: followUpBase, At: followUpBase.Add(30 * time.Minute)}, // the window excludes its start
		{Subject: "S1", Action: "tourism", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(3 * time.Hour)},
		{Subject: "S2", Action: "bank_credit", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(3 * time.Hour)},
		{Subject: "S1", Action: "bank_credit", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(4 * time.Hour)},
	}
	hits, err := s.LastChecks(ctx, "", probes)
	if err != nil {
		t.Fatal(err)
	}
	id := func(h service.ProbeHit) string {
		if h.Check == nil {
			return "-"
		}
		return h.Check.CheckID + "/" + h.Decision
	}
	got := ""
	for _, h := range hits {
		got += id(h) + " "
	}
	if want := "late/approved_with_conditions early/ - - other/ late/approved_with_conditions "; got != want {
		t.Fatalf("probes: %q, want %q", got, want)
	}
	hits, err = s.LastChecks(ctx, "p1", probes[4:5])
	if err != nil || hits[0].Check != nil {
		t.Fatalf("another partner's check found: %+v, %v", hits, err)
	}
	if _, err := s.LastChecks(ctx, "", make([]service.CheckProbe, service.MaxProbes+1)); err == nil {
		t.Fatal("too many probes accepted")
	}
}

func testCommitments(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	appendAll(t, s,
		commitmentRecord("cm1", "cm1", "recorded", "p1", followUpBase),
		commitmentRecord("cm2", "cm2", "recorded", "p2", followUpBase),
		commitmentRecord("r1", "cm1", "fulfilled", "p1", followUpBase.Add(time.Hour)),
		commitmentRecord("r2", "cm1", "breached", "p1", followUpBase.Add(2*time.Hour)), // too late: the first decides
		commitmentRecord("r3", "missing", "breached", "p1", followUpBase.Add(2*time.Hour)),
	)
	c, err := s.Commitment(ctx, "cm1")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "fulfilled" || c.StateRecord != "r1" || c.StateAt == nil || !c.StateAt.Equal(stored(followUpBase.Add(time.Hour))) ||
		c.Subject != "91110000MA00000001" || c.Kind != "missing_materials" || c.CheckID != "c1" || c.Due != "2026-12-10" || c.Partner != "p1" {
		t.Fatalf("cm1: %+v", c)
	}
	if _, err := s.Commitment(ctx, "missing"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	open, err := s.ListCommitments(ctx, service.CommitmentFilter{State: "open"})
	if err != nil || len(open) != 1 || open[0].ID != "cm2" || open[0].StateAt != nil {
		t.Fatalf("open: %+v, %v", open, err)
	}
	for _, f := range []service.CommitmentFilter{{Partner: "p1"}, {DueBefore: "2026-12-11", Partner: "p1"}, {After: "cm1"}} {
		got, err := s.ListCommitments(ctx, f)
		if err != nil || len(got) != 1 {
			t.Fatalf("%+v: %+v, %v", f, got, err)
		}
	}
	if got, err := s.ListCommitments(ctx, service.CommitmentFilter{DueBefore: "2026-12-10"}); err != nil || len(got) != 0 {
		t.Fatalf("due before the 10th: %+v, %v", got, err)
	}
}
