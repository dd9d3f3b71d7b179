package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

func TestIdempotencyConformance(t *testing.T) {
	storetest.RunIdempotency(t, func(t *testing.T) storetest.IdempotencyStore { return openStore(t).(*sqlite.Store) })
}
