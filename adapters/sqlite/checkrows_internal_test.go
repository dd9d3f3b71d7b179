package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// derivedTables are the tables the check records derive, each with its
// columns in a key order.
var derivedTables = map[string]string{
	"check_index": "check_id, idx, partner, subject, action, outcome, region, checked_at",
	"check_lists": "check_id, list",
}

// oldCheckTriggers are the row trigger of check_index and check_lists
// that migration 0013 dropped, read from the migration that created it,
// so that the comparison is with what was run, not a copy (0013 dropped
// 0011's too, whose checked_subjects 0017 dropped).
func oldCheckTriggers(t *testing.T) []string {
	t.Helper()
	var out []string
	for file, name := range map[string]string{
		"migrations/0010_follow_up.sql": "evidence_index_check",
	} {
		body, err := migrationFS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?s)CREATE TRIGGER ` + name + ` .*?\nEND;`).Find(body)
		if m == nil {
			t.Fatalf("%s: trigger %s not found", file, name)
		}
		out = append(out, string(m))
	}
	return out
}

// dumpDerived reads every derived row, each column quoted (value and
// type), in key order.
func dumpDerived(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, cols := range derivedTables {
		quoted := "quote(" + strings.ReplaceAll(cols, ", ", ") || ' | ' || quote(") + ")"
		rows, err := s.w.QueryContext(t.Context(), `SELECT `+quoted+` FROM `+table+` ORDER BY `+cols)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], r)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// insertRaw inserts recs at indexes from first on with a plain INSERT, so
// that only triggers derive rows from them.
func insertRaw(t *testing.T, s *Store, recs []evidence.Record, first int) {
	t.Helper()
	for i, r := range recs {
		if _, err := s.w.ExecContext(t.Context(), `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, first+i, r.ID, string(r.Kind), r.Partner, r.At.UTC().Truncate(time.Microsecond).UnixMicro(),
			append([]byte{}, r.Body...), []byte{}, make([]byte, 32)); err != nil {
			t.Fatalf("insert %s: %v", r.ID, err)
		}
	}
}

func diffRows(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for table := range derivedTables {
		g, w := got[table], want[table]
		if slices.Equal(g, w) {
			continue
		}
		for _, r := range w {
			if !slices.Contains(g, r) {
				t.Errorf("%s: the triggers derive %s, the store does not", table, r)
			}
		}
		for _, r := range g {
			if !slices.Contains(w, r) {
				t.Errorf("%s: the store derives %s, the triggers do not", table, r)
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s: %d rows, the triggers %d", table, len(g), len(w))
		}
	}
}

// TestDerivedRowsAsTriggers appends the same records to a store, which
// derives the rows of checks itself, and, with plain inserts, to a store
// on which the row trigger of migration 0010 is put back: the two tables
// must hold the same rows, value and type. The records are
// checks the service answered (listed and clear subjects, several
// actions, regions, re-runs as of a past time) and made-up bodies on the
// edges of what the triggers read. The service's checks are appended once
// as read back (rows from their bodies) and once with the facts the
// checker hands over with them (rows from those).
func TestDerivedRowsAsTriggers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	svc := serviceChecks(t)
	recs := append(slices.Clone(svc), edgeChecks()...)
	// Records of other kinds derive nothing here, and leave the feedback
	// and commitment triggers to theirs.
	recs = append(recs,
		evidence.Record{ID: "fb-1", Kind: evidence.KindFeedback, Partner: "p1", At: time.Unix(1, 0),
			Body: []byte(`{"feedback_id":"fb-1","check_id":"c1","decision":"refused","measures":[]}`)},
		evidence.Record{ID: "admin-1", Kind: evidence.KindAdmin, Partner: "p1", At: time.Unix(1, 0),
			Body: []byte(`{"check_id":"admin-1","subject":{"id":"S9"},"action":"bank_credit"}`)},
	)

	old := openTemp(t)
	for _, q := range oldCheckTriggers(t) {
		if _, err := old.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	insertRaw(t, old, recs, 0)

	want := dumpDerived(t, old)
	for table := range derivedTables {
		if len(want[table]) < 5 {
			t.Fatalf("%s: only %d rows from the triggers: the corpus does not exercise it", table, len(want[table]))
		}
	}
	withFacts := slices.Clone(recs)
	for i := range svc {
		withFacts[i].Check = checkerFacts(t, withFacts[i])
	}
	for name, recs := range map[string][]evidence.Record{"bodies": recs, "facts": withFacts} {
		s := openTemp(t)
		// Batches of several sizes: single records, a chunk boundary, the rest.
		for from, size := 0, 1; from < len(recs); size = size*3 + 1 {
			to := min(from+size, len(recs))
			batch := slices.Clone(recs[from:to])
			for i := range batch {
				if err := batch[i].Seal(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.AppendBatch(ctx, batch); err != nil {
				t.Fatalf("%s: append %d–%d: %v", name, from, to, err)
			}
			from = to
		}
		t.Run(name, func(t *testing.T) { diffRows(t, dumpDerived(t, s), want) })
	}
}

// checkerFacts are the facts the checker hands over with a check record
// it wrote (service.CheckAnswer.Facts), from the answer its body holds.
func checkerFacts(t *testing.T, r evidence.Record) *evidence.CheckFacts {
	t.Helper()
	var a service.CheckAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%s: %v", r.ID, err)
	}
	return a.Facts()
}

// serviceChecks are check records as the service writes them: a checker
// over a store holding entries of several lists, asked about listed and
// clear subjects, for several actions and regions, now and as of a past
// time.
func serviceChecks(t *testing.T) []evidence.Record {
	t.Helper()
	ctx := t.Context()
	st := openTemp(t)
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	lists := []string{"safety_production_blacklist", "court_dishonest_debtor", "tax_major_violation",
		"urban_management_black", "honest_exemplar_redlist", "safety_production_key_attention"}
	var subjects []string
	var entries []policy.Entry
	for i := range 9 {
		id := testenv.USCC(t, fmt.Sprintf("91450100MA%07d", i))
		subjects = append(subjects, id)
		if i >= len(lists) {
			continue // clear subjects
		}
		for k, l := range []string{lists[i], lists[(i+2)%len(lists)]} {
			s, err := policy.ParseSubjectID(id)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, policy.Entry{
				ID: fmt.Sprintf("e-%d-%d", i, k), Subject: s, List: l,
				OriginatingDepartment: "应急管理部", Reason: "发生重大生产安全责任事故 <违法> & 失信",
				LegalBasis: "《安全生产法》", DecidedAt: now.Add(-72 * time.Hour), PublishedAt: now.Add(-48 * time.Hour),
				CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-48 * time.Hour), Version: 1,
			})
		}
	}
	if err := st.InsertEntries(ctx, entries); err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	defer app.Close()
	checker := service.NewChecker(cat, st, app, st, service.WithHistory(st))
	admin := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	partner := service.Caller{ClientID: "bank-1", Role: service.RolePartner,
		Actions: []string{"bank_credit", "government_procurement"}, Region: "450100"}
	past := now.Add(-60 * time.Hour)
	n := 0
	for _, subject := range subjects {
		for _, action := range []string{"bank_credit", "government_procurement", "public_tendering", "honors", "tax_incentive"} {
			reqs := []struct {
				caller service.Caller
				req    service.CheckRequest
			}{
				{admin, service.CheckRequest{Subject: subject, Action: action, Reference: "loan-\"42\""}},
				{admin, service.CheckRequest{Subject: subject, Action: action, Context: policy.CheckContext{Region: "370100", Industry: "coal_mining"}}},
				{admin, service.CheckRequest{Subject: subject, Action: action, AsOf: &past}},
				{partner, service.CheckRequest{Subject: subject, Action: action}},
			}
			for _, r := range reqs {
				if _, err := checker.Check(ctx, r.caller, r.req); err != nil {
					if r.caller.Role == service.RolePartner {
						continue // actions the partner may not check
					}
					t.Fatalf("check %s %s: %v", subject, action, err)
				}
				n++
			}
		}
	}
	recs, err := st.RecordsOfKind(ctx, evidence.KindCheck, -1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d check records, %d checks", len(recs), n)
	}
	var restricted, asOf int
	for _, r := range recs {
		restricted += strings.Count(string(r.Body), `"status":"applied"`)
		if strings.Contains(string(r.Body), `"as_of":`) {
			asOf++
		}
	}
	if restricted == 0 || asOf == 0 {
		t.Fatalf("the service's checks applied %d measures and %d were as of a past time", restricted, asOf)
	}
	for i := range recs {
		recs[i].Index, recs[i].Hash, recs[i].Salt = 0, [evidence.HashSize]byte{}, nil
	}
	return recs
}

// edgeChecks are check records on the edges of what the triggers read:
// bodies not credgate's own, malformed or unusual JSON, members missing,
// repeated, escaped or of another type, measures that do not count, and
// a subject checked again, in and out of order.
func edgeChecks() []evidence.Record {
	base := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	bodies := []string{
		// The common shape, with region, outcome and lists.
		`{"check_id":"a","subject":{"id":"S1","kind":"organization"},"action":"bank_credit","outcome":"restricted","measures":[{"list":"black","status":"applied"},{"list":"red","status":"not_applicable"},{"list":"black","status":"applied"},{"list":"grey","status":"applied"}],"context":{"region":"450100"}}`,
		// Defaults: no outcome, no context, null region, context not an object.
		`{"check_id":"b","subject":{"id":"S2"},"action":"bank_credit"}`,
		`{"check_id":"b","subject":{"id":"S2"},"action":"bank_credit","outcome":null,"context":{"region":null}}`,
		`{"check_id":"b","subject":{"id":"S2"},"action":"bank_credit","context":["450100"]}`,
		`{"check_id":"b","subject":{"id":"S2"},"action":"bank_credit","context":"450100","outcome":""}`,
		// Re-runs as of a past time (even null) are not indexed, nor their lists.
		`{"check_id":"c","subject":{"id":"S3"},"action":"bank_credit","as_of":"2026-01-01T00:00:00Z","measures":[{"list":"black","status":"applied"}]}`,
		`{"check_id":"c","subject":{"id":"S3"},"action":"bank_credit","as_of":null,"measures":[{"list":"black","status":"applied"}]}`,
		// Missing or mistyped subject or action: no index row, lists still.
		`{"check_id":"d","action":"bank_credit","measures":[{"list":"black","status":"applied"}]}`,
		`{"check_id":"d","subject":{"id":7},"action":"bank_credit","measures":[{"list":"black","status":"applied"}]}`,
		`{"check_id":"d","subject":"S4","action":"bank_credit"}`,
		`{"check_id":"d","subject":{"id":"S4"},"action":["bank_credit"]}`,
		`{"check_id":"d","subject":{"id":"S4"}}`,
		// Measures that do not count: no list, a list not text, status not
		// applied or not text, elements not objects, measures not an array.
		`{"check_id":"e","subject":{"id":"S5"},"action":"a","measures":[{"status":"applied"},{"list":3,"status":"applied"},{"list":"x","status":"APPLIED"},{"list":"y","status":["applied"]},"black",["black"],null,{"list":"z","status":"applied","extra":{"list":"q"}}]}`,
		`{"check_id":"e","subject":{"id":"S5"},"action":"a","measures":{"m":{"list":"obj","status":"applied"}}}`,
		`{"check_id":"e","subject":{"id":"S5"},"action":"a","measures":"black"}`,
		`{"check_id":"e","subject":{"id":"S5"},"action":"a","measures":null}`,
		// Escapes: in the values read, in member names, elsewhere.
		`{"check_id":"f","subject":{"id":"S\u0036"},"action":"bank\u005fcredit","outcome":"re\"stricted","context":{"region":"45\u00301\/00"},"measures":[{"list":"bl\u0061ck","status":"appl\u0069ed"}]}`,
		`{"check_id":"f","subj\u0065ct":{"id":"S7"},"\u0061ction":"bank_credit","measures":[{"l\u0069st":"black","st\u0061tus":"applied"}]}`,
		`{"check_id":"f","subject":{"id":"S8","name":"\u003c\u0026\u003e \ud83d\ude00"},"action":"bank_credit","note":"\u0000"}`,
		// Repeated members: the first or the last, as SQLite reads them.
		`{"check_id":"g","subject":{"id":"S9"},"subject":{"id":"S10"},"action":"x","action":"y","outcome":"o1","outcome":"o2"}`,
		`{"check_id":"g","subject":{"id":"S11","id":"S12"},"action":"x","context":{"region":"1","region":"2"},"measures":[{"list":"l1","list":"l2","status":"applied","status":"x"}]}`,
		// Outcome and region of other types: SQLite converts them.
		`{"check_id":"h","subject":{"id":"S13"},"action":"x","outcome":42,"context":{"region":1.5e3}}`,
		`{"check_id":"h","subject":{"id":"S13"},"action":"x","outcome":true,"context":{"region":{"code":"450100"}}}`,
		`{"check_id":"h","subject":{"id":"S13"},"action":"x","outcome":[1,2],"context":{"region":false}}`,
		`{"check_id":"h","subject":{"id":"S13"},"action":"x","outcome":-0.0,"context":{"region":12345678901234567890}}`,
		// Not JSON, or not strictly: no index row.
		`{"check_id":"i","subject":{"id":"S14"},"action":"x"`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x",}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":'x'}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","n":01}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","n":.5}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","n":0x10}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","n":1.}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","n":NaN}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","s":"tab	in"}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","s":"\x41"}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x"} trailing`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x"}` + "\n\t ",
		`{"check_id":"i","subject":{"id":"S14"},"action":"x"/*c*/}`,
		"{\"check_id\":\"i\",\"subject\":{\"id\":\"S14\"},\"action\":\"x\"}\x00",
		"{\"check_id\":\"i\",\"subject\":{\"id\":\"S14\"},\"action\":\"x\",\"s\":\"\xff\"}",
		"{\"check_id\":\"i\",\"subject\":{\"id\":\"S14\xe4\xb8\"},\"action\":\"x\"}",
		"{\"check_id\":\"i\",\"subject\":{\"id\":\"S14\"},\"action\":\"x\",\"s\":\"\x7f\"}",
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","deep":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
		`{"check_id":"i","subject":{"id":"S14"},"action":"x","deep":` + strings.Repeat("[", 1100) + strings.Repeat("]", 1100) + `}`,
		// Not credgate's prefix: never indexed, even when valid.
		` {"check_id":"j","subject":{"id":"S15"},"action":"x"}`,
		`{"action":"x","check_id":"j","subject":{"id":"S15"}}`,
		`{"check_id" :"j","subject":{"id":"S15"},"action":"x"}`,
		`{"check_id":`,
		``,
		`{"check_id":"k","subject":{"id":"S1","kind":"organization"},"action":"bank_credit","outcome":"clear"}`,
	}
	var recs []evidence.Record
	for i, b := range bodies {
		recs = append(recs, evidence.Record{ID: fmt.Sprintf("edge-%02d", i), Kind: evidence.KindCheck,
			Partner: []string{"p1", "p2", ""}[i%3], At: base.Add(time.Duration(i%7-3) * time.Minute), Body: []byte(b)})
	}
	// The same subject and partner, later then earlier: a row each.
	for i, d := range []time.Duration{time.Hour, -time.Hour, 2 * time.Hour, time.Second} {
		recs = append(recs, evidence.Record{ID: fmt.Sprintf("again-%d", i), Kind: evidence.KindCheck, Partner: "p1",
			At: base.Add(d), Body: []byte(`{"check_id":"again","subject":{"id":"S1"},"action":"bank_credit"}`)})
	}
	return recs
}

// TestMigrationKeepsDerivedRows opens a database whose schema stops at
// migration 0012, where the triggers derived the rows of its checks: the
// rows stay through migration 0013, and checks appended afterwards are
// derived by the store, subjects checked before and after included.
func TestMigrationKeepsDerivedRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	// A database as the previous release left it, at 0012.
	w := openBefore(t, dir, "0013")
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	check := func(id, subject, partner string, at time.Time) evidence.Record {
		return evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: partner, At: at,
			Body: []byte(`{"check_id":"` + id + `","subject":{"id":"` + subject + `"},"action":"bank_credit","outcome":"restricted","measures":[{"list":"black","status":"applied"}],"context":{}}`)}
	}
	insertRaw(t, w, []evidence.Record{check("old-1", "S1", "p1", at), check("old-2", "S2", "p1", at)}, 0)
	// The old rows, derived by the triggers.
	wantOld := dumpDerived(t, w)
	if len(wantOld["check_index"]) != 2 || len(wantOld["check_lists"]) != 2 {
		t.Fatalf("before 0013 the triggers derived %v", wantOld)
	}
	w.w.Close()

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := dumpDerived(t, s); !mapsEqual(got, wantOld) {
		t.Fatalf("after 0013: %v, want %v", got, wantOld)
	}
	var triggers int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'
		AND name IN ('evidence_index_check', 'evidence_check_subject')`).Scan(&triggers); err != nil || triggers != 0 {
		t.Fatalf("%d of the dropped triggers left, %v", triggers, err)
	}
	// The records already in the log are integrated into the tree by the
	// next append, and their rows are not derived again.
	recs := []evidence.Record{check("new-1", "S1", "p1", at.Add(time.Hour)), check("new-2", "S3", "p2", at)}
	for i := range recs {
		if err := recs[i].Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	c, err := s.IndexedCheck(ctx, "new-1")
	if err != nil || c.Subject != "S1" || c.Index != 2 || c.Outcome != "restricted" {
		t.Fatalf("new check indexed: %+v, %v", c, err)
	}
	if c, err := s.IndexedCheck(ctx, "old-2"); err != nil || c.Index != 1 {
		t.Fatalf("old check kept: %+v, %v", c, err)
	}
	got := dumpDerived(t, s)
	subs, err := s.Subscribers(ctx, []string{"S1", "S2", "S3"}, at)
	want := []service.Subscriber{{Subject: "S1", Partner: "p1", Reason: service.SubscribedChecked},
		{Subject: "S2", Partner: "p1", Reason: service.SubscribedChecked}, {Subject: "S3", Partner: "p2", Reason: service.SubscribedChecked}}
	if err != nil || !slices.Equal(subs, want) {
		t.Fatalf("subscribers %+v, %v; want %+v, checked before the migration and after", subs, err, want)
	}
	if len(got["check_index"]) != 4 || len(got["check_lists"]) != 4 {
		t.Fatalf("after appending: %v", got)
	}
}

// openBefore opens the database in dir (its write connection only, no
// background work) migrated as a release before migration version left it:
// every migration whose file name sorts before version.
func openBefore(t *testing.T, dir, version string) *Store {
	t.Helper()
	before := fstest.MapFS{}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files {
		if name := strings.TrimPrefix(f, "migrations/"); name < version {
			body, _ := migrationFS.ReadFile(f)
			before[name] = &fstest.MapFile{Data: body}
		}
	}
	s, err := openRaw(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlcommon.Migrate(t.Context(), s.w, database.DialectSQLite3, before); err != nil {
		t.Fatal(err)
	}
	return s
}

// openRaw opens the database of dir on one connection, without migrating.
func openRaw(ctx context.Context, dir string) (*Store, error) {
	w, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), config{busyTimeout: 5 * time.Second}, connWrite))
	if err != nil {
		return nil, err
	}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return &Store{w: w}, nil
}

func mapsEqual(a, b map[string][]string) bool {
	for k := range derivedTables {
		if !slices.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}
