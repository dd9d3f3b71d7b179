package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

func TestLifecycleConformance(t *testing.T) {
	storetest.RunLifecycle(t, func(t *testing.T) service.Store { return openStore(t) })
}

func BenchmarkLifecycleReads(b *testing.B) { storetest.BenchLifecycleReads(b, openStore) }
