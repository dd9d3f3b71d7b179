package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestSourceOrderConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunSourceOrder(t, func(t *testing.T) storetest.ChangeStore {
		return openIn(t, testenv.PostgresURL(), testenv.FreshSchema(t, "credgate_test"), postgres.WithMaxConns(4))
	})
}
