package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/credgate/credgate/internal/testenv"
)

// migrationsBefore are the embedded migrations whose file names sort
// before version ("0018": 0001 to 0017), as a release before it shipped
// them.
func migrationsBefore(version string) fs.FS {
	before := fstest.MapFS{}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files {
		if name := strings.TrimPrefix(f, "migrations/"); name < version {
			body, _ := migrationFS.ReadFile(f)
			before[name] = &fstest.MapFile{Data: body}
		}
	}
	return before
}

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

// waitForLockWaiters waits until n sessions wait for a lock on a table of
// schema.
func waitForLockWaiters(t *testing.T, conn *pgx.Conn, schema string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE NOT l.granted AND ns.nspname = $1`, schema).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for a lock in %s, want %d", waiting, schema, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockTables takes, in tx, the lock an INSERT takes (ROW EXCLUSIVE) on
// each table, in order: an appender of the release before 0018.
func lockTables(ctx context.Context, tx pgx.Tx, tables ...string) error {
	for _, table := range tables {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+table+` IN ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock %s: %w", table, err)
		}
	}
	return nil
}

// Migration 0018 changes evidence, checked_subjects, check_index and
// check_lists, which replicas of the previous release keep appending to
// during a rolling upgrade: their INSERT into evidence holds evidence while
// its statement trigger (0016) takes checked_subjects, check_index and
// check_lists, in that order (the store's own writes: check_index,
// check_lists, checked_subjects, evidence first too). Altering check_index
// first, 0018 deadlocked with such an append; it must wait for it instead,
// and the append must finish. The appends are their locks, taken in the
// appenders' order at the moments that made the deadlock: each is what
// the INSERT and its trigger take.
func TestMigration0018WaitsForOldAppends(t *testing.T) {
	t.Parallel()
	trigger := []string{"checked_subjects", "check_index", "check_lists"}
	written := []string{"check_index", "check_lists", "checked_subjects"}
	for _, tc := range []struct {
		name string
		// reader: a long read of check_index is under way first.
		reader bool
		rest   []string
	}{
		{"trigger's order", false, trigger},
		{"store's order", false, written},
		{"trigger's order behind a long read", true, trigger},
		{"store's order behind a long read", true, written},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			schema := testenv.FreshSchema(t, "credgate_test")
			watch, ccfg := schemaConn(t, schema)
			if err := migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0018"), migrateWaits{attempts: 1}); err != nil {
				t.Fatal(err)
			}
			appender, _ := schemaConn(t, schema)
			reader, _ := schemaConn(t, schema)
			var readTx pgx.Tx
			if tc.reader {
				var err error
				if readTx, err = reader.Begin(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := readTx.Exec(ctx, `SELECT count(*) FROM check_index`); err != nil {
					t.Fatal(err)
				}
			}
			appendTx, err := appender.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Neither side may wait long enough for a test to hang.
			if _, err := appendTx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
				t.Fatal(err)
			}
			appended := make(chan error, 1)
			if !tc.reader {
				// The INSERT has evidence when the migration starts.
				if err := lockTables(ctx, appendTx, "evidence"); err != nil {
					t.Fatal(err)
				}
			}
			migrated := make(chan error, 1)
			go func() {
				migrated <- migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0019"), migrateWaits{attempts: 1})
			}()
			waitForLockWaiters(t, watch, schema, 1)
			if tc.reader {
				// The append comes while the migration waits for the
				// reader; then the reader finishes.
				go func() {
					err := lockTables(ctx, appendTx, append([]string{"evidence"}, tc.rest...)...)
					if err == nil {
						err = appendTx.Commit(ctx)
					}
					appended <- err
				}()
				waitForLockWaiters(t, watch, schema, 2)
				if err := readTx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				err := lockTables(ctx, appendTx, tc.rest...)
				if err == nil {
					err = appendTx.Commit(ctx)
				}
				appended <- err
			}
			if err := <-appended; err != nil {
				t.Errorf("the old replica's append: %v", err)
			}
			if err := <-migrated; err != nil {
				t.Errorf("migrating to 0018: %v", err)
			}
			var v int64
			if err := watch.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil || v != 18 {
				t.Errorf("schema version %d, %v; want 18", v, err)
			}
		})
	}
}

// A migration that cannot have its tables' locks (a long transaction holds
// one) gives up after the lock timeout rather than hold every session of
// the table behind its request, is rolled back, tried again, and reported
// plainly once the attempts are spent; with the table free again it
// succeeds, also when it is freed between two attempts.
func TestMigrateBoundsLockWaits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	schema := testenv.FreshSchema(t, "credgate_test")
	watch, ccfg := schemaConn(t, schema)
	if err := migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0018"), migrateWaits{attempts: 1}); err != nil {
		t.Fatal(err)
	}
	holder, _ := schemaConn(t, schema)
	hold := func() pgx.Tx {
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT count(*) FROM check_index`); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	version := func() int64 {
		var v int64
		if err := watch.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	tx := hold()
	start := time.Now()
	waits := migrateWaits{lockTimeout: 200 * time.Millisecond, attempts: 3, pause: 50 * time.Millisecond}
	err := migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0019"), waits)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != lockNotAvailable {
		t.Fatalf("migrating while check_index is read: %v, want lock_timeout (55P03)", err)
	}
	for _, want := range []string{"migration 18 waited more than 200ms (lock_timeout) for a table's lock 3 times",
		"rolled back whole", "run credgate migrate again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if took := time.Since(start); took < 3*200*time.Millisecond || took > 20*time.Second {
		t.Errorf("three attempts took %s", took)
	}
	if v := version(); v != 17 {
		t.Errorf("schema version %d after the failed attempts, want 17", v)
	}
	// The reader is done after the first attempt: a later one succeeds.
	released := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- tx.Commit(context.Background())
	}()
	waits = migrateWaits{lockTimeout: 200 * time.Millisecond, attempts: 5, pause: 200 * time.Millisecond}
	err = migrate(ctx, ccfg.Copy(), schema, migrationsBefore("0019"), waits)
	if rerr := <-released; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("migrating once the reader is done: %v", err)
	}
	if v := version(); v != 18 {
		t.Errorf("schema version %d, want 18", v)
	}
	// The lock timeout is the migration's own: the store's sessions keep
	// the server's.
	s, err := Open(ctx, testenv.PostgresURL(), WithSchema(schema), WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var lt string
	if err := s.pool.QueryRow(ctx, `SHOW lock_timeout`).Scan(&lt); err != nil || lt != "0" {
		t.Errorf("the store's lock_timeout %q, %v; want the server's 0", lt, err)
	}
	if v := version(); v != newestEmbedded(t) {
		t.Errorf("schema version %d after Open, want %d", v, newestEmbedded(t))
	}
}
