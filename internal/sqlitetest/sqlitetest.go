// Package sqlitetest opens what most tests of credgate over a real store
// start from: the bundled catalogue, a SQLite store in a temporary
// directory, and an evidence appender writing to it; and it seeds a
// directory with a store already migrated, for tests that open their own.
package sqlitetest

import (
	"context"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Open returns the bundled catalogue and a SQLite store in tb's temporary
// directory, seeded with the migrated schema (Seed). The store is closed
// when tb ends, after whatever the caller registers with Cleanup later (a
// server using it, say).
func Open(tb testing.TB) (*policy.Catalog, *sqlite.Store) {
	tb.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	Seed(tb, dir)
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return cat, st
}

// OpenWithEvidence is Open with an evidence appender writing to the
// store, closed before it.
func OpenWithEvidence(tb testing.TB) (*policy.Catalog, *sqlite.Store, *evidence.Appender) {
	tb.Helper()
	cat, st := Open(tb)
	app := evidence.NewAppender(st)
	tb.Cleanup(func() { app.Close() })
	return cat, st, app
}
