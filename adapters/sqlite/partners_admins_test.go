package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

func TestPartnerAdminsConformance(t *testing.T) {
	storetest.RunPartnerAdmins(t, func(t *testing.T) service.Store { return openStore(t) })
}
