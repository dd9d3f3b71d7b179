package sqlcommon

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The check bodies credgate writes (encoding/json of a service.CheckAnswer,
// whose free text it escapes) are read in Go, none left to SQLite's JSON
// functions: that is what makes the commit cheaper than the triggers. That
// the rows are the triggers' is adapters/sqlite's TestDerivedRowsAsTriggers.
func TestCheckRowsReadCredgateBodiesInGo(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	past := at.Add(-time.Hour)
	answer := service.CheckAnswer{
		CheckID: "chk-1", Partner: "bank-1", Subject: service.SubjectView{ID: "91450100MA0000001X", Kind: policy.KindOrganization},
		Action: "bank_credit", Reference: `loan "42" <a&b>`, Outcome: policy.OutcomeRestrict,
		Measures: []service.MeasureView{
			{ID: "m1", List: "court_dishonest_debtor", Status: policy.MeasureApplied, Text: "限制 <融资> & 信贷", Until: &at},
			{ID: "m2", List: "tax_major_violation", Status: policy.MeasureNotApplicable, Reason: "out of scope"},
			{ID: "m3", List: "safety_production_blacklist", Status: policy.MeasureApplied},
		},
		Entries:         []service.EntryView{{ID: "e1", List: "court_dishonest_debtor", Reason: "失信\n被执行人"}},
		CatalogRevision: "r1", DataAsOf: at, CheckedAt: at,
		Context: service.ContextView{Region: "450100", Industry: "coal_mining"},
	}
	clear := answer
	clear.Outcome, clear.Measures, clear.Entries, clear.Context = policy.OutcomeClear, []service.MeasureView{}, []service.EntryView{}, service.ContextView{}
	rerun := answer
	rerun.AsOf = &past

	var c checkRows
	for i, a := range []service.CheckAnswer{answer, clear, rerun} {
		body, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `\u003c`) && i == 0 {
			t.Fatalf("the body escapes nothing: %s", body)
		}
		c.add(&evidence.Record{ID: string(rune('a' + i)), Kind: evidence.KindCheck, Partner: "bank-1", At: at, Body: body}, int64(i))
	}
	if len(c.slow) != 0 {
		t.Fatalf("%d statements left to SQLite", len(c.slow))
	}
	want := []any{"a", int64(0), "bank-1", "91450100MA0000001X", "bank_credit", "restrict", "450100", at,
		"b", int64(1), "bank-1", "91450100MA0000001X", "bank_credit", "clear", "", at}
	if index := c.indexArgs(); !slices.Equal(index, want) {
		t.Errorf("index rows %v, want %v", index, want)
	}
	if want, lists := []any{"a", "court_dishonest_debtor", "a", "safety_production_blacklist"}, c.listsArgs(); !slices.Equal(lists, want) {
		t.Errorf("list rows %v, want %v", lists, want)
	}
}

// FuzzJSONValue holds the strict reading to encoding/json's on what is
// valid JSON (nesting within maxDepth).
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x\u00e9\n"]}`, `01`, `1.`, `"\x"`, `[1,]`, `{"a" 1}`, "\"\x01\"", `-`, `1e`, ` {} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, end, ok := jsonValue(b, jsonSpace(b, 0), 0)
		ok = ok && jsonSpace(b, end) == len(b)
		if strings.Count(string(b), "[")+strings.Count(string(b), "{") >= maxDepth {
			return // encoding/json nests deeper
		}
		if want := json.Valid(b); ok != want {
			t.Fatalf("%q: valid %v, encoding/json %v", b, ok, want)
		}
	})
}

// A record's lists go into the batch's columns as its measures are read:
// a body found unreadable after some of them must take them back, in both
// readings, and a store's reused columns must hold only the last batch.
func TestCheckRowsTakeBackListsOfUnreadBodies(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	rec := func(id, body string) evidence.Record {
		return evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "p", At: at, Body: []byte(body)}
	}
	good := rec("a", `{"check_id":"a","subject":{"id":"S1"},"action":"x","measures":[{"status":"applied","list":"l1"},{"status":"applied","list":"l1"}]}`)
	late := rec("b", `{"check_id":"b","subject":{"id":"S2"},"action":"x","measures":[{"status":"applied","list":"l2"},{"status":"applied","list":"l\"3"}]}`)
	orphan := rec("c", `{"check_id":"c","subject":{"kind":"person"},"action":"x","measures":[{"status":"applied","list":"l4"}]}`)

	var c checkRows
	for i, r := range []evidence.Record{good, late, orphan} {
		c.add(&r, int64(i))
	}
	if len(c.slow) != 2 {
		t.Fatalf("%d statements left to SQLite, want b's two", len(c.slow))
	}
	if want, got := []any{"a", "l1", "a", "l1", "c", "l4"}, c.listsArgs(); !slices.Equal(got, want) {
		t.Errorf("SQLite's list rows %v, want %v", got, want)
	}
	if want, got := []any{"a", int64(0), "p", "S1", "x", "", "", at}, c.indexArgs(); !slices.Equal(got, want) {
		t.Errorf("SQLite's index rows %v, want %v", got, want)
	}

	var rows PGCheckRows
	if rows.Read([]evidence.Record{good, orphan, late}) {
		t.Fatal("PostgreSQL's reading vouched for b's escaped list")
	}
	if !reflect.DeepEqual(rows, PGCheckRows{
		IndexIDs: []string{}, IndexOffsets: []int64{}, IndexPartners: []string{}, Subjects: []string{}, Actions: []string{},
		Outcomes: []string{}, Regions: []string{}, IndexAts: []time.Time{}, ListIDs: []string{}, Lists: []string{},
	}) {
		t.Errorf("rows of a batch left to the trigger: %+v", rows)
	}
	if !rows.Read([]evidence.Record{orphan, good}) {
		t.Fatal("PostgreSQL's reading left credgate-shaped bodies to the trigger")
	}
	want := PGCheckRows{IndexIDs: []string{"a"}, IndexOffsets: []int64{1}, IndexPartners: []string{"p"}, Subjects: []string{"S1"},
		Actions: []string{"x"}, Outcomes: []string{""}, Regions: []string{""}, IndexAts: []time.Time{at},
		ListIDs: []string{"a"}, Lists: []string{"l1"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("PostgreSQL's rows %+v, want %+v", rows, want)
	}
	if fresh, ok := ReadPGCheckRows([]evidence.Record{orphan, good}); !ok || !reflect.DeepEqual(fresh, want) {
		t.Errorf("ReadPGCheckRows: %+v %v, want %+v", fresh, ok, want)
	}
}
