package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

func TestFollowUpConformance(t *testing.T) {
	storetest.RunFollowUp(t, func(t *testing.T) storetest.FollowUpStore { return openStore(t).(*sqlite.Store) })
}
