package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/storetest"
)

func BenchmarkGroupCommit(b *testing.B) { storetest.BenchGroupCommit(b, openStore) }
