package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// lateFeedback is a feedback record whose body says, as the service writes
// it, whether it came after its due time (late: "true", "false", or ""
// for a body that does not say) and its place in the check's chain.
func lateFeedback(id, check, partner, follows, late string, at time.Time) evidence.Record {
	lateField := ""
	if late != "" {
		lateField = `,"late":` + late
	}
	body := fmt.Sprintf(`{"feedback_id":%q,"check_id":%q,"decision":"refused","measures":[{"id":"m0","applied":true}]%s,"follows":%q}`,
		id, check, lateField, follows)
	return evidence.Record{ID: id, Kind: evidence.KindFeedback, Partner: partner, At: at, Body: []byte(body)}
}

// testFeedbackLate: the index keeps whether each feedback came late, as
// its body says (unknown when it does not), and statistics count, of the
// checks with feedback, those whose first feedback was late: a late
// correction of feedback given in time is not, a staff check's late
// feedback is expected of no one, and an unknown one counts neither way.
func testFeedbackLate(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	staff := admin("staff")
	if err := s.InsertPartner(ctx, staff); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s,
		checkBody("late", "p1", "S1", "bank_credit", "restrict", "", followUpBase),
		lateFeedback("f-late", "late", "p1", "", "true", followUpBase.Add(time.Hour)),
		checkBody("in-time", "p1", "S2", "bank_credit", "restrict", "", followUpBase.Add(time.Minute)),
		lateFeedback("f-in-time", "in-time", "p1", "", "false", followUpBase.Add(time.Hour)),
		lateFeedback("f-corrected", "in-time", "p1", "f-in-time", "true", followUpBase.Add(2*time.Hour)),
		checkBody("unknown", "p1", "S3", "bank_credit", "restrict", "", followUpBase.Add(2*time.Minute)),
		lateFeedback("f-unknown", "unknown", "p1", "", "", followUpBase.Add(time.Hour)),
		checkBody("late-too", "p1", "S4", "bank_credit", "prohibit", "", followUpBase.Add(3*time.Minute)),
		lateFeedback("f-late-too", "late-too", "p1", "", "true", followUpBase.Add(time.Hour)),
		checkBody("none", "p1", "S5", "bank_credit", "restrict", "", followUpBase.Add(4*time.Minute)),
		checkBody("staff", staff.ClientID, "S6", "bank_credit", "restrict", "", followUpBase.Add(5*time.Minute)),
		lateFeedback("f-staff", "staff", staff.ClientID, "", "true", followUpBase.Add(time.Hour)),
	)
	late := func(rows []service.FeedbackRow) string {
		out := ""
		for _, r := range rows {
			switch {
			case r.Late == nil:
				out += r.ID + ":unknown "
			default:
				out += fmt.Sprintf("%s:%t ", r.ID, *r.Late)
			}
		}
		return out
	}
	for check, want := range map[string]string{
		"late": "f-late:true ", "in-time": "f-in-time:false f-corrected:true ", "unknown": "f-unknown:unknown ",
	} {
		rows, err := s.FeedbackOf(ctx, check)
		if err != nil || late(rows) != want {
			t.Fatalf("feedback of %s: %s, %v; want %s", check, late(rows), err, want)
		}
	}
	rows, err := s.ListFeedback(ctx, service.FeedbackFilter{Partner: "p1", After: -1})
	if err != nil || late(rows) != "f-late:true f-in-time:false f-corrected:true f-unknown:unknown f-late-too:true " {
		t.Fatalf("p1's feedback: %s, %v", late(rows), err)
	}

	stats, err := s.CheckStats(ctx, service.StatsQuery{From: followUpBase, To: followUpBase.Add(time.Hour), By: service.StatsPartner})
	if err != nil {
		t.Fatal(err)
	}
	want := []service.StatsRow{
		{Key: "client-staff", Outcome: "restrict", Checks: 1, WithFeedback: 1, Applied: 1, Staff: 1},
		{Key: "p1", Outcome: "prohibit", Checks: 1, WithFeedback: 1, Applied: 1, Late: 1},
		{Key: "p1", Outcome: "restrict", Checks: 4, WithFeedback: 3, Applied: 3, Late: 1},
	}
	if fmt.Sprintf("%+v", stats) != fmt.Sprintf("%+v", want) {
		t.Fatalf("by partner:\n got %+v\nwant %+v", stats, want)
	}
	total, err := s.CheckStats(ctx, service.StatsQuery{From: followUpBase, To: followUpBase.Add(time.Hour)})
	if err != nil || len(total) != 2 || total[0].Late != 1 || total[1].Late != 1 || total[1].Checks != 5 {
		t.Fatalf("total: %+v, %v", total, err)
	}
}
