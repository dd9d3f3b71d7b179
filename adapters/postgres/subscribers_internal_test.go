package postgres

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

// TestMigrationKeepsSubscribers migrates a schema as the release before
// migration 0019 left it, holding checks whose rows its statement trigger
// derived (checked_subjects among them): afterwards Subscribers, reading
// check_index, finds the partners checked_subjects held, but for a re-run
// as of a past time; no function left writes checked_subjects, the
// previous release can still write the table (a rolling upgrade), and a
// plain insert into the log (the trigger's path) still indexes its check.
func TestMigrationKeepsSubscribers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := testenv.FreshSchema(t, "credgate_test")
	ccfg, err := pgx.ParseConfig(testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	ccfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	conn, err := pgx.ConnectConfig(ctx, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files {
		if name := strings.TrimPrefix(f, "migrations/"); name < "0019" {
			body, _ := migrationFS.ReadFile(f)
			before[name] = &fstest.MapFile{Data: body}
		}
	}
	db := stdlib.OpenDB(*ccfg.Copy())
	defer db.Close()
	if err := sqlcommon.Migrate(ctx, db, database.DialectPostgres, before); err != nil {
		t.Fatal(err)
	}
	insert := func(id, body string, at time.Time, idx int) {
		t.Helper()
		if _, err := conn.Exec(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES ($1, $2, 'check', $3, $4, $5, '', $6)`, idx, id, "p-"+id, at, []byte(body), make([]byte, 32)); err != nil {
			t.Fatalf("insert %s: %v", id, err)
		}
	}
	recs, _, since := storetest.MigrationChecks(t)
	for i, r := range recs {
		if _, err := conn.Exec(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, i, r.ID, string(r.Kind), r.Partner, r.At, r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatalf("insert %s: %v", r.ID, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT subject, partner FROM checked_subjects WHERE checked_at >= $1 ORDER BY subject, partner`, since)
	if err != nil {
		t.Fatal(err)
	}
	old, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var v [2]string
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(schema), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigratedSubscribers(t, old, s)
	var writers []string
	rows, err = conn.Query(ctx, `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.prosrc LIKE '%checked_subjects%' ORDER BY 1`, schema)
	if err == nil {
		writers, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(writers) != 0 {
		t.Fatalf("functions still naming checked_subjects after 0019: %v, %v", writers, err)
	}
	// A replica of the previous release, still running during a rolling
	// upgrade, upserts and prunes checked_subjects as it did: the table
	// stays until a later release.
	if _, err := conn.Exec(ctx, `INSERT INTO checked_subjects (subject, partner, checked_at) VALUES ('S9', 'p-old', now())
		ON CONFLICT (subject, partner) DO UPDATE SET checked_at = greatest(checked_subjects.checked_at, excluded.checked_at)`); err != nil {
		t.Fatalf("the previous release's upsert after 0019: %v", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE checked_subjects SET checked_floor = checked_at WHERE checked_floor < now() - interval '1 day'`); err != nil {
		t.Fatalf("the previous release's pruning after 0019: %v", err)
	}
	at := since.Add(time.Hour)
	insert("late", `{"check_id":"late","subject":{"id":"S3"},"action":"a"}`, at, len(recs))
	subs, err := s.Subscribers(ctx, []string{"S3"}, since)
	if err != nil || len(subs) != 1 || subs[0].Partner != "p-late" {
		t.Fatalf("a check inserted into the log after 0019: subscribers %+v, %v", subs, err)
	}
}
