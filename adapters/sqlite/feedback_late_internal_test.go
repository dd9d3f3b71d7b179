package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
)

// migrationsBefore are the embedded migrations whose names sort before
// version, as a release before it shipped them.
func migrationsBefore(t *testing.T, version string) fs.FS {
	t.Helper()
	before := fstest.MapFS{}
	files, err := fs.Glob(Migrations(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f < version {
			body, _ := fs.ReadFile(Migrations(), f)
			before[f] = &fstest.MapFile{Data: body}
		}
	}
	return before
}

// TestMigration0026FeedbackLate: feedback indexed before migration 0026
// takes the lateness its own body recorded when it was accepted; one whose
// body does not say (an erased body, one without late) stays unknown.
func TestMigration0026FeedbackLate(t *testing.T) {
	ctx := t.Context()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "credgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := sqlcommon.Migrate(ctx, db, database.DialectSQLite3, migrationsBefore(t, "0026")); err != nil {
		t.Fatal(err)
	}
	for i, fb := range []struct{ id, late string }{{"f-late", `,"late":true`}, {"f-in-time", `,"late":false`},
		{"f-unsaid", ""}, {"f-erased", `,"late":true`}} {
		body := fmt.Sprintf(`{"feedback_id":%q,"check_id":"c%d","decision":"refused","measures":[]%s,"follows":""}`, fb.id, i, fb.late)
		if _, err := db.ExecContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES (?, ?, 'feedback', 'p1', 1, CAST(? AS BLOB), X'00', zeroblob(32))`, i, fb.id, body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE evidence SET body = X'', salt = X'' WHERE id = 'f-erased'`); err != nil {
		t.Fatal(err)
	}
	if err := sqlcommon.Migrate(ctx, db, database.DialectSQLite3, Migrations()); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT feedback_id, coalesce(CAST(late AS TEXT), 'unknown') FROM feedback ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, late string
		if err := rows.Scan(&id, &late); err != nil {
			t.Fatal(err)
		}
		got = append(got, id+":"+late)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "f-late:1 f-in-time:0 f-unsaid:unknown f-erased:unknown" {
		t.Fatalf("feedback after 0026: %s", s)
	}
}
