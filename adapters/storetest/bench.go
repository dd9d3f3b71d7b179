package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// BenchAppendBatch measures AppendBatch for batches of 1, 64 and 512
// records of about 400 bytes each, on a store from open. It reports ns/op
// per batch and records/s.
func BenchAppendBatch(b *testing.B, open func(tb testing.TB) service.Store) {
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := open(b)
			body := make([]byte, 400)
			for i := range body {
				body[i] = 'a' + byte(i%26)
			}
			proto := evidence.Record{Kind: evidence.KindCheck, Partner: "client-1", At: at(0), Body: body}
			if err := proto.Seal(); err != nil {
				b.Fatal(err)
			}
			batch := make([]evidence.Record, size)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					batch[i] = proto
					batch[i].ID = fmt.Sprintf("chk-%09d", n)
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

// BenchEntriesAffecting measures EntriesAffecting on a store from open
// holding 10 000 organisation entries, each naming two of 5 000 persons,
// and 2 000 person entries; each lookup is of a random person, so it finds
// a few entries through both the subject and the person index.
func BenchEntriesAffecting(b *testing.B, open func(tb testing.TB) service.Store) {
	const (
		orgs    = 10000
		persons = 5000
		direct  = 2000
	)
	s := open(b)
	person := func(i int) string { return fmt.Sprintf("1101051949%08d", i) }
	var es []policy.Entry
	for i := range orgs {
		es = append(es, orgEntry(fmt.Sprintf("org-%06d", i), fmt.Sprintf("91110000MA%08d", i),
			person(i%persons), person((i*7+1)%persons)))
	}
	for i := range direct {
		es = append(es, personEntry(fmt.Sprintf("per-%06d", i), person(i*persons/direct)))
	}
	for len(es) > 0 {
		n := min(len(es), service.MaxPage)
		if err := s.InsertEntries(b.Context(), es[:n]); err != nil {
			b.Fatal(err)
		}
		es = es[n:]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	found, lookups := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		lookups++
		got, err := s.EntriesAffecting(b.Context(), person(rng.IntN(persons)))
		if err != nil {
			b.Fatal(err)
		}
		found += len(got)
	}
	b.ReportMetric(float64(found)/float64(lookups), "entries/op")
}
