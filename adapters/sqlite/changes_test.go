package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

func TestChangesConformance(t *testing.T) {
	storetest.RunChanges(t, func(t *testing.T) service.Store { return openStore(t) })
}
