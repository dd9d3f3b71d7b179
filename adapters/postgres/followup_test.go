package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestFollowUpConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunFollowUp(t, func(t *testing.T) storetest.FollowUpStore { return openStore(t).(*postgres.Store) })
}
