package service_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// testStore is what a service test may need of a store: both adapters are
// one.
type testStore interface {
	service.Store
	service.EntriesStore
	service.PushStore
	evidence.Sink
}

var (
	_ testStore = (*sqlite.Store)(nil)
	_ testStore = (*postgres.Store)(nil)
)

// eachStore runs fn, in parallel subtests, on a fresh SQLite store and on
// a fresh PostgreSQL schema (skipped, or failed under CI, without the
// server).
func eachStore(t *testing.T, fn func(t *testing.T, st testStore)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url, _ := testenv.Postgres(t)
		st, err := postgres.Open(t.Context(), url, postgres.WithSchema(testenv.FreshSchema(t, "credgate_test")), postgres.WithMaxConns(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}
