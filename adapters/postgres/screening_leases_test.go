package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestScreeningLeasesConformance runs the leases' conformance tests on n
// pools of one schema, as n replicas share one database.
func TestScreeningLeasesConformance(t *testing.T) {
	testenv.Postgres(t) // skip (or fail under CI) once, before the subtests
	storetest.RunScreeningLeases(t, func(t *testing.T, n int) []service.Store {
		_, stores := replicas(t, n)
		out := make([]service.Store, n)
		for i, s := range stores {
			out[i] = s
		}
		return out
	})
}
