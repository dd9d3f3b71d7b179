package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

// TestFollowUpReplicasConformance: two stores on one schema, as two
// replicas on one database.
func TestFollowUpReplicasConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunFollowUpReplicas(t, func(t *testing.T) [2]storetest.FollowUpStore {
		_, stores := replicas(t, 2)
		return [2]storetest.FollowUpStore{stores[0], stores[1]}
	})
}
