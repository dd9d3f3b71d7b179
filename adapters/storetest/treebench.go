package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// BenchGroupCommit measures evidence appends as the check path makes them:
// many concurrent callers, one record each, through evidence.Appender
// (group commit) into a store from open, each batch integrated into the
// Merkle tree in its transaction. It reports records/s and the mean
// records per commit, for 1, 16 and 64 concurrent callers per CPU.
func BenchGroupCommit(b *testing.B, open func(tb testing.TB) service.Store) {
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%dxCPU", par), func(b *testing.B) {
			s := open(b)
			var commits atomic.Int64
			app := evidence.NewAppender(s, evidence.WithCommitHook(func([]evidence.Record) { commits.Add(1) }))
			defer app.Close()
			body := make([]byte, 1500) // about a check answer with two measures
			for i := range body {
				body[i] = 'a' + byte(i%26)
			}
			var n atomic.Int64
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					r := evidence.Record{ID: fmt.Sprintf("chk-%012d", i), Kind: evidence.KindCheck, Partner: "client-1", At: at(0), Body: body}
					if _, err := app.Append(b.Context(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "records/s")
			if c := commits.Load(); c > 0 {
				b.ReportMetric(float64(n.Load())/float64(c), "records/commit")
			}
		})
	}
}
