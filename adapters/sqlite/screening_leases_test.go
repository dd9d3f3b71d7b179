package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

// TestScreeningLeasesConformance runs the leases' conformance tests on n
// stores opened on one database file.
func TestScreeningLeasesConformance(t *testing.T) {
	storetest.RunScreeningLeases(t, func(t *testing.T, n int) []service.Store {
		dir := t.TempDir()
		out := make([]service.Store, n)
		for i := range out {
			s, err := sqlite.Open(t.Context(), dir)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			out[i] = s
		}
		return out
	})
}
