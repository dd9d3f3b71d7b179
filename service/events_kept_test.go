package service_test

import (
	"context"
	"testing"

	"github.com/credgate/credgate/service"
)

func TestEventsKeptListNotAnnounced(t *testing.T) {
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	dept := service.Partner{ID: "p-dept", ClientID: "dept", Name: "城管", Role: service.RolePartner,
		Actions: []string{"supervision"}, Status: service.PartnerActive, CreatedAt: cstAt(2026, 1, 4, 9), UpdatedAt: cstAt(2026, 1, 4, 9), Version: 1}
	if err := w.store.InsertPartner(ctx, dept); err != nil {
		t.Fatal(err)
	}
	for _, c := range []service.Caller{w.bank, service.CallerOf(dept)} {
		if _, err := w.checker.Check(ctx, c, service.CheckRequest{Subject: lcOrg, Action: c.Actions[0]}); err != nil {
			t.Fatal(err)
		}
	}
	w.create(service.EntryInput{Subject: lcOrg, List: "urban_management_general", OriginatingDepartment: "城管局",
		Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 1, 4, 0), PublishedAt: cstAt(2026, 1, 4, 0)})
	w.fanOut()
	if evs := w.feed(""); len(evs) != 0 {
		t.Errorf("bank told of a kept entry: %+v", evs)
	}
	page, err := w.events.Feed(ctx, service.CallerOf(dept), "", 100, 0)
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("department: %v %s", err, page.Events)
	}
	t.Logf("department's event: %s", page.Events[0])
}
