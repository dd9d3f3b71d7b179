package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestPushConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunPush(t, func(t *testing.T) storetest.PushStore { return openStore(t).(*postgres.Store) })
}
