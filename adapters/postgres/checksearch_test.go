package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestCheckSearchConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunCheckSearch(t, func(t *testing.T) storetest.CheckSearchStore { return openStore(t).(*postgres.Store) })
}
