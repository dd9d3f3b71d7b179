package service

import (
	"bytes"
	"testing"

	"github.com/credgate/credgate/policy"
)

// TestAnswerFactsAsWrittenAgreeWithTheDecoder: on answers as the checker
// writes them, the quick read of subject and outcome gives what a JSON
// decoder gives, escapes included; any other shape is left to the decoder.
func TestAnswerFactsAsWrittenAgreeWithTheDecoder(t *testing.T) {
	for name, a := range map[string]CheckAnswer{
		"plain":                 {CheckID: "chk_1", Partner: "cg_1", Subject: SubjectView{ID: "91350100M000100Y43", Kind: policy.KindOrganization}, Action: "bank_credit", Outcome: policy.OutcomeClear},
		"a reference":           {CheckID: "chk_2", Partner: "cg_1", Subject: SubjectView{ID: "91350100M000100Y43", Kind: policy.KindOrganization}, Action: "bank_credit", Reference: `贷款 "2026-118" \\ ,"outcome":"clear"`, Outcome: policy.OutcomeRestrict},
		"a partner with quotes": {CheckID: "chk_3", Partner: `bank"a"`, Subject: SubjectView{ID: "11010519491231002X", Kind: policy.KindPerson}, Action: "bank_credit", Outcome: policy.OutcomeProhibit},
	} {
		b, ok := a.appendJSON(nil)
		if !ok {
			t.Fatalf("%s: not encoded", name)
		}
		quick, ok := answerFactsAsWritten(b)
		if !ok || quick.Subject != a.Subject.ID || quick.Outcome != string(a.Outcome) {
			t.Errorf("%s: quick read %+v (ok %v) of %s", name, quick, ok, b)
		}
		if got, err := readAnswerFacts(b); err != nil || got != quick {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	// Another member order: the quick read declines and the decoder reads it.
	other := []byte(`{"outcome":"restrict","subject":{"id":"91350100M000100Y43"},"check_id":"c"}`)
	if _, ok := answerFactsAsWritten(other); ok {
		t.Error("reordered answer read quickly")
	}
	if f, err := readAnswerFacts(other); err != nil || f.Outcome != "restrict" {
		t.Errorf("reordered answer: %+v, %v", f, err)
	}
	// An escaped subject id is not read quickly either.
	esc := bytes.Replace(mustAnswer(t, CheckAnswer{CheckID: "c", Subject: SubjectView{ID: "A"}, Outcome: policy.OutcomeClear}), []byte(`"id":"A"`), []byte(`"id":"\u0041"`), 1)
	if _, ok := answerFactsAsWritten(esc); ok {
		t.Error("escaped subject id read quickly")
	}
	if f, err := readAnswerFacts(esc); err != nil || f.Subject != "A" {
		t.Errorf("escaped subject id: %+v, %v", f, err)
	}
}

func mustAnswer(t *testing.T, a CheckAnswer) []byte {
	t.Helper()
	b, ok := a.appendJSON(nil)
	if !ok {
		t.Fatal("not encoded")
	}
	return b
}
