package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// testApprovedAfter: statistics count, by group and outcome, the checks
// whose current feedback reports an approval, so that an approval after a
// prohibit or restrict answer shows in the figures.
func testApprovedAfter(t *testing.T, s FollowUpStore) {
	appendAll(t, s,
		checkBody("a", "p1", "S1", "government_procurement", "prohibit", "", followUpBase),
		feedbackRecord("fa", "a", "p1", "approved", 0, 1, followUpBase.Add(time.Hour)),
		checkBody("b", "p1", "S2", "government_procurement", "prohibit", "", followUpBase.Add(time.Minute)),
		feedbackRecord("fb1", "b", "p1", "approved", 0, 1, followUpBase.Add(time.Hour)),
		feedbackRecord("fb2", "b", "p1", "refused", 1, 0, followUpBase.Add(2*time.Hour)), // the correction counts
		checkBody("c", "p1", "S3", "government_procurement", "restrict", "", followUpBase.Add(2*time.Minute)),
		feedbackRecord("fc", "c", "p1", "approved_with_conditions", 1, 0, followUpBase.Add(time.Hour)),
		checkBody("d", "p2", "S4", "government_procurement", "restrict", "", followUpBase.Add(3*time.Minute)),
		feedbackRecord("fd", "d", "p2", "withdrawn", 0, 1, followUpBase.Add(time.Hour)),
	)
	rows, err := s.CheckStats(t.Context(), service.StatsQuery{From: followUpBase, To: followUpBase.Add(time.Hour), By: service.StatsPartner})
	if err != nil {
		t.Fatal(err)
	}
	want := []service.StatsRow{
		{Key: "p1", Outcome: "prohibit", Checks: 2, WithFeedback: 2, Applied: 1, NotApplied: 1, Approved: 1},
		{Key: "p1", Outcome: "restrict", Checks: 1, WithFeedback: 1, Applied: 1, Approved: 1},
		{Key: "p2", Outcome: "restrict", Checks: 1, WithFeedback: 1, NotApplied: 1},
	}
	if fmt.Sprintf("%+v", rows) != fmt.Sprintf("%+v", want) {
		t.Fatalf("by partner:\n got %+v\nwant %+v", rows, want)
	}
}

// pastCheckBody is a check record that asked about the subject's standing
// at a past time (valid_at), as credgate writes it.
func pastCheckBody(id, partner, subject, action, outcome string, at, validAt time.Time) evidence.Record {
	r := checkBody(id, partner, subject, action, outcome, "", at)
	r.Body = append(r.Body[:len(r.Body)-1], fmt.Sprintf(`,"valid_at":%q}`, validAt.Format(time.RFC3339Nano))...)
	return r
}

// testLastChecksCurrent: a check of a past time (valid_at) is not the
// check before an approval, and does not take the place of an earlier
// check of its time as the last one.
func testLastChecksCurrent(t *testing.T, s FollowUpStore) {
	appendAll(t, s,
		checkBody("now", "p1", "S1", "government_procurement", "prohibit", "", followUpBase),
		pastCheckBody("past", "p1", "S1", "government_procurement", "clear", followUpBase.Add(time.Hour), followUpBase.Add(-10*24*time.Hour)),
		pastCheckBody("only", "p1", "S2", "government_procurement", "clear", followUpBase.Add(time.Hour), followUpBase.Add(-10*24*time.Hour)),
	)
	probe := func(subject string) service.CheckProbe {
		return service.CheckProbe{Subject: subject, Action: "government_procurement", Since: followUpBase.Add(-time.Hour), At: followUpBase.Add(2 * time.Hour)}
	}
	hits, err := s.LastChecks(t.Context(), "", []service.CheckProbe{probe("S1"), probe("S2")})
	if err != nil {
		t.Fatal(err)
	}
	if hits[0].Check == nil || hits[0].Check.CheckID != "now" {
		t.Errorf("S1: %+v, want the check of its time", hits[0].Check)
	}
	if hits[1].Check != nil {
		t.Errorf("S2: %+v, want none: a check of a past time only", hits[1].Check)
	}
}
