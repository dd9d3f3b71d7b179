package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
)

// BenchmarkAppendBatchChecks is BenchmarkAppendBatch with check records
// shaped as the service writes them (sqlite.BenchCheckRecord) on 1 000
// subjects.
func BenchmarkAppendBatchChecks(b *testing.B) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := openStore(b)
			batch := make([]evidence.Record, size)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					batch[i] = sqlite.BenchCheckRecord(b, n, fmt.Sprintf("91110108MB%08d", n%1000), at.Add(time.Duration(n)*time.Millisecond))
					n++
				}
				b.StartTimer()
				if _, err := s.AppendBatch(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
