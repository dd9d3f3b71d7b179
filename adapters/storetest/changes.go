package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// ChangeFeed is the change log a store keeps for caches (migration 0005)
// and its notices (PostgreSQL's 0020). It mirrors the interfaces the cache
// declares (ChangeFeed, ChangeNotifier), so that the suite does not depend
// on the cache package.
type ChangeFeed interface {
	ChangeCursor(ctx context.Context) (uint64, error)
	SubjectChanges(ctx context.Context, cursor uint64, limit int) ([]service.SubjectChange, uint64, bool, error)
	PruneSubjectChanges(ctx context.Context, before uint64) error
	WatchSubjectChanges(ctx context.Context, changed func()) error
}

// ChangeStore is a store that also keeps the change log and upstream
// sources' snapshots, as both adapters do.
type ChangeStore interface {
	service.Store
	ChangeFeed
	service.SourceStore
}

// RunChanges runs the conformance suite of the change log and of upstream
// source snapshots against the stores open returns (as Run does).
func RunChanges(t *testing.T, open func(t *testing.T) ChangeStore) {
	runEach(t, open, "", []named[ChangeStore]{
		{"Changes/InsertUpdateNoteSubjectsAndPersons", testChangesNoted},
		{"Changes/CursorSkipsSeen", testChangesCursor},
		{"Changes/OverLimitIsLost", testChangesOverLimit},
		{"Changes/PrunedIsLost", testChangesPruned},
		{"Changes/Notices", testChangesNotices},
		{"Sources/ApplyKeepAddRevoke", testSourceApply},
		{"Sources/SameRevisionOnlySyncs", testSourceUnchanged},
		{"Sources/ItemBackAfterRemovalGetsNewEntry", testSourceItemBack},
		{"Sources/ErrorKeepsSnapshot", testSourceError},
		{"Sources/ConcurrentApplies", testSourceConcurrent},
		{"Sources/EntriesAsInserted", testSourceEntriesAsInserted},
		{"Sources/LargeSnapshots", testSourceLarge},
	})
}

// changedSince returns the subjects changed at or after cursor (each once)
// and the next cursor.
func changedSince(t *testing.T, f ChangeFeed, cursor uint64) ([]string, uint64) {
	t.Helper()
	cs, next, lost, err := f.SubjectChanges(t.Context(), cursor, 1000)
	if err != nil {
		t.Fatalf("SubjectChanges: %v", err)
	}
	if lost {
		t.Fatalf("SubjectChanges from %d: lost", cursor)
	}
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.Subject) {
			out = append(out, c.Subject)
		}
	}
	slices.Sort(out)
	return out, next
}

func testChangesNoted(t *testing.T, s ChangeStore) {
	f := s
	c0, err := f.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e := orgEntry("e1", "ORG1", "P1", "P2")
	mustInsert(t, s, e)
	got, c1 := changedSince(t, f, c0)
	if want := []string{"ORG1", "P1", "P2"}; !slices.Equal(got, want) {
		t.Fatalf("after insert: changed %v, want %v", got, want)
	}
	// An update that drops P2 and adds P3 notes both, and the subject.
	e.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "P1", Role: policy.RoleLegalRepresentative},
		{ID: "P3", Role: policy.RoleLegalRepresentative}}
	e.Version = 2
	if err := s.UpdateEntry(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	got, _ = changedSince(t, f, c1)
	for _, want := range []string{"ORG1", "P2", "P3"} {
		if !slices.Contains(got, want) {
			t.Fatalf("after update: changed %v, missing %s", got, want)
		}
	}
}

func testChangesCursor(t *testing.T, s ChangeStore) {
	f := s
	c0, err := f.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, personEntry("p1", "PA"))
	cs, c1, lost, err := f.SubjectChanges(t.Context(), c0, 100)
	if err != nil || lost || len(cs) != 1 || cs[0].Subject != "PA" {
		t.Fatalf("first reading: %v %v %v", cs, lost, err)
	}
	// Nothing new: a later reading may hand the row out again (a store
	// whose cursor is a snapshot horizon does) but never a new one.
	again, c2, lost, err := f.SubjectChanges(t.Context(), c1, 100)
	if err != nil || lost {
		t.Fatalf("second reading: %v %v", lost, err)
	}
	for _, c := range again {
		if c.ID != cs[0].ID {
			t.Fatalf("second reading found %v, a change that was not made", c)
		}
	}
	if c2 < c1 {
		t.Fatalf("cursor went back from %d to %d", c1, c2)
	}
	mustInsert(t, s, personEntry("p2", "PB"))
	got, _ := changedSince(t, f, c2)
	if !slices.Contains(got, "PB") || slices.Contains(got, "PX") {
		t.Fatalf("third reading: %v, want PB", got)
	}
}

func testChangesOverLimit(t *testing.T, s ChangeStore) {
	f := s
	c0, err := f.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, personEntry("p1", "PA"), personEntry("p2", "PB"), personEntry("p3", "PC"))
	cs, next, lost, err := f.SubjectChanges(t.Context(), c0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !lost || cs != nil {
		t.Fatalf("3 changes with limit 2: lost %v, changes %v; want lost", lost, cs)
	}
	// The cursor returned with lost is one to restart from.
	mustInsert(t, s, personEntry("p4", "PD"))
	got, _ := changedSince(t, f, next)
	if !slices.Contains(got, "PD") {
		t.Fatalf("after restarting: %v, want PD", got)
	}
}

func testChangesPruned(t *testing.T, s ChangeStore) {
	f := s
	c0, err := f.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, personEntry("p1", "PA"))
	_, c1 := changedSince(t, f, c0)
	mustInsert(t, s, personEntry("p2", "PB"))
	_, c2 := changedSince(t, f, c1)
	if err := f.PruneSubjectChanges(t.Context(), c2); err != nil {
		t.Fatal(err)
	}
	// Below the pruned mark a reading is either lost or, if the pruning
	// removed nothing it needed (a store whose horizon has not moved),
	// complete.
	cs, _, lost, err := f.SubjectChanges(t.Context(), c0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !lost {
		var got []string
		for _, c := range cs {
			got = append(got, c.Subject)
		}
		if !slices.Contains(got, "PA") || !slices.Contains(got, "PB") {
			t.Fatalf("reading below the pruned mark: %v, neither lost nor complete", got)
		}
	}
	mustInsert(t, s, personEntry("p3", "PC"))
	if got, _ := changedSince(t, f, c2); !slices.Contains(got, "PC") {
		t.Fatalf("reading above the pruned mark: %v, want PC", got)
	}
}

// testChangesNotices: a watch of the change log says when it starts, then
// after each commit that adds to the log or raises its pruned mark, and
// ends with its context.
func testChangesNotices(t *testing.T, s ChangeStore) {
	ctx, cancel := context.WithCancel(t.Context())
	notices := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchSubjectChanges(ctx, func() {
			select {
			case notices <- struct{}{}:
			default:
			}
		})
	}()
	next := func(what string) {
		t.Helper()
		select {
		case <-notices:
		case err := <-done:
			t.Fatalf("%s: the watch ended: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no notice within 10 s", what)
		}
	}
	next("the start")
	c0, err := s.ChangeCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, personEntry("n1", "NA"))
	next("an entry inserted")
	_, c1 := changedSince(t, s, c0)
	if err := s.PruneSubjectChanges(t.Context(), c1); err != nil {
		t.Fatal(err)
	}
	next("the log pruned")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the watch ended with %v, want its context's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch outlived its context")
	}
}

// srcEntry is an item of a source snapshot.
func srcEntry(item, subject string, persons ...string) service.SourceEntry {
	e := personEntry(item, subject)
	if len(persons) > 0 {
		e = orgEntry(item, subject, persons...)
		e.Objections = nil
	}
	return service.SourceEntry{ItemID: item, Entry: e}
}

func applySource(t *testing.T, s service.SourceStore, rev string, at time.Time, items ...service.SourceEntry) service.SourceApplied {
	t.Helper()
	res, err := s.ApplySource(t.Context(), service.SourceApply{Source: "feed", Revision: rev, Items: items, At: at,
		Reason: "withdrawn by feed " + rev})
	if err != nil {
		t.Fatalf("ApplySource %s: %v", rev, err)
	}
	return res
}

func testSourceApply(t *testing.T, s ChangeStore) {
	if _, err := s.SourceState(t.Context(), "feed"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("state of an unknown source: %v, want ErrNotFound", err)
	}
	r1 := applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"), srcEntry("i2", "ORG1", "P1"))
	if r1.Added != 2 || r1.Removed != 0 || r1.Unchanged {
		t.Fatalf("first apply: %+v", r1)
	}
	st, err := s.SourceState(t.Context(), "feed")
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != "r1" || st.Entries != 2 || !st.SyncedAt.Equal(stored(at(time.Hour))) || !st.AppliedAt.Equal(st.SyncedAt) {
		t.Fatalf("state after r1: %+v", st)
	}
	r2 := applySource(t, s, "r2", at(2*time.Hour), srcEntry("i1", "PA"), srcEntry("i3", "PB"))
	if r2.Added != 1 || r2.Removed != 1 || r2.Kept != 1 {
		t.Fatalf("second apply: %+v", r2)
	}
	for _, want := range []string{"PB", "ORG1", "P1"} {
		if !slices.Contains(r2.Subjects, want) {
			t.Fatalf("second apply changed %v, missing %s", r2.Subjects, want)
		}
	}
	gone, err := s.GetEntry(t.Context(), "i2")
	if err != nil {
		t.Fatal(err)
	}
	if gone.RevokedAt == nil || !gone.RevokedAt.Equal(stored(at(2*time.Hour))) || gone.RevocationReason != "withdrawn by feed r2" || gone.Version != 2 {
		t.Fatalf("dropped item's entry: revoked %v (%q) version %d", gone.RevokedAt, gone.RevocationReason, gone.Version)
	}
	if _, err := s.GetEntry(t.Context(), "i3"); err != nil {
		t.Fatalf("added item's entry: %v", err)
	}
	kept, err := s.GetEntry(t.Context(), "i1")
	if err != nil || kept.RevokedAt != nil || kept.Version != 1 {
		t.Fatalf("kept item's entry: %+v %v", kept, err)
	}
}

func testSourceUnchanged(t *testing.T, s ChangeStore) {
	applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"))
	res := applySource(t, s, "r1", at(3*time.Hour), srcEntry("i1", "PA"))
	if !res.Unchanged || res.Kept != 1 || len(res.Subjects) != 0 {
		t.Fatalf("same revision: %+v", res)
	}
	st, err := s.SourceState(t.Context(), "feed")
	if err != nil {
		t.Fatal(err)
	}
	if !st.SyncedAt.Equal(stored(at(3*time.Hour))) || !st.AppliedAt.Equal(stored(at(time.Hour))) {
		t.Fatalf("same revision: synced %v applied %v; want synced moved, applied kept", st.SyncedAt, st.AppliedAt)
	}
}

func testSourceItemBack(t *testing.T, s ChangeStore) {
	applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"))
	applySource(t, s, "r2", at(2*time.Hour))
	res := applySource(t, s, "r3aaaaaaaa", at(3*time.Hour), srcEntry("i1", "PA"))
	if res.Added != 1 {
		t.Fatalf("item back: %+v", res)
	}
	es, err := s.EntriesAffecting(t.Context(), "PA")
	if err != nil {
		t.Fatal(err)
	}
	var active, revoked int
	for _, e := range es {
		if e.RevokedAt == nil {
			active++
			if e.ID == "i1" {
				t.Fatal("the revoked entry came back to life")
			}
		} else {
			revoked++
		}
	}
	if active != 1 || revoked != 1 {
		t.Fatalf("item back: %d active, %d revoked entries; want 1 and 1", active, revoked)
	}
}

func testSourceError(t *testing.T, s ChangeStore) {
	applySource(t, s, "r1", at(time.Hour), srcEntry("i1", "PA"))
	if err := s.RecordSourceError(t.Context(), "feed", at(2*time.Hour), "upstream said 500"); err != nil {
		t.Fatal(err)
	}
	st, err := s.SourceState(t.Context(), "feed")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastError != "upstream said 500" || !st.LastErrorAt.Equal(stored(at(2*time.Hour))) || st.Revision != "r1" ||
		!st.SyncedAt.Equal(stored(at(time.Hour))) {
		t.Fatalf("after an error: %+v", st)
	}
	applySource(t, s, "r1", at(3*time.Hour), srcEntry("i1", "PA"))
	if st, _ = s.SourceState(t.Context(), "feed"); st.LastError != "" || !st.LastErrorAt.IsZero() {
		t.Fatalf("a good sync clears the error: %+v", st)
	}
	// An error for a source never applied creates its state.
	if err := s.RecordSourceError(t.Context(), "other", at(time.Hour), "down"); err != nil {
		t.Fatal(err)
	}
	if st, err = s.SourceState(t.Context(), "other"); err != nil || st.LastError != "down" || !st.SyncedAt.IsZero() {
		t.Fatalf("error of a new source: %+v %v", st, err)
	}
}

func testSourceConcurrent(t *testing.T, s ChangeStore) {
	items := []service.SourceEntry{srcEntry("i1", "PA"), srcEntry("i2", "PB"), srcEntry("i3", "PC")}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := s.ApplySource(t.Context(), service.SourceApply{Source: "feed", Revision: "r1", Items: items,
				At: at(time.Hour), Reason: "x"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent apply: %v", err)
		}
	}
	st, err := s.SourceState(t.Context(), "feed")
	if err != nil || st.Entries != 3 {
		t.Fatalf("after concurrent applies: %+v %v", st, err)
	}
}

// testSourceEntriesAsInserted: an entry a snapshot brings reads back as the
// same entry inserted by InsertEntries does, every field included: the
// apply writes entries with its own statement, which must keep up with
// the columns InsertEntries writes.
func testSourceEntriesAsInserted(t *testing.T, s ChangeStore) {
	e := orgEntry("direct", "ORGX", "P1", "P2")
	e.ParticularlySerious, e.ExitByApplication = true, true
	mustInsert(t, s, e)
	viaSource := e
	viaSource.ID = "via-source"
	applySource(t, s, "r1", at(time.Hour), service.SourceEntry{ItemID: "via-source", Entry: viaSource})
	want, err := s.GetEntry(t.Context(), "direct")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEntry(t.Context(), "via-source")
	if err != nil {
		t.Fatal(err)
	}
	got.ID = want.ID
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("an entry applied from a source reads back differently from one inserted:\n got %+v\nwant %+v", got, want)
	}
}

// testSourceLarge applies snapshots larger than one statement's parameter
// lists: all of them dropped, then all of them back (their ids taken by
// the revoked entries).
func testSourceLarge(t *testing.T, s ChangeStore) {
	const n = 1201
	items := make([]service.SourceEntry, n)
	for i := range items {
		items[i] = srcEntry(fmt.Sprintf("i%04d", i), fmt.Sprintf("P%04d", i))
	}
	if r := applySource(t, s, "r1", at(time.Hour), items...); r.Added != n {
		t.Fatalf("first apply: %+v", r)
	}
	r := applySource(t, s, "r2", at(2*time.Hour), srcEntry("other", "PX"))
	if r.Added != 1 || r.Removed != n || len(r.Subjects) != n+1 {
		t.Fatalf("all dropped: added %d removed %d, %d subjects", r.Added, r.Removed, len(r.Subjects))
	}
	for _, id := range []string{"i0000", "i0600", "i1200"} {
		if e, err := s.GetEntry(t.Context(), id); err != nil || e.RevokedAt == nil {
			t.Fatalf("dropped %s: %+v, %v", id, e, err)
		}
	}
	if r := applySource(t, s, "r3aaaaaaaa", at(3*time.Hour), items...); r.Added != n || r.Removed != 1 {
		t.Fatalf("all back: %+v", r)
	}
	es, err := s.ListEntries(t.Context(), service.EntryFilter{Subject: "P1200"})
	if err != nil || len(es) != 2 {
		t.Fatalf("entries of a subject back: %d, %v", len(es), err)
	}
}
