package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

func TestPushConformance(t *testing.T) {
	storetest.RunPush(t, func(t *testing.T) storetest.PushStore { return openStore(t).(*sqlite.Store) })
}
