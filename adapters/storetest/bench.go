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

// The population the EntriesAffecting benchmarks look up in: organisation
// entries each naming two of the persons, and entries of persons directly.
const (
	benchOrgs    = 10000
	benchPersons = 5000
	benchDirect  = 2000
)

// benchPerson is the identity number of the population's i-th person.
func benchPerson(i int) string { return fmt.Sprintf("1101051949%08d", i) }

// affectingPopulation is the population's entries, not yet stored.
func affectingPopulation() []policy.Entry {
	es := make([]policy.Entry, 0, benchOrgs+benchDirect)
	for i := range benchOrgs {
		es = append(es, orgEntry(fmt.Sprintf("org-%06d", i), fmt.Sprintf("91110000MA%08d", i),
			benchPerson(i%benchPersons), benchPerson((i*7+1)%benchPersons)))
	}
	for i := range benchDirect {
		es = append(es, personEntry(fmt.Sprintf("per-%06d", i), benchPerson(i*benchPersons/benchDirect)))
	}
	return es
}

// BenchEntriesAffecting measures EntriesAffecting on a store from open
// holding 10 000 organisation entries, each naming two of 5 000 persons,
// and 2 000 person entries; each lookup is of a random person, so it finds
// a few entries through both the subject and the person index.
func BenchEntriesAffecting(b *testing.B, open func(tb testing.TB) service.Store) {
	s := open(b)
	es := affectingPopulation()
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
		got, err := s.EntriesAffecting(b.Context(), benchPerson(rng.IntN(benchPersons)))
		if err != nil {
			b.Fatal(err)
		}
		found += len(got)
	}
	b.ReportMetric(float64(found)/float64(lookups), "entries/op")
}
