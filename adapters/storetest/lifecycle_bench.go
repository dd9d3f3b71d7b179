package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// BenchLifecycleReads compares, on one store, the lookup of the check path
// (EntriesAffecting) with the same lookup as of a past time
// (EntriesAffectingAsOf), over 10 000 organisation entries naming two of
// 5 000 persons and 2 000 person entries, each entry written in 3 versions
// (created, patched, revoked). Lookups are of random persons; the as-of
// lookups ask for a time between the second and third versions.
func BenchLifecycleReads(b *testing.B, open func(tb testing.TB) service.Store) {
	s := open(b)
	es := affectingPopulation()
	t1, t2, t3 := at(time.Hour), at(2*time.Hour), at(3*time.Hour)
	for i := range es {
		es[i].Objections, es[i].UpdatedAt = nil, t1
	}
	for start := 0; start < len(es); start += service.MaxPage {
		batch := es[start:min(len(es), start+service.MaxPage)]
		if err := s.InsertEntries(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		var ups []policy.Entry
		for _, e := range batch {
			e.Reason, e.Version, e.UpdatedAt = "patched", 2, t2
			ups = append(ups, e)
		}
		if err := s.ApplyEntryChanges(b.Context(), service.EntryChanges{Update: ups}); err != nil {
			b.Fatal(err)
		}
		for i := range ups {
			ups[i].RevokedAt, ups[i].Version, ups[i].UpdatedAt = ptr(t3), 3, t3
		}
		if err := s.ApplyEntryChanges(b.Context(), service.EntryChanges{Update: ups}); err != nil {
			b.Fatal(err)
		}
	}
	between := at(150 * time.Minute)
	for _, bc := range []struct {
		name   string
		lookup func(string) ([]policy.Entry, error)
	}{
		{"now", func(p string) ([]policy.Entry, error) { return s.EntriesAffecting(b.Context(), p) }},
		{"as_of", func(p string) ([]policy.Entry, error) { return s.EntriesAffectingAsOf(b.Context(), p, between) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			found, lookups := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				lookups++
				got, err := bc.lookup(benchPerson(rng.IntN(benchPersons)))
				if err != nil {
					b.Fatal(err)
				}
				found += len(got)
			}
			b.ReportMetric(float64(found)/float64(lookups), "entries/op")
		})
	}
}

// BenchHistoryWrites measures what keeping the entry history costs a
// write: UpdateEntry of one entry, version after version, on a store from
// open with the history triggers on ("history") and on one where
// disableHistory has turned them off ("no_history").
func BenchHistoryWrites(b *testing.B, open func(tb testing.TB) service.Store, disableHistory func(tb testing.TB, s service.Store)) {
	for _, bc := range []struct {
		name    string
		history bool
	}{{"history", true}, {"no_history", false}} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b)
			if !bc.history {
				disableHistory(b, s)
			}
			e := orgEntry("w-1", "ORG-W", "110105194912310029")
			mustInsert(b, s, e)
			b.ReportAllocs()
			for b.Loop() {
				e.Version++
				e.UpdatedAt = e.UpdatedAt.Add(time.Millisecond)
				e.Reason = fmt.Sprintf("reason %d", e.Version)
				if err := s.UpdateEntry(b.Context(), e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
