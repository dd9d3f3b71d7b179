package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
)

func TestPushTimedConformance(t *testing.T) {
	testenv.Postgres(t) // skip (or fail under CI) once, before the subtests
	storetest.RunPushTimed(t, func(t *testing.T) storetest.PushStore { return openStore(t).(*postgres.Store) })
}
