package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

func TestCheckSearchConformance(t *testing.T) {
	storetest.RunCheckSearch(t, func(t *testing.T) storetest.CheckSearchStore { return openStore(t).(*sqlite.Store) })
}
