package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

func TestPushTimedConformance(t *testing.T) {
	storetest.RunPushTimed(t, func(t *testing.T) storetest.PushStore { return openStore(t).(*sqlite.Store) })
}
