package postgres_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func openIn(tb testing.TB, url, schema string, opts ...postgres.Option) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), url, append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// replicas opens n stores on one fresh schema, as n replicas of one
// database would, and returns them with the schema.
func replicas(t *testing.T, n int) (schema string, stores []*postgres.Store) {
	t.Helper()
	url, _ := testenv.Postgres(t)
	schema = testenv.FreshSchema(t, "credgate_test")
	for range n {
		stores = append(stores, openIn(t, url, schema, postgres.WithMaxConns(4)))
	}
	return schema, stores
}

// openStore opens a store in a schema of its own. The pool is kept small
// so that parallel tests stay well under max_connections.
func openStore(tb testing.TB) service.Store {
	tb.Helper()
	schema := testenv.FreshSchema(tb, "credgate_test")
	return openIn(tb, testenv.PostgresURL(), schema, postgres.WithMaxConns(4))
}

func TestConformance(t *testing.T) {
	testenv.Postgres(t) // skip (or fail under CI) once, before the subtests
	storetest.Run(t, func(t *testing.T) service.Store { return openStore(t) })
}

// TestTwoStoresAppendConcurrently has two stores (two pools, as two
// processes would have) append to one log at once: the advisory lock must
// give every record its own index, with no gap.
func TestTwoStoresAppendConcurrently(t *testing.T) {
	t.Parallel()
	_, admin := testenv.Postgres(t)
	schema, stores := replicas(t, 2)
	const (
		workersPerStore = 4
		batches         = 20
	)
	var jobs []storetest.AppendJob
	total := 0
	for si, s := range stores {
		for w := range workersPerStore {
			j := storetest.AppendJob{Store: s}
			for b := range batches {
				batch := make([]evidence.Record, 1+(w*batches+b)%7)
				for i := range batch {
					batch[i] = evidence.Record{ID: fmt.Sprintf("s%d-w%d-b%d-%d", si, w, b, i), Kind: evidence.KindCheck,
						Partner: "client", At: time.Now(), Body: []byte("{}")}
					if err := batch[i].Seal(); err != nil {
						t.Fatal(err)
					}
				}
				total += len(batch)
				j.Batches = append(j.Batches, batch)
			}
			jobs = append(jobs, j)
		}
	}
	indexes := storetest.AppendConcurrently(t, jobs)
	// The database agrees: indexes 0..total-1, each once.
	var n, lo, hi int64
	if err := admin.QueryRow(t.Context(), `SELECT count(*), min(idx), max(idx) FROM `+
		pgx.Identifier{schema, "evidence"}.Sanitize()).Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n != int64(total) || lo != 0 || hi != int64(total-1) {
		t.Fatalf("stored %d records at %d..%d, want %d at 0..%d", n, lo, hi, total, total-1)
	}
	// Each where AppendBatch said, and the log continues right after.
	storetest.CheckIndexes(t, stores[1], indexes)
}

// TestConcurrentOpen starts several stores on one new schema at once: the
// migration lock must keep them from racing to create it.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url, postgres.WithSchema(schema), postgres.WithMaxConns(2))
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Ping(t.Context())
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	checkMigrations(t, admin, schema)
}

// checkMigrations checks that goose recorded every embedded migration
// exactly once.
func checkMigrations(t *testing.T, admin *pgx.Conn, schema string) {
	t.Helper()
	files, _ := filepath.Glob("migrations/*.sql")
	rows, err := admin.Query(t.Context(), `SELECT version_id FROM `+pgx.Identifier{schema, "goose_db_version"}.Sanitize()+
		` WHERE version_id > 0 AND is_applied ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigrations(t, applied, files)
}

// TestAdoptsFormerMigrations opens a schema migrated by the runner
// credgate had before goose (versions in schema_migrations): goose must
// take the versions over without running them again (their CREATE TABLEs
// would fail), then apply the newer ones, and the data must stay.
func TestAdoptsFormerMigrations(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	ctx := t.Context()
	ident := pgx.Identifier{schema}.Sanitize()
	err := pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		// What the former runner did: its table, then each migration's
		// body and its version, in name order.
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`; SET LOCAL search_path = `+ident+`;
			CREATE TABLE schema_migrations (version text NOT NULL PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		files, _ := filepath.Glob("migrations/*.sql")
		for _, f := range files[:storetest.LegacyVersions] {
			body, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			version := strings.TrimSuffix(filepath.Base(f), ".sql")
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", version, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(storetest.LegacyPartnerSQL, "now()"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second opening finds nothing to do
		openIn(t, url, schema)
		checkMigrations(t, admin, schema)
	}
	storetest.CheckAdopted(t, openIn(t, url, schema))
}

// TestEvidenceAppendOnly checks that the schema refuses to delete or
// rewrite evidence, but lets a body be erased.
func TestEvidenceAppendOnly(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema)
	rec := evidence.Record{ID: "r1", Kind: evidence.KindCheck, Partner: "c", At: time.Now(), Body: []byte("{}")}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(t.Context(), []evidence.Record{rec}); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "evidence"}.Sanitize()
	for _, q := range []string{
		`DELETE FROM ` + table,
		`TRUNCATE ` + table,
		`UPDATE ` + table + ` SET idx = 5`,
		// 255-b differs from b for every byte: a changed hash, never the
		// same one (a zero first byte made the old '\x00' rewrite a no-op
		// the trigger rightly let through, one run in 256).
		`UPDATE ` + table + ` SET hash = set_byte(hash, 0, 255 - get_byte(hash, 0))`,
		`UPDATE ` + table + ` SET partner = 'other'`,
	} {
		if _, err := admin.Exec(t.Context(), q); err == nil {
			t.Errorf("%s succeeded", q)
		}
	}
	if _, err := admin.Exec(t.Context(), `UPDATE `+table+` SET body = '', salt = ''`); err != nil {
		t.Errorf("erasing a body: %v", err)
	}
	if _, err := s.Record(t.Context(), "r1"); err != nil {
		t.Fatal(err)
	}
}

// TestEvidenceErasureOnly: of body and salt, only erasing both may be
// written (migration 0021).
func TestEvidenceErasureOnly(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema)
	table := pgx.Identifier{schema, "evidence"}.Sanitize()
	storetest.CheckErasureOnly(t, s, func(idx uint64, body, salt []byte) error {
		_, err := admin.Exec(t.Context(), `UPDATE `+table+` SET body = $1, salt = $2 WHERE idx = $3`, body, salt, int64(idx))
		return err
	})
}

func BenchmarkAppendBatch(b *testing.B) { storetest.BenchAppendBatch(b, openStore) }

func BenchmarkEntriesAffecting(b *testing.B) { storetest.BenchEntriesAffecting(b, openStore) }
