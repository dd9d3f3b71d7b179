package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// An upstream source that no longer delivers an entry under objection
// revokes it, and the revocation closes the objection in the same write,
// on either store; the source's other dropped entries are revoked as
// before.
func TestServiceSourceWithdrawalClosesObjection(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 3, 1, 9))
		src, ok := st.(service.SourceStore)
		if !ok {
			t.Fatal("the store keeps no sources")
		}
		cat, err := policy.BundledCatalog()
		if err != nil {
			t.Fatal(err)
		}
		sources := service.NewSources(src, cat, service.WithSourcesClock(w.clock.Now))
		item := func(subject, key string) service.SourceItem {
			return service.SourceItem{Key: key, Input: service.EntryInput{Subject: subject, List: "court_dishonest_debtor",
				OriginatingDepartment: "某人民法院", Reason: "有履行能力而拒不履行", LegalBasis: "《民事诉讼法》",
				DecidedAt: cstAt(2026, 2, 1, 0), PublishedAt: cstAt(2026, 2, 2, 0)}}
		}
		snap := service.SourceSnapshot{Source: "court", Lists: []string{"court_dishonest_debtor"}, FetchedAt: w.clock.Now(),
			Items: []service.SourceItem{item(lcOrg, "a"), item(lcOrg2, "b"), item(lcPerson, "c")}}
		if _, err := sources.Apply(ctx, snap); err != nil {
			t.Fatal(err)
		}
		byKey := map[string]policy.Entry{}
		for _, s := range []string{lcOrg, lcOrg2, lcPerson} {
			es, err := w.entries.List(ctx, service.EntryFilter{Subject: s})
			if err != nil || len(es) != 1 {
				t.Fatalf("entries of %s: %d %v", s, len(es), err)
			}
			byKey[s] = es[0]
		}
		w.clock.Set(cstAt(2026, 3, 2, 10))
		_, o, err := w.lifecycle.FileObjection(ctx, byKey[lcOrg].ID, service.ObjectionInput{FiledBy: "originating_department", Grounds: "已履行完毕"})
		if err != nil {
			t.Fatal(err)
		}
		gone := cstAt(2026, 3, 5, 9)
		w.clock.Set(gone)
		snap.FetchedAt, snap.Items = gone, []service.SourceItem{item(lcPerson, "c")}
		if _, err := sources.Apply(ctx, snap); err != nil {
			t.Fatal(err)
		}
		objected, err := w.entries.Get(ctx, byKey[lcOrg].ID)
		if err != nil {
			t.Fatal(err)
		}
		if objected.RevokedAt == nil || !objected.RevokedAt.Equal(gone) || objected.Version != 3 {
			t.Fatalf("the entry under objection: revoked %v, version %d", objected.RevokedAt, objected.Version)
		}
		wantClosedByRevocation(t, objected, o.ID, gone)
		if !strings.Contains(objected.Objections[0].Note, "withdrawn by upstream source court") {
			t.Fatalf("note: %q", objected.Objections[0].Note)
		}
		other, err := w.entries.Get(ctx, byKey[lcOrg2].ID)
		if err != nil || other.RevokedAt == nil || !other.RevokedAt.Equal(gone) || other.Version != 2 {
			t.Fatalf("the other withdrawn entry: %+v %v", other, err)
		}
		if kept, err := w.entries.Get(ctx, byKey[lcPerson].ID); err != nil || kept.RevokedAt != nil {
			t.Fatalf("the entry still delivered: %+v %v", kept, err)
		}
	})
}
