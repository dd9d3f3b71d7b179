package postgres_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func TestPartnerAdminsConformance(t *testing.T) {
	testenv.Postgres(t) // skip (or fail under CI) once, before the subtests
	storetest.RunPartnerAdmins(t, func(t *testing.T) service.Store { return openStore(t) })
}
