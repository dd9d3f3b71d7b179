package storetest

import (
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// RunSourceOrder runs the conformance suite of source snapshots applied out
// of order, as replicas syncing one source each on its own schedule do,
// against the stores open returns.
func RunSourceOrder(t *testing.T, open func(t *testing.T) ChangeStore) {
	runEach(t, open, "", []named[ChangeStore]{
		{"Sources/OlderThanAppliedIsSuperseded", testSourceOlderThanApplied},
		{"Sources/OlderThanSyncedIsSuperseded", testSourceOlderThanSynced},
	})
}

// sourceState reads the state of the suite's source.
func sourceState(t *testing.T, s ChangeStore) service.SourceState {
	t.Helper()
	st, err := s.SourceState(t.Context(), "feed")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// changeIDs returns the changes at or after cursor, by id.
func changeIDs(t *testing.T, f ChangeFeed, cursor uint64) map[int64]string {
	t.Helper()
	cs, _, lost, err := f.SubjectChanges(t.Context(), cursor, 1000)
	if err != nil || lost {
		t.Fatalf("SubjectChanges from %d: lost %v, %v", cursor, lost, err)
	}
	out := make(map[int64]string, len(cs))
	for _, c := range cs {
		out[c.ID] = c.Subject
	}
	return out
}

// testSourceOlderThanApplied: a snapshot fetched before the one applied
// (a slow replica's, committing after a quicker one's) changes nothing: the
// entry upstream no longer delivers stays revoked, no new one is inserted,
// and the source's revision and times stay those of the newer snapshot.
func testSourceOlderThanApplied(t *testing.T, s ChangeStore) {
	applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"))
	applySource(t, s, "r2", at(3*time.Hour)) // upstream dropped the item
	cursor, err := s.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A reading may return changes from before its cursor again (same
	// ids: PostgreSQL's cursor is a snapshot's xmin): those seen before
	// the apply are not the apply's.
	before := changeIDs(t, s, cursor)
	res := applySource(t, s, "r1", at(2*time.Hour), srcEntry("i1", "PA"))
	if res.Added != 0 || res.Removed != 0 || len(res.Subjects) != 0 || !res.Unchanged || res.Revision != "r2" {
		t.Fatalf("an older snapshot after a newer one: %+v, want nothing changed and r2 reported in force", res)
	}
	if st := sourceState(t, s); st.Revision != "r2" || st.Entries != 0 || !st.SyncedAt.Equal(stored(at(3*time.Hour))) ||
		!st.AppliedAt.Equal(stored(at(3*time.Hour))) {
		t.Fatalf("state after an older snapshot: %+v, want r2 applied and synced at %v", st, stored(at(3*time.Hour)))
	}
	es, err := s.EntriesAffecting(t.Context(), "PA")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.RevokedAt == nil {
			t.Fatalf("an older snapshot listed the subject again: entry %s active", e.ID)
		}
	}
	for id, subject := range changeIDs(t, s, cursor) {
		if _, seen := before[id]; !seen {
			t.Fatalf("an older snapshot changed %s", subject)
		}
	}
	// A newer snapshot applies as ever.
	if res := applySource(t, s, "r3", at(4*time.Hour), srcEntry("i1", "PA")); res.Added != 1 || res.Unchanged {
		t.Fatalf("a newer snapshot after the superseded one: %+v", res)
	}
}

// testSourceOlderThanSynced: a snapshot fetched before the time upstream
// last confirmed the revision in force (synced_at, moved by an unchanged
// sync) is older than it too; synced_at never moves back.
func testSourceOlderThanSynced(t *testing.T, s ChangeStore) {
	applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"))
	applySource(t, s, "r1", at(3*time.Hour), srcEntry("i1", "PA")) // confirmed at 3 h
	res := applySource(t, s, "r0", at(2*time.Hour), srcEntry("i1", "PA"), srcEntry("i2", "PB"))
	if res.Added != 0 || !res.Unchanged || res.Revision != "r1" {
		t.Fatalf("a snapshot older than the last confirmation: %+v, want nothing changed", res)
	}
	if st := sourceState(t, s); st.Revision != "r1" || !st.SyncedAt.Equal(stored(at(3*time.Hour))) ||
		!st.AppliedAt.Equal(stored(at(time.Hour))) {
		t.Fatalf("state: %+v, want r1 applied at 1 h, synced at 3 h", st)
	}
	// The same revision fetched earlier leaves synced_at where it is.
	applySource(t, s, "r1", at(2*time.Hour), srcEntry("i1", "PA"))
	if st := sourceState(t, s); !st.SyncedAt.Equal(stored(at(3 * time.Hour))) {
		t.Fatalf("synced_at moved back to %v", st.SyncedAt)
	}
	if _, err := s.GetEntry(t.Context(), "i2"); err == nil {
		t.Fatal("the older snapshot's item was inserted")
	}
}
