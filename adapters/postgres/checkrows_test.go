package postgres_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// TestDerivedRowsAsTrigger holds the rows the store writes for checks
// (migration 0016) to those the statement trigger of 0013 derives from the
// same records. The bodies the store reads itself are appended with the
// trigger switched off, so that their rows can only be the store's; the
// others, with it on, must be left to it. A second schema gets the same
// records by a plain INSERT, derived by the trigger alone. The service's
// answers are appended once as read back (rows from their bodies) and once
// as the checker hands them over, with their facts (rows from those).
func TestDerivedRowsAsTrigger(t *testing.T) {
	t.Parallel()
	for name, facts := range map[string]bool{"bodies": false, "facts": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			derivedRowsAsTrigger(t, facts)
		})
	}
}

func derivedRowsAsTrigger(t *testing.T, facts bool) {
	url, admin := testenv.Postgres(t)
	goSchema, refSchema := testenv.FreshSchema(t, "credgate_test"), testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, goSchema)
	openIn(t, url, refSchema)

	at := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	past := at.Add(-time.Hour)
	answer := service.CheckAnswer{
		CheckID: "c-full", Partner: "bank-1", Subject: service.SubjectView{ID: "91450100MA0000001X", Kind: policy.KindOrganization},
		Action: "bank_credit", Reference: `loan "42" <a&b>`, Outcome: policy.OutcomeRestrict,
		Measures: []service.MeasureView{
			{ID: "m1", List: "court_dishonest_debtor", Status: policy.MeasureApplied, Text: "限制 <融资> & 信贷", Until: &at},
			{ID: "m2", List: "tax_major_violation", Status: policy.MeasureNotApplicable, Reason: "out of scope"},
			{ID: "m3", List: "safety_production_blacklist", Status: policy.MeasureApplied},
			{ID: "m4", List: "court_dishonest_debtor", Status: policy.MeasureApplied},
		},
		Entries:         []service.EntryView{{ID: "e1", List: "court_dishonest_debtor", Reason: "失信\n被执行人"}},
		CatalogRevision: "r1", DataAsOf: at, CheckedAt: at,
		Context: service.ContextView{Region: "450100", Industry: "coal_mining"},
	}
	clear := answer
	clear.CheckID, clear.Outcome, clear.Measures, clear.Entries, clear.Context = "c-clear", policy.OutcomeClear,
		[]service.MeasureView{}, []service.EntryView{}, service.ContextView{}
	rerun := answer
	rerun.CheckID, rerun.AsOf = "c-rerun", &past
	wide := clear
	wide.CheckID, wide.Subject.ID = "c-wide", "主体-非ASCII"
	long := clear
	long.CheckID, long.Subject.ID = "c-long", strings.Repeat("L", 70)
	again := clear // the same subject later in the batch: a row of its own
	again.CheckID = "c-again"
	var read []evidence.Record
	for i, a := range []service.CheckAnswer{answer, clear, rerun, wide, long, again} {
		body, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, a.CheckID, evidence.KindCheck, at.Add(time.Duration(i)*time.Second), string(body))
		if facts {
			r.Check = a.Facts()
		}
		read = append(read, r)
	}
	read = append(read,
		// No subject id: not indexed, so no lists either (SQLite's reading keeps them).
		record(t, "c-nosubject", evidence.KindCheck, at, `{"check_id":"c-nosubject","subject":{"kind":"person"},"action":"a","measures":[{"status":"applied","list":"l1"}]}`),
		// Not credgate's body: nothing derived.
		record(t, "c-foreign", evidence.KindCheck, at, `{"x":1,"subject":{"id":"S9"}}`),
		record(t, "f-1", evidence.KindFeedback, at, `{"feedback_id":"f-1","check_id":"c-full","decision":"approved","measures":[]}`),
	)
	left := []evidence.Record{
		record(t, "c-escaped", evidence.KindCheck, at, `{"check_id":"c-escaped","subject":{"id":"a\\b"},"action":"a","measures":[]}`),
		record(t, "c-number", evidence.KindCheck, at, `{"check_id":"c-number","subject":{"id":"S1"},"action":"a","outcome":5}`),
		record(t, "c-twice", evidence.KindCheck, at, `{"check_id":"c-twice","subject":{"id":"S2"},"action":"a","action":"b"}`),
		record(t, "c-object", evidence.KindCheck, at, `{"check_id":"c-object","subject":{"id":"S3"},"action":"a","measures":{"status":"applied","list":"l2"}}`),
	}
	if _, ok := sqlcommon.ReadPGCheckRows(read); !ok {
		t.Fatal("the store leaves credgate's own bodies to the trigger")
	}
	for _, r := range left {
		if _, ok := sqlcommon.ReadPGCheckRows([]evidence.Record{r}); ok {
			t.Fatalf("%s: read in Go, want it left to the trigger", r.ID)
		}
	}
	nul := record(t, "c-nul", evidence.KindCheck, at, `{"check_id":"c-nul","subject":{"id":"S4"},"action":"a","reference":"\u0000"}`)
	if _, ok := sqlcommon.ReadPGCheckRows([]evidence.Record{nul}); ok {
		t.Fatal(`a body with \u0000, which jsonb refuses, was read in Go`)
	}

	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	goEvidence := pgx.Identifier{goSchema, "evidence"}.Sanitize()
	exec(`ALTER TABLE ` + goEvidence + ` DISABLE TRIGGER evidence_checks_derived`)
	if _, err := s.AppendBatch(t.Context(), read); err != nil {
		t.Fatal(err)
	}
	exec(`ALTER TABLE ` + goEvidence + ` ENABLE TRIGGER evidence_checks_derived`)
	// One left with one read: the whole batch goes to the trigger.
	if _, err := s.AppendBatch(t.Context(), []evidence.Record{left[0], record(t, "c-beside", evidence.KindCheck, at,
		`{"check_id":"c-beside","subject":{"id":"S5"},"action":"a","measures":[]}`)}); err != nil {
		t.Fatal(err)
	}
	for _, r := range left[1:] {
		if _, err := s.AppendBatch(t.Context(), []evidence.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO ` + pgx.Identifier{refSchema, "evidence"}.Sanitize() + ` SELECT * FROM ` + goEvidence + ` ORDER BY idx`)

	for _, table := range []string{"check_index", "check_lists"} {
		var rows [2]string
		for i, schema := range []string{goSchema, refSchema} {
			q := `SELECT coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '') FROM ` + pgx.Identifier{schema, table}.Sanitize() + ` t`
			if err := admin.QueryRow(t.Context(), q).Scan(&rows[i]); err != nil {
				t.Fatal(err)
			}
		}
		if rows[0] != rows[1] {
			t.Errorf("%s written by the store:\n%s\nderived by the trigger:\n%s", table, rows[0], rows[1])
		}
		if rows[0] == "" {
			t.Errorf("%s: no rows", table)
		}
	}
}

func record(t *testing.T, id string, kind evidence.Kind, at time.Time, body string) evidence.Record {
	t.Helper()
	r := evidence.Record{ID: id, Kind: kind, Partner: "bank-1", At: at, Body: []byte(body)}
	if err := r.Seal(); err != nil {
		t.Fatal(fmt.Errorf("seal %s: %w", id, err))
	}
	return r
}
