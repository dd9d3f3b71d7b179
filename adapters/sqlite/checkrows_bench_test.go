package sqlite_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// BenchmarkAppendBatchChecks is BenchmarkAppendBatch with check records
// shaped as the service writes them (one in ten restricted, with two
// applied measures; the others clear), so that the rows derived from
// checks (check index, lists, checked subjects) are part of the commit.
func BenchmarkAppendBatchChecks(b *testing.B) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	measure := func(list, status string) string {
		return fmt.Sprintf(`{"id":"m-%s","list":%q,"effect":"restrict","mandatory":true,"status":%q,"text":"%s","legal_basis":"《安全生产法》","authority":"应急管理部","source":"国家发展改革委等"}`,
			list, list, status, strings.Repeat("限制", 40))
	}
	body := func(n int) []byte {
		id := fmt.Sprintf("chk-%09d", n)
		subject := fmt.Sprintf("91110108MB%08d", n%1000)
		outcome, measures, entries := "clear", "", ""
		if n%10 == 0 {
			outcome = "restrict"
			measures = measure("safety_production_blacklist", "applied") + "," + measure("court_dishonest_debtor", "applied") + "," +
				measure("tax_major_violation", "not_applicable")
			entries = `{"id":"e1","list":"safety_production_blacklist","list_name":"安全生产失信","list_kind":"black","status":"active","legal_basis":"《安全生产法》","decided_at":"2026-11-01T00:00:00Z","published_at":"2026-11-01T00:00:00Z"}`
		}
		return fmt.Appendf(nil, `{"check_id":%q,"partner":"client-1","subject":{"id":%q,"kind":"organization"},"action":"government_procurement","reference":"credgate-bench","outcome":%q,"measures":[%s],"entries":[%s],"catalog_revision":"r1","data_as_of":"2026-11-02T09:00:00Z","checked_at":"2026-11-02T09:00:00Z","context":{"region":"450100"}}`,
			id, subject, outcome, measures, entries)
	}
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := openStore(b)
			batch := make([]evidence.Record, size)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					batch[i] = evidence.Record{ID: fmt.Sprintf("chk-%09d", n), Kind: evidence.KindCheck, Partner: "client-1",
						At: at.Add(time.Duration(n) * time.Millisecond), Body: body(n)}
					if err := batch[i].Seal(); err != nil {
						b.Fatal(err)
					}
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
