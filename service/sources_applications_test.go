package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/credgate/credgate/service"
)

// An upstream source that no longer delivers an entry with a repair
// application still open revokes it, and the revocation closes the
// application in the same write, on either store, as it closes an open
// objection: nothing is left pending on the withdrawn entry.
func TestServiceSourceWithdrawalClosesRepair(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newCityRevWorld(t, st, cstAt(2026, 3, 1, 9))
		src, ok := st.(service.SourceStore)
		if !ok {
			t.Fatal("the store keeps no sources")
		}
		cat := cityCatalog(t)
		sources := service.NewSources(src, cat, service.WithSourcesClock(w.clock.Now))
		in := citySafetyEntry(cstAt(2026, 2, 2, 0))
		snap := service.SourceSnapshot{Source: "safety", Lists: []string{in.List}, FetchedAt: w.clock.Now(),
			Items: []service.SourceItem{{Key: "a", Input: in}}}
		if _, err := sources.Apply(ctx, snap); err != nil {
			t.Fatal(err)
		}
		es, err := w.entries.List(ctx, service.EntryFilter{Subject: lcOrg})
		if err != nil || len(es) != 1 {
			t.Fatalf("entries: %d %v", len(es), err)
		}
		w.clock.Set(cstAt(2026, 3, 2, 10))
		_, rep, err := w.lifecycle.ApplyRepair(ctx, es[0].ID, service.ApplicationRequest{Grounds: "已整改并消除影响"})
		if err != nil {
			t.Fatal(err)
		}
		gone := cstAt(2026, 3, 5, 9)
		w.clock.Set(gone)
		snap.FetchedAt, snap.Items = gone, nil
		if _, err := sources.Apply(ctx, snap); err != nil {
			t.Fatal(err)
		}
		withdrawn, err := w.entries.Get(ctx, es[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if withdrawn.RevokedAt == nil || !withdrawn.RevokedAt.Equal(gone) || withdrawn.Version != 3 {
			t.Fatalf("the withdrawn entry: revoked %v, version %d", withdrawn.RevokedAt, withdrawn.Version)
		}
		r := withdrawn.Repairs[0]
		wantApplicationClosed(t, "repair", r.State, r.DecidedAt, r.Note, gone)
		if !strings.Contains(r.Note, "withdrawn by upstream source safety") {
			t.Fatalf("note: %q", r.Note)
		}
		if _, _, err := w.lifecycle.DecideRepair(ctx, rep.ID, service.DecisionInput{Decision: "refused", Note: "名单已撤销"}); err == nil {
			t.Fatal("a repair closed by the withdrawal was decided")
		}
	})
}
