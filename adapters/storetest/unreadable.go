package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// testBodiesWithNUL: a record body holding \u0000 in a free-text field
// (a check's reference, a feedback's document, a commitment's note) is
// appended like any other, and what the stores derive from it is what
// they derive from the same body without it. PostgreSQL's jsonb refuses
// \u0000: its triggers raised on such a body (SQLSTATE 22P05), which
// failed the whole batch, every other request's record in the group commit
// with it, and a spool holding it forever. A body no store can read
// (a lone surrogate jsonb refuses) fails nothing either.
func testBodiesWithNUL(t *testing.T, s FollowUpStore) {
	ctx := t.Context()
	withText := func(r evidence.Record, field, text string) evidence.Record {
		r.Body = append(bytes.TrimSuffix(r.Body, []byte("}")), []byte(`,"`+field+`":"`+text+`"}`)...)
		return r
	}
	unreadable := checkBody("c-bad", "p1", "S9", "bank_credit", "clear", "", followUpBase)
	unreadable = withText(unreadable, "reference", `\ud800`)
	appendAll(t, s,
		withText(checkBody("c-nul", "p1", "S1", "bank_credit", "restrict", "440300", followUpBase, "black"), "reference", `采购\u0000项目`),
		checkBody("c-ok", "p2", "S2", "bank_credit", "clear", "", followUpBase),
		unreadable,
	)
	for _, id := range []string{"c-nul", "c-ok"} {
		if _, err := s.IndexedCheck(ctx, id); err != nil {
			t.Fatalf("%s not indexed: %v", id, err)
		}
	}
	c, _ := s.IndexedCheck(ctx, "c-nul")
	if c.Subject != "S1" || c.Outcome != "restrict" || c.Region != "440300" || c.Partner != "p1" {
		t.Fatalf("c-nul indexed as %+v", c)
	}

	appendAll(t, s,
		withText(feedbackRecord("f-nul", "c-nul", "p1", "refused", 1, 0, followUpBase.Add(time.Hour)), "document", `资格\u0000审查`),
		commitmentRecord("cm1", "cm1", "recorded", "p1", followUpBase),
		withText(commitmentRecord("r1", "cm1", "fulfilled", "p1", followUpBase.Add(time.Hour)), "note", `x\u0000`),
		checkBody("c-after", "p2", "S3", "bank_credit", "clear", "", followUpBase),
	)
	fb, err := s.FeedbackOf(ctx, "c-nul")
	if err != nil || len(fb) != 1 || fb[0].ID != "f-nul" || fb[0].Applied != 1 {
		t.Fatalf("feedback with NUL: %+v, %v", fb, err)
	}
	cm, err := s.Commitment(ctx, "cm1")
	if err != nil || cm.State != "fulfilled" || cm.StateRecord != "r1" {
		t.Fatalf("commitment fulfilled with a NUL note: %+v, %v", cm, err)
	}
	if _, err := s.IndexedCheck(ctx, "c-after"); err != nil {
		t.Fatalf("a check beside them not indexed: %v", err)
	}
}
