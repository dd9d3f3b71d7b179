package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// TestMigration0030FeedbackLate: feedback indexed before migration 0030
// takes the lateness its own body recorded when it was accepted; one whose
// body does not say (an erased body, one without late) stays unknown.
func TestMigration0030FeedbackLate(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	schema := testenv.FreshSchema(t, "credgate_test")
	conn, ccfg := schemaConn(t, schema)
	if err := migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0030"), migrateWaits{attempts: 1}); err != nil {
		t.Fatal(err)
	}
	for i, fb := range []struct{ id, late string }{{"f-late", `,"late":true`}, {"f-in-time", `,"late":false`},
		{"f-unsaid", ""}, {"f-erased", `,"late":true`}} {
		body := fmt.Sprintf(`{"feedback_id":%q,"check_id":"c%d","decision":"refused","measures":[]%s,"follows":""}`, fb.id, i, fb.late)
		if _, err := conn.Exec(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES ($1, $2, 'feedback', 'p1', now(), convert_to($3, 'UTF8'), '\x00', decode(repeat('00', 32), 'hex'))`, i, fb.id, body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE evidence SET body = '', salt = '' WHERE id = 'f-erased'`); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, ccfg.Copy(), schema, migrations(), migrateWaits{attempts: 1}); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT feedback_id || ':' || coalesce(late::text, 'unknown') FROM feedback ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "f-late:true f-in-time:false f-unsaid:unknown f-erased:unknown" {
		t.Fatalf("feedback after 0030: %s", s)
	}
}
