package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// RunFollowUpReplicas runs the follow-up tests of writers racing on one
// database, as replicas do: open returns two stores on one fresh, empty
// database (two handles, as two processes would have). Each test appends
// records that all read the same state before any was appended, from both
// stores at once; the store keeps the first in log order.
func RunFollowUpReplicas(t *testing.T, open func(t *testing.T) [2]FollowUpStore) {
	runEach(t, open, "FollowUpReplicas/", []named[[2]FollowUpStore]{
		{"OneFirstFeedback", testOneFirstFeedback},
		{"OneCorrectionOfEach", testOneCorrectionOfEach},
		{"FeedbackWithoutPlace", testFeedbackWithoutPlace},
		{"OneCommitmentChange", testOneCommitmentChange},
	})
}

// racers is how many writers race in each test, spread over the stores.
const racers = 8

// placedFeedback is a feedback body as this release writes it: with its
// place in the check's chain, "" for the first.
func placedFeedback(id, check, follows string, at time.Time) evidence.Record {
	r := feedbackRecord(id, check, "p1", "refused", 1, 0, at)
	r.Body = fmt.Appendf(r.Body[:len(r.Body)-1], `,"follows":%q}`, follows)
	return r
}

// appendRacing appends each record in a batch of its own, all at once,
// alternately through the two stores, and returns each one's index.
func appendRacing(t *testing.T, s [2]FollowUpStore, recs []evidence.Record) map[string]uint64 {
	t.Helper()
	jobs := make([]AppendJob, len(recs))
	for i := range recs {
		if err := recs[i].Seal(); err != nil {
			t.Fatal(err)
		}
		jobs[i] = AppendJob{Store: s[i%2], Batches: [][]evidence.Record{recs[i : i+1]}}
	}
	return AppendConcurrently(t, jobs)
}

// firstOf is the id of the record of recs appended first.
func firstOf(recs []evidence.Record, at map[string]uint64) string {
	first := recs[0].ID
	for _, r := range recs[1:] {
		if at[r.ID] < at[first] {
			first = r.ID
		}
	}
	return first
}

func feedbackIDs(t *testing.T, s FollowUpStore, check string) []string {
	t.Helper()
	rows, err := s.FeedbackOf(t.Context(), check)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

// testOneFirstFeedback: first feedbacks of one check appended at once are
// indexed once, the first in log order; another check's is not in the way.
func testOneFirstFeedback(t *testing.T, s [2]FollowUpStore) {
	appendAll(t, s[0], checkBody("c1", "p1", "S1", "bank_credit", "restrict", "", followUpBase, "black"),
		checkBody("c2", "p1", "S2", "bank_credit", "restrict", "", followUpBase, "black"))
	recs := make([]evidence.Record, racers)
	for i := range recs {
		recs[i] = placedFeedback(fmt.Sprintf("fb%d", i), "c1", "", followUpBase.Add(time.Hour))
	}
	at := appendRacing(t, s, recs)
	want := firstOf(recs, at)
	for i := range s {
		if got := feedbackIDs(t, s[i], "c1"); len(got) != 1 || got[0] != want {
			t.Fatalf("store %d: feedback of c1 %v, want only %s (the first of %v)", i, got, want, at)
		}
	}
	appendAll(t, s[1], placedFeedback("other", "c2", "", followUpBase.Add(time.Hour)))
	if got := feedbackIDs(t, s[0], "c2"); len(got) != 1 || got[0] != "other" {
		t.Fatalf("feedback of c2: %v", got)
	}
	// The losers are in the log, without effect: nowhere in the index.
	all, err := s[0].ListFeedback(t.Context(), service.FeedbackFilter{After: -1})
	if err != nil || len(all) != 2 {
		t.Fatalf("all feedback: %+v, %v", all, err)
	}
}

// testOneCorrectionOfEach: corrections of one feedback appended at once
// are indexed once, the first in log order; the chain goes on from it.
func testOneCorrectionOfEach(t *testing.T, s [2]FollowUpStore) {
	appendAll(t, s[0], checkBody("c1", "p1", "S1", "bank_credit", "restrict", "", followUpBase, "black"),
		placedFeedback("f0", "c1", "", followUpBase.Add(time.Hour)))
	recs := make([]evidence.Record, racers)
	for i := range recs {
		recs[i] = placedFeedback(fmt.Sprintf("fix%d", i), "c1", "f0", followUpBase.Add(2*time.Hour))
	}
	want := firstOf(recs, appendRacing(t, s, recs))
	if got := feedbackIDs(t, s[1], "c1"); len(got) != 2 || got[0] != "f0" || got[1] != want {
		t.Fatalf("feedback of c1 %v, want [f0 %s]", got, want)
	}
	// A correction of a loser, or of a feedback that is not there, or of
	// another check's, is not indexed either: the chain has no branch.
	loser := "fix0"
	if loser == want {
		loser = "fix1"
	}
	appendAll(t, s[0], checkBody("c2", "p1", "S2", "bank_credit", "restrict", "", followUpBase, "black"),
		placedFeedback("g0", "c2", "", followUpBase.Add(time.Hour)),
		placedFeedback("of-loser", "c1", loser, followUpBase.Add(3*time.Hour)),
		placedFeedback("of-nothing", "c1", "nothing", followUpBase.Add(3*time.Hour)),
		placedFeedback("of-other", "c1", "g0", followUpBase.Add(3*time.Hour)),
		placedFeedback("next", "c1", want, followUpBase.Add(3*time.Hour)))
	if got := feedbackIDs(t, s[1], "c1"); len(got) != 3 || got[2] != "next" {
		t.Fatalf("feedback of c1 after the next correction: %v, want [f0 %s next]", got, want)
	}
}

// testFeedbackWithoutPlace: bodies without follows (an earlier release's)
// are all indexed, as before.
func testFeedbackWithoutPlace(t *testing.T, s [2]FollowUpStore) {
	appendAll(t, s[0], checkBody("c1", "p1", "S1", "bank_credit", "restrict", "", followUpBase, "black"))
	recs := make([]evidence.Record, racers)
	for i := range recs {
		recs[i] = feedbackRecord(fmt.Sprintf("old%d", i), "c1", "p1", "refused", 1, 0, followUpBase.Add(time.Hour))
	}
	appendRacing(t, s, recs)
	if got := feedbackIDs(t, s[1], "c1"); len(got) != racers {
		t.Fatalf("feedback of c1: %v, want all %d", got, racers)
	}
	// A placed first feedback beside them takes its place once.
	appendRacing(t, s, []evidence.Record{placedFeedback("new1", "c1", "", followUpBase.Add(2*time.Hour)),
		placedFeedback("new2", "c1", "", followUpBase.Add(2*time.Hour))})
	if got := feedbackIDs(t, s[0], "c1"); len(got) != racers+1 {
		t.Fatalf("feedback of c1: %v, want %d", got, racers+1)
	}
}

// testOneCommitmentChange: fulfilments and breaches of one commitment
// appended at once: the first in log order closes it, whichever store
// appended it, and the state names it.
func testOneCommitmentChange(t *testing.T, s [2]FollowUpStore) {
	appendAll(t, s[0], commitmentRecord("cm1", "cm1", "recorded", "p1", followUpBase))
	recs := make([]evidence.Record, racers)
	ops := map[string]string{}
	for i := range recs {
		op := service.CommitmentFulfilled
		if i%2 != 0 {
			op = service.CommitmentBreached
		}
		id := fmt.Sprintf("change%d", i)
		ops[id] = op
		recs[i] = commitmentRecord(id, "cm1", op, "p1", followUpBase.Add(time.Hour))
	}
	want := firstOf(recs, appendRacing(t, s, recs))
	for i := range s {
		c, err := s[i].Commitment(t.Context(), "cm1")
		if err != nil {
			t.Fatal(err)
		}
		if c.StateRecord != want || c.State != ops[want] {
			t.Fatalf("store %d: cm1 %s by %q, want %s by %s", i, c.State, c.StateRecord, ops[want], want)
		}
	}
}
