// Package storetest is the conformance suite every service.Store adapter
// passes, and the benchmarks they share. An adapter's tests call Run with a
// function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) service.Store { return openStore(t) })
//	}
//
// Ids and filters given to a store are UTF-8 text without U+0000: PostgreSQL
// fails a query given anything else (SQLSTATE 22021) where SQLite finds
// nothing, and the suite does not ask either. The gateway guarantees it, for
// path and query parameters (gateway/params.go, plainParams) and the token
// endpoint's client id, and refuses JSON bodies whose strings hold control
// characters (internal/strictjson); gateway/plaintext_test.go runs those
// refusals over both stores. Record
// bodies are another matter: a store must append any JSON text JSON allows,
// \u0000 included, and derive from it what it can (FollowUp/BodiesWithNUL).
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

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Run runs the conformance suite against the stores open returns. Every
// call of open must return a new, empty store and arrange (with t.Cleanup)
// for it to be closed and discarded; subtests run in parallel, each with a
// store of its own.
func Run(t *testing.T, open func(t *testing.T) service.Store) {
	runEach(t, open, "", []named[service.Store]{
		{"Entries/RoundTrip", testEntryRoundTrip},
		{"Entries/DuplicateRollsBackBatch", testEntryDuplicate},
		{"Entries/GetMissing", testEntryMissing},
		{"Entries/OptimisticUpdate", testEntryUpdate},
		{"Entries/UpdateReindexesPersons", testEntryUpdatePersons},
		{"Entries/ListFilters", testListFilters},
		{"Entries/ListPagination", testListPagination},
		{"Entries/ListLimitCapped", testListLimitCapped},
		{"Entries/Affecting", testEntriesAffecting},
		{"Entries/ListedSubjects", testListedSubjects},
		{"Entries/Load", testEntryLoad}, {"Entries/LoadDiscard", testEntryLoadDiscard},
		{"Entries/LoadStoredDuplicates", testEntryLoadStoredDuplicates},
		{"Screenings", testScreenings},
		{"LookupEntriesBatch", testLookupEntriesBatch},
		{"Partners/RoundTrip", testPartnerRoundTrip},
		{"Partners/Conflicts", testPartnerConflicts},
		{"Partners/OptimisticUpdate", testPartnerUpdate},
		{"Partners/AccessFields", testPartnerAccessFields},
		{"Partners/Region", testPartnerRegion},
		{"Evidence/RecordsOfKind", testRecordsOfKind},
		{"Evidence/ConsecutiveIndexes", testAppendIndexes},
		{"Evidence/RecordRoundTrip", testRecordRoundTrip},
		{"Evidence/DuplicateRollsBackBatch", testAppendDuplicate},
		{"Evidence/ConcurrentAppends", testAppendConcurrent},
		{"Evidence/RecordMissing", testRecordMissing},
		{"Evidence/TreeGrowsWithLog", testTreeGrowsWithLog},
		{"Evidence/TreeRollsBackWithBatch", testTreeRollsBackWithBatch},
		{"Evidence/CheckpointsAndKeys", testCheckpointsAndKeys},
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
	})
}

// at is d after a base time with nanoseconds, in a zone other than UTC, so
// that the suite checks that stores return UTC truncated to microseconds.
func at(d time.Duration) time.Time {
	return time.Date(2024, 3, 1, 10, 30, 15, 123456789, time.FixedZone("CST", 8*3600)).Add(d)
}

func ptr[T any](v T) *T { return &v }

// named is one test of a conformance suite over a store of type S.
type named[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runEach runs every test of a suite as a parallel subtest (prefix plus
// its name), each on a store of its own from open.
func runEach[S any](t *testing.T, open func(t *testing.T) S, prefix string, tests []named[S]) {
	for _, tc := range tests {
		t.Run(prefix+tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// stored is t as every store must return it.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func storedPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(stored(*t))
}

// orgEntry is an organisation entry with every field set.
func orgEntry(id, subject string, persons ...string) policy.Entry {
	e := policy.Entry{
		ID:                    id,
		Subject:               policy.SubjectID{Kind: policy.KindOrganization, Value: subject},
		List:                  "black",
		OriginatingDepartment: "市场监督管理局",
		Reason:                "严重违法失信",
		LegalBasis:            "《企业信息公示暂行条例》第十七条",
		EvidenceRefs:          []string{"doc-" + id + "-1", "doc-" + id + "-2"},
		DecidedAt:             at(0),
		PublishedAt:           at(24 * time.Hour),
		ValidUntil:            ptr(at(3 * 365 * 24 * time.Hour)),
		RevocationReason:      "",
		Objections: []policy.Objection{
			{ID: "obj-" + id + "-1", FiledAt: at(48 * time.Hour), DecidedAt: ptr(at(72 * time.Hour)), Decision: "rejected"},
			{ID: "obj-" + id + "-2", FiledAt: at(96 * time.Hour)},
		},
		CreatedAt: at(time.Second),
		UpdatedAt: at(2 * time.Second),
		Version:   1,
	}
	for i, p := range persons {
		role := policy.RoleLegalRepresentative
		if i%2 == 1 {
			role = policy.RoleDirectlyResponsible
		}
		e.ResponsiblePersons = append(e.ResponsiblePersons, policy.ResponsiblePerson{ID: p, Role: role})
	}
	return e
}

// personEntry is a person entry with every optional field unset.
func personEntry(id, subject string) policy.Entry {
	return policy.Entry{
		ID:                    id,
		Subject:               policy.SubjectID{Kind: policy.KindPerson, Value: subject},
		List:                  "dishonest_person",
		OriginatingDepartment: "人民法院",
		Reason:                "失信被执行人",
		LegalBasis:            "最高人民法院关于公布失信被执行人名单信息的若干规定",
		DecidedAt:             at(0),
		PublishedAt:           at(0),
		CreatedAt:             at(0),
		UpdatedAt:             at(0),
		Version:               1,
	}
}

// wantEntry is e as a store must return it: times in UTC at microsecond
// precision and empty repeated fields as nil. It, stored and wantPartner
// say so here rather than call adapters/internal/storeutil, whose
// NormalizeEntry the adapters use to keep that promise: an expectation
// computed by the code under test would pass whatever that code did (a
// storeutil.Time truncating to the millisecond fails the suite as
// written; with wantEntry = storeutil.NormalizeEntry it passed).
func wantEntry(e policy.Entry) policy.Entry {
	e.DecidedAt = stored(e.DecidedAt)
	e.PublishedAt = stored(e.PublishedAt)
	e.ValidUntil = storedPtr(e.ValidUntil)
	e.RevokedAt = storedPtr(e.RevokedAt)
	e.CreatedAt = stored(e.CreatedAt)
	e.UpdatedAt = stored(e.UpdatedAt)
	if len(e.EvidenceRefs) == 0 {
		e.EvidenceRefs = nil
	}
	if len(e.ResponsiblePersons) == 0 {
		e.ResponsiblePersons = nil
	}
	if len(e.Objections) == 0 {
		e.Objections = nil
	} else {
		objs := slices.Clone(e.Objections)
		for i := range objs {
			objs[i].FiledAt = stored(objs[i].FiledAt)
			objs[i].DecidedAt = storedPtr(objs[i].DecidedAt)
		}
		e.Objections = objs
	}
	return e
}

// checkTimes fails unless every time is UTC at microsecond precision.
func checkTimes(t *testing.T, what string, times ...*time.Time) {
	t.Helper()
	for i, tm := range times {
		if tm == nil {
			continue
		}
		if tm.Location() != time.UTC {
			t.Errorf("%s: time %d (%v) is in %v, want UTC", what, i, *tm, tm.Location())
		}
		if tm.Nanosecond()%1000 != 0 {
			t.Errorf("%s: time %d (%v) has sub-microsecond precision", what, i, *tm)
		}
	}
}

func checkEntry(t *testing.T, got, want policy.Entry) {
	t.Helper()
	times := []*time.Time{&got.DecidedAt, &got.PublishedAt, got.ValidUntil, got.RevokedAt, &got.CreatedAt, &got.UpdatedAt}
	for i := range got.Objections {
		times = append(times, &got.Objections[i].FiledAt, got.Objections[i].DecidedAt)
	}
	checkTimes(t, "entry "+got.ID, times...)
	want = wantEntry(want)
	if !reflect.DeepEqual(wantEntry(got), want) {
		t.Errorf("entry %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func entryIDs(es []policy.Entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

func mustInsert(t testing.TB, s service.Store, es ...policy.Entry) {
	t.Helper()
	if err := s.InsertEntries(t.Context(), es); err != nil {
		t.Fatalf("InsertEntries: %v", err)
	}
}

func testEntryRoundTrip(t *testing.T, s service.Store) {
	ctx := t.Context()
	full := orgEntry("e-full", "91110000MA00000001", "110105194912310021", "110105194912310030")
	full.RevokedAt = ptr(at(100 * time.Hour))
	full.RevocationReason = "信用修复"
	bare := personEntry("e-bare", "110105194912310021")
	// Empty, non-nil repeated fields come back as nil.
	empty := orgEntry("e-empty", "91110000MA00000002")
	empty.EvidenceRefs, empty.Objections, empty.ResponsiblePersons = []string{}, []policy.Objection{}, []policy.ResponsiblePerson{}
	empty.ValidUntil = nil
	// A time already in UTC at microsecond precision is kept exactly.
	exact := personEntry("e-exact", "110105194912310048")
	exact.DecidedAt = time.Date(2023, 12, 31, 23, 59, 59, 999999000, time.UTC)
	exact.PublishedAt = exact.DecidedAt
	exact.Version = 7

	mustInsert(t, s, full, bare, empty, exact)
	for _, want := range []policy.Entry{full, bare, empty, exact} {
		got, err := s.GetEntry(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetEntry(%s): %v", want.ID, err)
		}
		checkEntry(t, got, want)
	}
	got, err := s.GetEntry(ctx, "e-full")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.Kind != policy.KindOrganization {
		t.Errorf("subject kind = %q, want %q", got.Subject.Kind, policy.KindOrganization)
	}
	if got.ValidUntil == nil || got.RevokedAt == nil || got.Objections[1].DecidedAt != nil {
		t.Errorf("optional times not kept: %+v", got)
	}
	got, err = s.GetEntry(ctx, "e-bare")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.Kind != policy.KindPerson || got.ValidUntil != nil || got.RevokedAt != nil {
		t.Errorf("bare entry: %+v", got)
	}
	// The entry's own status logic still works on what comes back.
	full2, _ := s.GetEntry(ctx, "e-full")
	if st := full2.StatusAt(at(200 * time.Hour)); st != policy.StatusRevoked {
		t.Errorf("StatusAt after revocation = %s, want revoked", st)
	}
}

func testEntryDuplicate(t *testing.T, s service.Store) {
	ctx := t.Context()
	mustInsert(t, s, orgEntry("a", "S1"), orgEntry("b", "S2"))

	// The third entry duplicates a stored one: nothing of the batch stays.
	err := s.InsertEntries(ctx, []policy.Entry{orgEntry("c", "S3", "P1"), orgEntry("d", "S4"), orgEntry("a", "S5")})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("InsertEntries with a duplicate: err = %v, want ErrConflict", err)
	}
	// The third duplicates the first of the same batch.
	err = s.InsertEntries(ctx, []policy.Entry{orgEntry("x", "S6"), orgEntry("y", "S7"), orgEntry("x", "S8")})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("InsertEntries duplicating within the batch: err = %v, want ErrConflict", err)
	}
	for _, id := range []string{"c", "d", "x", "y"} {
		if _, err := s.GetEntry(ctx, id); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("GetEntry(%s) after failed batch: err = %v, want ErrNotFound", id, err)
		}
	}
	// Neither the rolled-back entries nor their person links are visible.
	if got, err := s.EntriesAffecting(ctx, "P1"); err != nil || len(got) != 0 {
		t.Errorf("EntriesAffecting(P1) after failed batch = %v, %v; want none", entryIDs(got), err)
	}
	all, err := s.ListEntries(ctx, service.EntryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := entryIDs(all); !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("ListEntries = %v, want [a b]", ids)
	}
	// The original of the duplicate is untouched.
	got, err := s.GetEntry(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.Value != "S1" {
		t.Errorf("entry a subject = %q, want S1", got.Subject.Value)
	}
}

func testEntryMissing(t *testing.T, s service.Store) {
	if _, err := s.GetEntry(t.Context(), "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("GetEntry(missing): err = %v, want ErrNotFound", err)
	}
}

func testEntryUpdate(t *testing.T, s service.Store) {
	ctx := t.Context()
	e := orgEntry("e1", "S1", "P1")
	mustInsert(t, s, e)

	e.Version = 2
	e.RevokedAt = ptr(at(10 * time.Hour))
	e.RevocationReason = "信用修复"
	e.Objections = append(e.Objections, policy.Objection{ID: "obj-3", FiledAt: at(5 * time.Hour)})
	e.UpdatedAt = at(10 * time.Hour)
	if err := s.UpdateEntry(ctx, e); err != nil {
		t.Fatalf("UpdateEntry(version 2): %v", err)
	}
	got, err := s.GetEntry(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, got, e)

	stale := e
	stale.Reason = "stale"
	if err := s.UpdateEntry(ctx, stale); !errors.Is(err, service.ErrConflict) {
		t.Errorf("UpdateEntry(stale version): err = %v, want ErrConflict", err)
	}
	stale.Version = 9
	if err := s.UpdateEntry(ctx, stale); !errors.Is(err, service.ErrConflict) {
		t.Errorf("UpdateEntry(future version): err = %v, want ErrConflict", err)
	}
	got, err = s.GetEntry(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, got, e) // unchanged by the failed updates

	missing := orgEntry("ghost", "S9")
	missing.Version = 2
	if err := s.UpdateEntry(ctx, missing); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("UpdateEntry(missing): err = %v, want ErrNotFound", err)
	}
}

func testEntryUpdatePersons(t *testing.T, s service.Store) {
	ctx := t.Context()
	e := orgEntry("e1", "S1", "P1", "P2")
	mustInsert(t, s, e)
	affects := func(subject string) []string {
		t.Helper()
		got, err := s.EntriesAffecting(ctx, subject)
		if err != nil {
			t.Fatalf("EntriesAffecting(%s): %v", subject, err)
		}
		return entryIDs(got)
	}
	if got := affects("P1"); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("before update, P1 finds %v", got)
	}

	// A failed (stale) update does not touch the person index.
	stale := e
	stale.Version = 5
	stale.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "P9", Role: policy.RolePrincipal}}
	if err := s.UpdateEntry(ctx, stale); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if got := affects("P9"); len(got) != 0 {
		t.Errorf("after a failed update, P9 finds %v", got)
	}

	e.Version = 2
	e.ResponsiblePersons = []policy.ResponsiblePerson{
		{ID: "P2", Role: policy.RoleLegalRepresentative},
		{ID: "P3", Role: policy.RoleDirector},
	}
	if err := s.UpdateEntry(ctx, e); err != nil {
		t.Fatalf("UpdateEntry: %v", err)
	}
	if got := affects("P1"); len(got) != 0 {
		t.Errorf("after P1 was removed, P1 finds %v", got)
	}
	for _, p := range []string{"P2", "P3"} {
		if got := affects(p); !slices.Equal(got, []string{"e1"}) {
			t.Errorf("after update, %s finds %v, want [e1]", p, got)
		}
	}

	// Changing the subject moves the direct match too.
	e.Version = 3
	e.Subject.Value = "S2"
	e.ResponsiblePersons = nil
	if err := s.UpdateEntry(ctx, e); err != nil {
		t.Fatalf("UpdateEntry: %v", err)
	}
	for subject, want := range map[string][]string{"S1": nil, "S2": {"e1"}, "P2": nil, "P3": nil} {
		if got := affects(subject); !slices.Equal(got, want) {
			t.Errorf("after subject change, %s finds %v, want %v", subject, got, want)
		}
	}
}

func testListFilters(t *testing.T, s service.Store) {
	ctx := t.Context()
	var es []policy.Entry
	for i := range 12 {
		e := orgEntry(fmt.Sprintf("e%02d", i), fmt.Sprintf("S%d", i%3))
		e.List = []string{"black", "key_attention"}[i%2]
		es = append(es, e)
	}
	mustInsert(t, s, es...)
	cases := []struct {
		f    service.EntryFilter
		want []string
	}{
		{service.EntryFilter{}, []string{"e00", "e01", "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e11"}},
		{service.EntryFilter{Subject: "S1"}, []string{"e01", "e04", "e07", "e10"}},
		{service.EntryFilter{List: "black"}, []string{"e00", "e02", "e04", "e06", "e08", "e10"}},
		{service.EntryFilter{Subject: "S1", List: "black"}, []string{"e04", "e10"}},
		{service.EntryFilter{Subject: "S1", List: "black", After: "e04"}, []string{"e10"}},
		{service.EntryFilter{Subject: "S0", Limit: 2}, []string{"e00", "e03"}},
		{service.EntryFilter{Subject: "nobody"}, nil},
		{service.EntryFilter{List: "red"}, nil},
		{service.EntryFilter{After: "e11"}, nil},
	}
	for _, c := range cases {
		got, err := s.ListEntries(ctx, c.f)
		if err != nil {
			t.Fatalf("ListEntries(%+v): %v", c.f, err)
		}
		if ids := entryIDs(got); !slices.Equal(ids, c.want) {
			t.Errorf("ListEntries(%+v) = %v, want %v", c.f, ids, c.want)
		}
	}
	got, err := s.ListEntries(ctx, service.EntryFilter{Subject: "S2", Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListEntries: %v, %v", got, err)
	}
	checkEntry(t, got[0], es[2])
}

func testListPagination(t *testing.T, s service.Store) {
	ctx := t.Context()
	const n = 53
	var es []policy.Entry
	for i := range n {
		// IDs inserted out of order; listing is by ID.
		es = append(es, orgEntry(fmt.Sprintf("e%03d", (i*17)%n), "S"))
	}
	mustInsert(t, s, es...)
	for _, limit := range []int{1, 7, 53, 100} {
		var (
			seen  []string
			after string
		)
		for page := 0; ; page++ {
			if page > n+1 {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
			got, err := s.ListEntries(ctx, service.EntryFilter{Subject: "S", After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(got))
			}
			if len(got) == 0 {
				break
			}
			seen = append(seen, entryIDs(got)...)
			after = got[len(got)-1].ID
		}
		if len(seen) != n || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != n {
			t.Errorf("limit %d: pages hold %d entries (%v), want each of %d once in order", limit, len(seen), seen, n)
		}
	}
}

func testListLimitCapped(t *testing.T, s service.Store) {
	ctx := t.Context()
	n := service.MaxPage + 5
	es := make([]policy.Entry, n)
	for i := range es {
		es[i] = personEntry(fmt.Sprintf("e%05d", i), "P")
	}
	mustInsert(t, s, es...)
	for _, limit := range []int{0, -1, service.MaxPage + 1, 1 << 30} {
		got, err := s.ListEntries(ctx, service.EntryFilter{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != service.MaxPage {
			t.Errorf("ListEntries(Limit: %d) returned %d, want MaxPage (%d)", limit, len(got), service.MaxPage)
		}
	}
	rest, err := s.ListEntries(ctx, service.EntryFilter{After: fmt.Sprintf("e%05d", service.MaxPage-1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 5 {
		t.Errorf("second page holds %d, want 5", len(rest))
	}
}

func testEntriesAffecting(t *testing.T, s service.Store) {
	ctx := t.Context()
	e1 := orgEntry("e1", "ORG1", "P1")
	e2 := orgEntry("e2", "ORG2", "P2", "P1")
	e3 := personEntry("e3", "P1")
	e4 := orgEntry("e4", "ORG3", "P3")
	e5 := personEntry("e5", "P2")
	// The same person in two roles: the entry comes back once.
	e6 := orgEntry("e6", "ORG4")
	e6.ResponsiblePersons = []policy.ResponsiblePerson{
		{ID: "P4", Role: policy.RoleLegalRepresentative}, {ID: "P4", Role: policy.RoleShareholder},
	}
	// Status does not matter: revoked and expired entries are returned.
	e7 := orgEntry("e7", "ORG1")
	e7.RevokedAt = ptr(at(time.Hour))
	// An organisation's own entry that also names it as a person (odd, but
	// it must still come back once).
	e8 := orgEntry("e8", "ORG5", "ORG5")
	mustInsert(t, s, e5, e4, e3, e2, e1, e6, e7, e8)

	cases := map[string][]string{
		"P1":   {"e1", "e2", "e3"},
		"P2":   {"e2", "e5"},
		"P3":   {"e4"},
		"P4":   {"e6"},
		"ORG1": {"e1", "e7"},
		"ORG2": {"e2"},
		"ORG5": {"e8"},
		"P9":   nil,
		"":     nil,
	}
	for subject, want := range cases {
		got, err := s.EntriesAffecting(ctx, subject)
		if err != nil {
			t.Fatalf("EntriesAffecting(%q): %v", subject, err)
		}
		if ids := entryIDs(got); !slices.Equal(ids, want) {
			t.Errorf("EntriesAffecting(%q) = %v, want %v", subject, ids, want)
		}
	}
	got, err := s.EntriesAffecting(ctx, "P2")
	if err != nil {
		t.Fatal(err)
	}
	checkEntry(t, got[0], e2)
	checkEntry(t, got[1], e5)
}

// listedSubjects is the cache tier's view of a store: every subject an
// entry can be found for.
type listedSubjects interface {
	ListedSubjects(ctx context.Context, fn func(subject string) error) error
}

// testListedSubjects: ListedSubjects names exactly the subjects that
// EntriesAffecting finds something for (entries' subjects and responsible
// persons, revoked entries too), so that a subject it does not name can
// be answered clean without asking; and it stops at the callback's error.
func testListedSubjects(t *testing.T, s service.Store) {
	ctx := t.Context()
	ls, ok := s.(listedSubjects)
	if !ok {
		t.Fatalf("%T has no ListedSubjects", s)
	}
	listed := func() map[string]int {
		t.Helper()
		got := map[string]int{}
		if err := ls.ListedSubjects(ctx, func(subject string) error { got[subject]++; return nil }); err != nil {
			t.Fatalf("ListedSubjects: %v", err)
		}
		return got
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("an empty store lists %v", got)
	}
	revoked := orgEntry("e3", "ORG3")
	revoked.RevokedAt = ptr(at(time.Hour))
	e1 := orgEntry("e1", "ORG1", "P1", "P2")
	mustInsert(t, s, e1, orgEntry("e2", "ORG1", "P1"), revoked, personEntry("e4", "P4"))
	// The update names P5 instead of P2: P2 is no longer affected.
	e1.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "P5", Role: policy.RoleLegalRepresentative}}
	e1.UpdatedAt, e1.Version = at(2*time.Hour), 2
	if err := s.UpdateEntry(ctx, e1); err != nil {
		t.Fatalf("UpdateEntry: %v", err)
	}
	got := listed()
	for _, subject := range []string{"ORG1", "ORG2", "ORG3", "P1", "P2", "P4", "P5", "P9"} {
		es, err := s.EntriesAffecting(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if affected := len(es) > 0; affected != (got[subject] > 0) {
			t.Errorf("%s: listed %d times, %d entries affecting it", subject, got[subject], len(es))
		}
	}
	if len(got) != 5 {
		t.Errorf("listed %v, want ORG1, ORG3, P1, P4 and P5", got)
	}
	stop := errors.New("enough")
	calls := 0
	if err := ls.ListedSubjects(ctx, func(string) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("a callback's error: %v after %d calls, want it returned after 1", err, calls)
	}
}

func partner(id, clientID string) service.Partner {
	return service.Partner{
		ID:         id,
		ClientID:   clientID,
		Name:       "北京市某区行政审批局 " + id,
		Role:       service.RolePartner,
		Actions:    []string{"licensing", "tendering"},
		SecretHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Status:     service.PartnerActive,
		CreatedAt:  at(0),
		UpdatedAt:  at(time.Minute),
		Version:    1,
	}
}

func wantPartner(p service.Partner) service.Partner {
	p.CreatedAt = stored(p.CreatedAt)
	p.UpdatedAt = stored(p.UpdatedAt)
	p.RevokedAt = storedPtr(p.RevokedAt)
	if len(p.Actions) == 0 {
		p.Actions = nil
	}
	return p
}

func checkPartner(t *testing.T, got, want service.Partner) {
	t.Helper()
	checkTimes(t, "partner "+got.ID, &got.CreatedAt, &got.UpdatedAt, got.RevokedAt)
	if want = wantPartner(want); !reflect.DeepEqual(wantPartner(got), want) {
		t.Errorf("partner %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func testPartnerRoundTrip(t *testing.T, s service.Store) {
	ctx := t.Context()
	p1 := partner("p1", "client-1")
	p2 := partner("p2", "client-2")
	p2.Role, p2.Actions, p2.Status = service.RoleAdmin, nil, service.PartnerRevoked
	p2.RevokedAt = ptr(at(time.Hour))
	p3 := partner("p0", "client-0")
	p3.Role, p3.Actions = service.RoleAuditor, []string{}
	for _, p := range []service.Partner{p1, p2, p3} {
		if err := s.InsertPartner(ctx, p); err != nil {
			t.Fatalf("InsertPartner(%s): %v", p.ID, err)
		}
	}
	for _, want := range []service.Partner{p1, p2, p3} {
		got, err := s.PartnerByClientID(ctx, want.ClientID)
		if err != nil {
			t.Fatalf("PartnerByClientID(%s): %v", want.ClientID, err)
		}
		checkPartner(t, got, want)
	}
	if _, err := s.PartnerByClientID(ctx, "client-9"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("PartnerByClientID(missing): err = %v, want ErrNotFound", err)
	}
	all, err := s.ListPartners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("ListPartners returned %d, want 3", len(all))
	}
	for i, want := range []service.Partner{p3, p1, p2} { // by ID
		checkPartner(t, all[i], want)
	}
}

func testPartnerConflicts(t *testing.T, s service.Store) {
	ctx := t.Context()
	if err := s.InsertPartner(ctx, partner("p1", "client-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertPartner(ctx, partner("p1", "client-other")); !errors.Is(err, service.ErrConflict) {
		t.Errorf("InsertPartner(duplicate ID): err = %v, want ErrConflict", err)
	}
	if err := s.InsertPartner(ctx, partner("p2", "client-1")); !errors.Is(err, service.ErrConflict) {
		t.Errorf("InsertPartner(duplicate client ID): err = %v, want ErrConflict", err)
	}
	all, err := s.ListPartners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != "p1" || all[0].ClientID != "client-1" {
		t.Errorf("ListPartners = %+v, want only p1", all)
	}
	if _, err := s.PartnerByClientID(ctx, "client-other"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("rejected partner stored: %v", err)
	}
}

func testPartnerUpdate(t *testing.T, s service.Store) {
	ctx := t.Context()
	p := partner("p1", "client-1")
	if err := s.InsertPartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertPartner(ctx, partner("p2", "client-2")); err != nil {
		t.Fatal(err)
	}
	p.Version = 2
	p.Status = service.PartnerRevoked
	p.RevokedAt = ptr(at(time.Hour))
	p.Actions = []string{"credit"}
	p.SecretHash = "rotated"
	p.UpdatedAt = at(time.Hour)
	if err := s.UpdatePartner(ctx, p); err != nil {
		t.Fatalf("UpdatePartner: %v", err)
	}
	got, err := s.PartnerByClientID(ctx, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	checkPartner(t, got, p)

	stale := p
	stale.Name = "stale"
	if err := s.UpdatePartner(ctx, stale); !errors.Is(err, service.ErrConflict) {
		t.Errorf("UpdatePartner(stale): err = %v, want ErrConflict", err)
	}
	taken := p
	taken.Version = 3
	taken.ClientID = "client-2"
	if err := s.UpdatePartner(ctx, taken); !errors.Is(err, service.ErrConflict) {
		t.Errorf("UpdatePartner(client ID taken): err = %v, want ErrConflict", err)
	}
	ghost := partner("ghost", "client-g")
	ghost.Version = 2
	if err := s.UpdatePartner(ctx, ghost); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("UpdatePartner(missing): err = %v, want ErrNotFound", err)
	}
	got, err = s.PartnerByClientID(ctx, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	checkPartner(t, got, p)
}

// record is a sealed record with a body that is not valid UTF-8, so that
// stores must keep bodies as bytes.
func record(t testing.TB, id string) evidence.Record {
	r := evidence.Record{
		ID:      id,
		Kind:    evidence.KindCheck,
		Partner: "client-1",
		At:      at(0),
		Body:    append([]byte(`{"check":"`+id+`","subject":"91110000MA00000001"}`), 0x00, 0xff, 0xfe),
	}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	return r
}

func records(t testing.TB, prefix string, n int) []evidence.Record {
	rs := make([]evidence.Record, n)
	for i := range rs {
		rs[i] = record(t, fmt.Sprintf("%s-%d", prefix, i))
	}
	return rs
}

func mustAppend(t testing.TB, s service.Store, recs []evidence.Record) uint64 {
	t.Helper()
	first, err := s.AppendBatch(t.Context(), recs)
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	return first
}

func checkRecord(t *testing.T, s service.Store, want evidence.Record, index uint64) {
	t.Helper()
	got, err := s.Record(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Record(%s): %v", want.ID, err)
	}
	checkTimes(t, "record "+want.ID, &got.At)
	want.Index = index
	want.At = stored(want.At)
	got.At = got.At.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func testAppendIndexes(t *testing.T, s service.Store) {
	var next uint64
	for i, n := range []int{3, 1, 5, 2} {
		batch := records(t, fmt.Sprintf("b%d", i), n)
		first := mustAppend(t, s, batch)
		if first != next {
			t.Fatalf("batch %d: first index %d, want %d", i, first, next)
		}
		for j, r := range batch {
			checkRecord(t, s, r, first+uint64(j))
		}
		next += uint64(n)
	}
}

func testRecordRoundTrip(t *testing.T, s service.Store) {
	check := record(t, "chk-1")
	admin := record(t, "act-1")
	admin.Kind = evidence.KindAdmin
	admin.Partner = "admin-console"
	admin.At = time.Date(2025, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", -5*3600))
	admin.Body = []byte(`{}`)
	admin.Hash = evidence.RecordHash(admin.Salt, admin.Body)
	mustAppend(t, s, []evidence.Record{check, admin})
	checkRecord(t, s, check, 0)
	checkRecord(t, s, admin, 1)

	got, err := s.Record(t.Context(), "chk-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Salt) != evidence.SaltSize || got.Hash != evidence.RecordHash(got.Salt, got.Body) {
		t.Errorf("stored record no longer matches its hash: %+v", got)
	}
}

func testAppendDuplicate(t *testing.T, s service.Store) {
	ctx := t.Context()
	mustAppend(t, s, records(t, "a", 1))

	// The third record duplicates a stored one.
	batch := append(records(t, "b", 2), record(t, "a-0"))
	if _, err := s.AppendBatch(ctx, batch); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("AppendBatch with a stored ID: err = %v, want ErrConflict", err)
	}
	// The third record duplicates the first of the same batch.
	batch = append(records(t, "c", 2), record(t, "c-0"))
	if _, err := s.AppendBatch(ctx, batch); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("AppendBatch with a repeated ID: err = %v, want ErrConflict", err)
	}
	for _, id := range []string{"b-0", "b-1", "c-0", "c-1"} {
		if _, err := s.Record(ctx, id); !errors.Is(err, evidence.ErrNotFound) {
			t.Errorf("Record(%s) after failed batch: err = %v, want evidence.ErrNotFound", id, err)
		}
	}
	next := records(t, "d", 2)
	if first := mustAppend(t, s, next); first != 1 {
		t.Errorf("after failed batches, next batch starts at %d, want 1", first)
	}
	checkRecord(t, s, next[1], 2)
}

func testAppendConcurrent(t *testing.T, s service.Store) {
	const (
		workers = 8
		batches = 15
	)
	jobs := make([]AppendJob, workers)
	for w := range jobs {
		jobs[w].Store = s
		for b := range batches {
			jobs[w].Batches = append(jobs[w].Batches, records(t, fmt.Sprintf("w%d-b%d", w, b), 1+(w+b)%4))
		}
	}
	CheckIndexes(t, s, AppendConcurrently(t, jobs))
}

// AppendJob is one writer of AppendConcurrently: the batches it appends to
// Store, in order. Records are sealed up front, since t.Fatal must not run
// in the writers.
type AppendJob struct {
	Store interface {
		AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error)
	}
	Batches [][]evidence.Record
}

// AppendConcurrently runs the jobs at once and returns, by record ID, the
// index AppendBatch reported for each record.
func AppendConcurrently(t *testing.T, jobs []AppendJob) map[string]uint64 {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		indexes = map[string]uint64{}
	)
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		wg.Go(func() {
			for _, batch := range j.Batches {
				first, err := j.Store.AppendBatch(t.Context(), batch)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i, r := range batch {
					indexes[r.ID] = first + uint64(i)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent AppendBatch: %v", err)
	}
	return indexes
}

// CheckIndexes checks that the indexes AppendBatch reported are 0..n-1 each
// exactly once, and that the store agrees with them; it then appends one
// record, which must follow at n.
func CheckIndexes(t *testing.T, s service.Store, indexes map[string]uint64) {
	t.Helper()
	n := uint64(len(indexes))
	seen := make([]string, n)
	for id, idx := range indexes {
		if idx >= n {
			t.Fatalf("record %s got index %d beyond %d records", id, idx, n)
		}
		if seen[idx] != "" {
			t.Fatalf("index %d assigned to both %s and %s", idx, seen[idx], id)
		}
		seen[idx] = id
	}
	for id, idx := range indexes {
		r, err := s.Record(t.Context(), id)
		if err != nil {
			t.Fatalf("Record(%s): %v", id, err)
		}
		if r.Index != idx {
			t.Errorf("record %s stored at %d, AppendBatch said %d", id, r.Index, idx)
		}
	}
	// The log continues right after.
	if first := mustAppend(t, s, records(t, "after", 1)); first != n {
		t.Errorf("next append starts at %d, want %d", first, n)
	}
}

func testRecordMissing(t *testing.T, s service.Store) {
	if _, err := s.Record(t.Context(), "nope"); !errors.Is(err, evidence.ErrNotFound) {
		t.Fatalf("Record(missing): err = %v, want evidence.ErrNotFound", err)
	}
}

func testPing(t *testing.T, s service.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCanceledContext(t *testing.T, s service.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"Ping":             func() error { return s.Ping(ctx) },
		"InsertEntries":    func() error { return s.InsertEntries(ctx, []policy.Entry{orgEntry("e1", "S1", "P1")}) },
		"GetEntry":         func() error { _, err := s.GetEntry(ctx, "e1"); return err },
		"UpdateEntry":      func() error { return s.UpdateEntry(ctx, orgEntry("e1", "S1")) },
		"ListEntries":      func() error { _, err := s.ListEntries(ctx, service.EntryFilter{}); return err },
		"EntriesAffecting": func() error { _, err := s.EntriesAffecting(ctx, "P1"); return err },
		"InsertPartner":    func() error { return s.InsertPartner(ctx, partner("p1", "c1")) },
		"PartnerByClient":  func() error { _, err := s.PartnerByClientID(ctx, "c1"); return err },
		"ListPartners":     func() error { _, err := s.ListPartners(ctx); return err },
		"UpdatePartner":    func() error { return s.UpdatePartner(ctx, partner("p1", "c1")) },
		"AppendBatch":      func() error { _, err := s.AppendBatch(ctx, records(t, "r", 2)); return err },
		"Record":           func() error { _, err := s.Record(ctx, "r-0"); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s with a canceled context succeeded", name)
		}
	}
	// Nothing was written, and the store still works.
	if first := mustAppend(t, s, records(t, "live", 1)); first != 0 {
		t.Errorf("append after canceled append starts at %d, want 0", first)
	}
	if _, err := s.GetEntry(t.Context(), "e1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("entry inserted under a canceled context: %v", err)
	}
	if _, err := s.PartnerByClientID(t.Context(), "c1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("partner inserted under a canceled context: %v", err)
	}
}
