package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

// A reason that states a fact credgate knows is held to it, and an
// approval while a mandatory prohibiting measure is not applied needs a
// reason that suspends or lifts it (篇五(十九), 篇三(十六)).
func TestValidateFeedbackHoldsReasonsToFacts(t *testing.T) {
	checked := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := checked.Add(48 * time.Hour)
	answered := func(st policy.MeasureStanding) []policy.AnsweredMeasure {
		return []policy.AnsweredMeasure{
			{ID: "ban", Effect: policy.EffectProhibit, Status: policy.MeasureApplied, Mandatory: true, Standing: st},
			{ID: "advised", Effect: policy.EffectProhibit, Status: policy.MeasureApplied, Standing: st},
		}
	}
	feedback := func(d policy.BusinessDecision, reason policy.NotAppliedReason) policy.Feedback {
		return policy.Feedback{Decision: d, Document: "许可决定 7", DecidedAt: checked.Add(time.Hour),
			Measures: []policy.MeasureFeedback{{ID: "ban", Reason: reason, Note: "说明"}, {ID: "advised", Applied: true}}}
	}
	for _, c := range []struct {
		name     string
		decision policy.BusinessDecision
		reason   policy.NotAppliedReason
		standing policy.MeasureStanding
		want     string // "" accepted
	}{
		{"objection claimed, none open", policy.DecisionRefused, policy.ReasonObjectionPending, policy.StandingInForce, "no objection"},
		{"objection claimed, standing unknown", policy.DecisionRefused, policy.ReasonObjectionPending, "", "no objection"},
		{"objection open", policy.DecisionRefused, policy.ReasonObjectionPending, policy.StandingUnderObjection, ""},
		{"ended claimed, in force", policy.DecisionRefused, policy.ReasonNoLongerInForce, policy.StandingInForce, "still in force"},
		{"ended claimed, under objection", policy.DecisionRefused, policy.ReasonNoLongerInForce, policy.StandingUnderObjection, "still in force"},
		{"ended", policy.DecisionRefused, policy.ReasonNoLongerInForce, policy.StandingEnded, ""},
		{"approved, not relevant", policy.DecisionApproved, policy.ReasonNotRelevant, policy.StandingInForce, "mandatory"},
		{"approved, other", policy.DecisionApprovedWithConditions, policy.ReasonOther, policy.StandingInForce, "mandatory"},
		{"refused, not relevant", policy.DecisionRefused, policy.ReasonNotRelevant, policy.StandingInForce, ""},
		{"approved, information incorrect", policy.DecisionApproved, policy.ReasonInformationIncorrect, policy.StandingInForce, ""},
		{"approved, legal exemption", policy.DecisionApproved, policy.ReasonLegalExemption, policy.StandingInForce, ""},
		{"approved, objection open", policy.DecisionApproved, policy.ReasonObjectionPending, policy.StandingUnderObjection, ""},
		{"approved, ended", policy.DecisionApproved, policy.ReasonNoLongerInForce, policy.StandingEnded, ""},
	} {
		f := feedback(c.decision, c.reason)
		if c.decision.Approves() {
			f.Measures[1] = policy.MeasureFeedback{ID: "advised", Reason: policy.ReasonNotRelevant} // recommended: may be left
		}
		err := policy.ValidateFeedback(f, answered(c.standing), checked, now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, policy.ErrInvalidFeedback) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrInvalidFeedback naming %q", c.name, err, c.want)
		}
	}
}

func TestMeasureStandingAt(t *testing.T) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	pub := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	until := pub.AddDate(1, 0, 0)
	entry := func() *policy.Entry {
		return &policy.Entry{ID: "e1", List: "tax_major_violation", PublishedAt: pub, ValidUntil: &until}
	}
	at := pub.AddDate(0, 6, 0)
	if s := cat.MeasureStandingAt("tax-government-procurement", entry(), at); s != policy.StandingInForce {
		t.Errorf("active entry: %s", s)
	}
	if s := cat.MeasureStandingAt("tax-government-procurement", nil, at); s != policy.StandingEnded {
		t.Errorf("entry gone: %s", s)
	}
	if s := cat.MeasureStandingAt("tax-government-procurement", entry(), until.Add(time.Hour)); s != policy.StandingEnded {
		t.Errorf("expired entry: %s", s)
	}
	obj := entry()
	obj.Objections = []policy.Objection{{ID: "o1", FiledAt: at.Add(-time.Hour)}}
	if s := cat.MeasureStandingAt("tax-government-procurement", obj, at); s != policy.StandingUnderObjection {
		t.Errorf("open objection: %s", s)
	}
	if s := cat.MeasureStandingAt("tax-government-procurement", obj, at.Add(-2*time.Hour)); s != policy.StandingInForce {
		t.Errorf("before the objection: %s", s)
	}
	rev := entry()
	revoked := at.Add(-time.Minute)
	rev.RevokedAt = &revoked
	if s := cat.MeasureStandingAt("tax-government-procurement", rev, at); s != policy.StandingEnded {
		t.Errorf("revoked entry: %s", s)
	}
	// A measure with a term of its own outlives its entry's validity
	// (篇四 第十四条 从其期限), and ends with its term.
	sie := &policy.Entry{ID: "e2", List: "serious_illegal_enterprise", PublishedAt: pub, ValidUntil: &until}
	if s := cat.MeasureStandingAt("sie-12-executive-ban", sie, until.AddDate(1, 0, 0)); s != policy.StandingInForce {
		t.Errorf("within the term after expiry: %s", s)
	}
	if s := cat.MeasureStandingAt("sie-12-executive-ban", sie, pub.AddDate(3, 0, 1)); s != policy.StandingEnded {
		t.Errorf("after the term: %s", s)
	}
}
