package sqlcommon

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// benchChecks is a batch of 64 check records as the checker writes them:
// three in four clear, the others restricted by two lists; with facts,
// carrying what the checker knows of them.
func benchChecks(b *testing.B, facts bool) []evidence.Record {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	recs := make([]evidence.Record, 64)
	for i := range recs {
		a := service.CheckAnswer{
			CheckID: fmt.Sprintf("chk-%032d", i), Partner: "bank-1",
			Subject: service.SubjectView{ID: fmt.Sprintf("91450100MA%08dX", i), Kind: policy.KindOrganization},
			Action:  "bank_credit", Outcome: policy.OutcomeClear, Measures: []service.MeasureView{}, Entries: []service.EntryView{},
			CatalogRevision: "r1", DataAsOf: at, CheckedAt: at, Context: service.ContextView{Region: "450100"},
		}
		if i%4 == 3 {
			a.Outcome = policy.OutcomeRestrict
			a.Measures = []service.MeasureView{
				{ID: "m1", List: "court_dishonest_debtor", Status: policy.MeasureApplied, Text: "限制融资"},
				{ID: "m2", List: "tax_major_violation", Status: policy.MeasureApplied},
				{ID: "m3", List: "safety_production_blacklist", Status: policy.MeasureNotApplicable, Reason: "out of scope"},
			}
			a.Entries = []service.EntryView{{ID: "e1", List: "court_dishonest_debtor", Reason: "失信被执行人"}}
		}
		body, err := json.Marshal(a)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = evidence.Record{ID: a.CheckID, Kind: evidence.KindCheck, Partner: "bank-1", At: at, Body: body}
		if facts {
			recs[i].Check = a.Facts()
		}
	}
	return recs
}

// BenchmarkReadPGCheckRows reads a batch into reused columns, as the
// PostgreSQL store does.
func BenchmarkReadPGCheckRows(b *testing.B) {
	b.Run("body", func(b *testing.B) { benchReadPG(b, benchChecks(b, false)) })
	b.Run("facts", func(b *testing.B) { benchReadPG(b, benchChecks(b, true)) })
}

func benchReadPG(b *testing.B, recs []evidence.Record) {
	var rows PGCheckRows
	b.ReportAllocs()
	for b.Loop() {
		if !rows.Read(recs) {
			b.Fatal("left to the trigger")
		}
		rows.Reset()
	}
}

// BenchmarkSQLiteCheckRows derives a batch's rows and their insert
// arguments, as SQLite's AppendLeaves does.
func BenchmarkSQLiteCheckRows(b *testing.B) {
	b.Run("body", func(b *testing.B) { benchSQLite(b, benchChecks(b, false)) })
	b.Run("facts", func(b *testing.B) { benchSQLite(b, benchChecks(b, true)) })
}

func benchSQLite(b *testing.B, recs []evidence.Record) {
	b.ReportAllocs()
	for b.Loop() {
		var c checkRows
		for i := range recs {
			c.add(&recs[i], int64(i))
		}
		if len(c.indexArgs()) == 0 || len(c.listsArgs()) == 0 || len(c.slow) > 0 {
			b.Fatal("no rows")
		}
	}
}
