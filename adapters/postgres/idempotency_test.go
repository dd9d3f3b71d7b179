package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestIdempotencyConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunIdempotency(t, func(t *testing.T) storetest.IdempotencyStore { return openStore(t).(*postgres.Store) })
}
