package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/sqlitetest"
)

// BenchmarkOpen opens a store in an empty directory (every migration
// applied) and in one seeded with a migrated store (nothing to migrate),
// which is what a test's store costs with and without the template
// (docs/PERFORMANCE.md, *Fresh stores in the tests*; run it with -race too).
func BenchmarkOpen(b *testing.B) {
	for _, tc := range []struct {
		name string
		dir  func(*testing.B) string
	}{
		{"empty", func(b *testing.B) string { return b.TempDir() }},
		{"migrated", func(b *testing.B) string { return sqlitetest.Dir(b) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dir := tc.dir(b)
				b.StartTimer()
				st, err := sqlite.Open(b.Context(), dir)
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
