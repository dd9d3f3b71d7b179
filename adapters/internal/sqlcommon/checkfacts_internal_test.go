package sqlcommon

import (
	"reflect"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// FuzzCheckFacts holds the facts the checker attaches to a check record
// (service.CheckAnswer.Facts) to its body, the record's truth: for any
// answer, the rows derived from the facts are those read from the body it
// encodes, in SQLite's reading and PostgreSQL's, and facts the body does
// not hold verbatim are not used.
func FuzzCheckFacts(f *testing.F) {
	f.Add("91450100MA0000001X", "bank_credit", "restrict", "450100", "court_dishonest_debtor", "applied", "tax_major_violation", "not_applicable", "限制 <融资>", false)
	f.Add("S1", "a", "clear", "", "", "applied", "", "applied", "", false)
	f.Add("主体-非ASCII", "bank_credit", "restrict", "450100", "l1", "applied", "l1", "applied", "x", false)
	f.Add("a\"b", "a<b", "o&", "r\u2028", "l\\1", "applied", "l\x01", "applied", "\x00", false)
	f.Add("\xff", "a", "clear", "\xe2\x80", "l", "applied", "m", "applied", "\xc3", false)
	f.Add("S2", "a", "restrict", "1", "l", "applied", "m", "applied", "", true)
	f.Fuzz(func(t *testing.T, subject, action, outcome, region, list1, status1, list2, status2, text string, rerun bool) {
		at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		ans := service.CheckAnswer{
			CheckID: "chk-1", Partner: "bank-1", Subject: service.SubjectView{ID: subject, Kind: policy.KindOrganization},
			Action: action, Reference: text, Outcome: policy.Outcome(outcome),
			Measures: []service.MeasureView{
				{ID: "m1", List: list1, Status: policy.MeasureStatus(status1), Text: text},
				{ID: "m2", List: list2, Status: policy.MeasureStatus(status2)},
			},
			Entries: []service.EntryView{}, CatalogRevision: "r1", DataAsOf: at, CheckedAt: at,
			Context: service.ContextView{Region: region},
		}
		if rerun {
			ans.AsOf = &at
		}
		body, err := ans.JSON()
		if err != nil {
			t.Skip(err)
		}
		rec := evidence.Record{ID: ans.CheckID, Kind: evidence.KindCheck, Partner: ans.Partner, At: at, Body: body, Check: ans.Facts()}
		if rec.Check == nil {
			if !rerun {
				t.Fatal("no facts for a check")
			}
			return
		}
		read := rec
		read.Check = nil

		var fromFacts, fromBody checkRows
		fromFacts.add(&rec, 7)
		fromBody.add(&read, 7)
		if !factsPlain(rec.Check) {
			if !reflect.DeepEqual(fromFacts, fromBody) {
				t.Fatalf("facts not plain, yet the rows differ from the body's:\n%+v\n%+v", fromFacts, fromBody)
			}
			return
		}
		if len(fromBody.slow) > 0 {
			t.Fatalf("plain facts %+v, but the body is left to SQLite: %s", *rec.Check, body)
		}
		if !reflect.DeepEqual(fromFacts.cols, fromBody.cols) {
			t.Fatalf("SQLite's rows from facts %+v, from the body %+v (%s)", fromFacts.cols, fromBody.cols, body)
		}
		var pgFacts, pgBody PGCheckRows
		okFacts, okBody := pgFacts.Read([]evidence.Record{rec}), pgBody.Read([]evidence.Record{read})
		if okFacts != okBody || !reflect.DeepEqual(pgFacts, pgBody) {
			t.Fatalf("PostgreSQL's rows from facts %+v (%v), from the body %+v (%v)", pgFacts, okFacts, pgBody, okBody)
		}
	})
}
