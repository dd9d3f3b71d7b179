package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/testenv"
)

// schemaConn connects to the test database with search_path schema, and
// returns the configuration it used.
func schemaConn(t *testing.T, schema string) (*pgx.Conn, *pgx.ConnConfig) {
	t.Helper()
	ccfg, err := pgx.ParseConfig(testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	ccfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	conn, err := pgx.ConnectConfig(t.Context(), ccfg)
	if err != nil {
		testenv.Need(t, "PostgreSQL unreachable: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, ccfg
}

// schemaState is what a refused Open must leave as it was: the schema's
// relations, its functions and goose's rows.
func schemaState(t *testing.T, conn *pgx.Conn, schema string) string {
	t.Helper()
	var state string
	err := conn.QueryRow(t.Context(), `SELECT
		(SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname) FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1) || ' | ' ||
		(SELECT string_agg(p.proname || ':' || md5(p.prosrc), ',' ORDER BY p.proname) FROM pg_proc p
			JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1) || ' | ' ||
		(SELECT string_agg(version_id || ':' || is_applied, ',' ORDER BY id) FROM goose_db_version)`, schema).Scan(&state)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// A schema a newer credgate migrated (its version above every embedded
// migration) is refused by Open, naming both versions, before anything is
// written; SchemaVersions reads it without refusing.
func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := testenv.FreshSchema(t, "credgate_test")
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(schema), WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, _ := schemaConn(t, schema)
	known := newestEmbedded(t)
	// A newer release's migration, recorded as goose records one.
	if _, err := conn.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, known+3); err != nil {
		t.Fatal(err)
	}
	before := schemaState(t, conn, schema)

	_, err = Open(ctx, testenv.PostgresURL(), WithSchema(schema), WithMaxConns(2))
	var tooNew *SchemaTooNewError
	if !errors.Is(err, ErrSchemaTooNew) || !errors.As(err, &tooNew) || tooNew.Version != known+3 || tooNew.Known != known {
		t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew naming %d and %d", err, known+3, known)
	}
	want := fmt.Sprintf("the database schema is version %d, newer than this credgate's %d: run the credgate that migrated it, "+
		"or restore the backup taken before the upgrade", known+3, known)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q, want it to say %q", err, want)
	}
	if after := schemaState(t, conn, schema); after != before {
		t.Errorf("the refused Open changed the schema:\nbefore %s\nafter  %s", before, after)
	}
	v, err := SchemaVersions(ctx, testenv.PostgresURL(), WithSchema(schema))
	if err != nil || v.Applied != known+3 || v.Known != known || !errors.Is(v.Check(), ErrSchemaTooNew) {
		t.Fatalf("SchemaVersions: %+v, %v", v, err)
	}
	// An empty schema is version 0, and reading it creates nothing.
	empty := testenv.FreshSchema(t, "credgate_test")
	if v, err := SchemaVersions(ctx, testenv.PostgresURL(), WithSchema(empty)); err != nil || v.Applied != 0 || v.Known != known {
		t.Fatalf("SchemaVersions of a schema without tables: %+v, %v", v, err)
	}
}

// newestEmbedded is the highest NNNN of the embedded migrations.
func newestEmbedded(t *testing.T) int64 {
	t.Helper()
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	var n int64
	for _, f := range files {
		var v int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(f, "migrations/")[:4], "%d", &v); err != nil {
			t.Fatal(err)
		}
		n = max(n, v)
	}
	return n
}
