package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

func TestValidateFeedback(t *testing.T) {
	checked := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := checked.Add(48 * time.Hour)
	answered := []policy.AnsweredMeasure{
		{ID: "ban", Effect: policy.EffectProhibit, Status: policy.MeasureApplied},
		{ID: "limit", Effect: policy.EffectRestrict, Status: policy.MeasureApplied},
		{ID: "elsewhere", Effect: policy.EffectRestrict, Status: policy.MeasureNotApplicable},
	}
	good := policy.Feedback{Decision: policy.DecisionRefused, Document: "审查意见 1", DecidedAt: checked.Add(time.Hour),
		Measures: []policy.MeasureFeedback{{ID: "ban", Applied: true}, {ID: "limit", Applied: true}}}
	if err := policy.ValidateFeedback(good, answered, checked, now); err != nil {
		t.Fatalf("good feedback refused: %v", err)
	}
	excused := good
	excused.Decision = policy.DecisionApprovedWithConditions
	excused.Measures = []policy.MeasureFeedback{{ID: "ban", Reason: policy.ReasonInformationIncorrect}, {ID: "limit", Applied: true}}
	if err := policy.ValidateFeedback(excused, answered, checked, now); err != nil {
		t.Fatalf("an approval with the prohibition excused refused: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(*policy.Feedback)
		want   string
	}{
		"unknown decision":      {func(f *policy.Feedback) { f.Decision = "perhaps" }, "decision"},
		"no document":           {func(f *policy.Feedback) { f.Document = " " }, "document"},
		"control character":     {func(f *policy.Feedback) { f.Document = "a\x00b" }, "control"},
		"no decision time":      {func(f *policy.Feedback) { f.DecidedAt = time.Time{} }, "decided_at"},
		"before the check":      {func(f *policy.Feedback) { f.DecidedAt = checked.Add(-time.Hour) }, "before the check"},
		"in the future":         {func(f *policy.Feedback) { f.DecidedAt = now.Add(time.Hour) }, "future"},
		"a measure missing":     {func(f *policy.Feedback) { f.Measures = f.Measures[:1] }, `"limit"`},
		"a measure not applied": {func(f *policy.Feedback) { f.Measures[1].ID = "elsewhere" }, "not a measure the answer applied"},
		"a measure twice":       {func(f *policy.Feedback) { f.Measures[1].ID = "ban" }, "twice"},
		"no reason":             {func(f *policy.Feedback) { f.Measures[1].Applied = false }, "reason"},
		"reason when applied":   {func(f *policy.Feedback) { f.Measures[1].Reason = policy.ReasonOther }, "only for a measure not applied"},
		"other without a note": {func(f *policy.Feedback) {
			f.Measures[1] = policy.MeasureFeedback{ID: "limit", Reason: policy.ReasonOther}
		}, "note"},
		"approved despite a prohibition": {func(f *policy.Feedback) { f.Decision = policy.DecisionApproved }, "prohibits"},
	} {
		f := good
		f.Measures = append([]policy.MeasureFeedback(nil), good.Measures...)
		c.mutate(&f)
		err := policy.ValidateFeedback(f, answered, checked, now)
		if !errors.Is(err, policy.ErrInvalidFeedback) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalidFeedback naming %q", name, err, c.want)
		}
	}
}

// TestFeedbackDeadline: feedback is due at the end of the 7th working day
// after the day of the check, counted on the holiday calendar, and a check
// is overdue exactly when that moment has passed.
func TestFeedbackDeadline(t *testing.T) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	if n := cat.FeedbackWorkingDays("government_procurement"); n != 7 {
		t.Fatalf("default feedback working days %d, want 7 (篇三(十二))", n)
	}
	// Checked Thursday 2026-09-24: 9 working days later because of the
	// National Day holidays (2026-10-01..07) — due before 2026-10-14 unless
	// the calendar says otherwise; whatever the calendar, the count is 7
	// working days.
	checked := time.Date(2026, 9, 24, 15, 0, 0, 0, cst)
	due := cat.FeedbackDue("government_procurement", checked)
	if got := cat.Calendar().WorkingDaysBetween(checked, due.Add(-time.Nanosecond)); got != 7 {
		t.Fatalf("due %s is %d working days after the check, want 7", due.In(cst), got)
	}
	for _, now := range []time.Time{due.Add(-time.Second), due, due.Add(time.Second), due.Add(72 * time.Hour)} {
		overdue := checked.Before(cat.FeedbackCutoff(7, now))
		if want := !now.Before(due); overdue != want {
			t.Errorf("at %s: overdue %v, want %v (due %s)", now.In(cst), overdue, want, due.In(cst))
		}
	}
}

func TestValidateCommitment(t *testing.T) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	due, _ := policy.ParseDate("2026-12-18")
	ok := policy.Commitment{Kind: "missing_materials", Promise: "补交材料", Due: due}
	if err := cat.ValidateCommitment(ok, now); err != nil {
		t.Fatal(err)
	}
	past, _ := policy.ParseDate("2026-12-02")
	for _, c := range []policy.Commitment{
		{Kind: "nonsense", Promise: "p", Due: due}, {Kind: "repair", Promise: "", Due: due},
		{Kind: "exit", Promise: "p"}, {Kind: "exit", Promise: "p", Due: past},
	} {
		if err := cat.ValidateCommitment(c, now); !errors.Is(err, policy.ErrInvalidCommitment) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if k, _ := cat.CommitmentKind("repair"); len(k.BreachRuleSets) != 1 || k.BreachRuleSets[0] != "urban_management" {
		t.Errorf("repair commitments: %+v", k)
	}
}
