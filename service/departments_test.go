package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/credgate/credgate/service"
)

// A department follows its authority's measures in its own region: the
// Nanning authority's department registered for 450100 is told that a
// subject was black-listed in Nanning (the measure now in force) and that
// an objection suspended it (the measure out of force); the same
// authority's department registered for Beijing is told nothing, since
// the measure binds only Nanning (篇四 第二十四条). A subscription to an
// authority the catalogue does not name is refused and changes nothing.
func TestDepartmentEventsInRegionScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	const nanning = "失信联合惩戒单位(南宁市级职能部门,县(区)人民政府、开发区管委会及其职能部门)"
	deps := service.NewDepartments(w.store, w.store, w.lifecycle.Catalog(), service.WithDepartmentsAudit(service.NewAudit(w.audit)))
	dept := func(id, region string) service.Caller {
		p := service.Partner{ID: "p-" + id, ClientID: id, Name: id, Role: service.RolePartner, Actions: []string{"supervision"},
			Status: service.PartnerActive, CreatedAt: w.clock.Now(), UpdatedAt: w.clock.Now(), Version: 1, Region: region}
		if err := w.store.InsertPartner(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := deps.Set(ctx, id, []string{nanning}); err != nil {
			t.Fatal(err)
		}
		return service.CallerOf(p)
	}
	nn, bj := dept("nanning", "450100"), dept("beijing", "110000")
	if _, err := deps.Set(ctx, "nanning", []string{nanning, "南宁市"}); !errors.Is(err, service.ErrUnknownAuthority) {
		t.Fatalf("an unknown authority: %v, want ErrUnknownAuthority", err)
	}
	if sub, err := deps.Get(ctx, "nanning"); err != nil || !slices.Equal(sub.Authorities, []string{nanning}) {
		t.Fatalf("after a refused change: %+v, %v", sub, err)
	}
	if _, err := deps.Set(ctx, "nobody", []string{nanning}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("an unknown partner: %v, want ErrNotFound", err)
	}

	e := w.create(service.EntryInput{Subject: lcOrg, List: "nanning_black", OriginatingDepartment: "南宁市城市管理综合行政执法局",
		Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 1, 4, 0), PublishedAt: cstAt(2026, 1, 4, 0)})
	w.fanOut()
	w.clock.Set(cstAt(2026, 2, 2, 10))
	if _, _, err := w.lifecycle.FileObjection(ctx, e.ID, service.ObjectionInput{FiledBy: "originating_department", Grounds: "g"}); err != nil {
		t.Fatal(err)
	}
	w.fanOut()
	feed := func(c service.Caller) []service.Event {
		page, err := w.events.Feed(ctx, c, "", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]service.Event, len(page.Events))
		for i, raw := range page.Events {
			if err := json.Unmarshal(raw, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	evs := feed(nn)
	if len(evs) != 2 || evs[0].Kind != service.EventListed || evs[1].Kind != service.EventSuspended {
		t.Fatalf("Nanning department's events = %+v", evs)
	}
	for i, ev := range evs {
		if !slices.Equal(ev.Authorities, []string{nanning}) || !slices.Equal(ev.Subscription, []string{service.SubscribedAuthority}) ||
			len(ev.Changes) != 1 || ev.Changes[0].Action != "supervision" {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	if in := measureIDs(evs[0].Changes[0].InForce); !slices.Equal(in, []string{"nn-b-01-key-inspection"}) {
		t.Errorf("listed: in force %v", in)
	}
	if out := measureIDs(evs[1].Changes[0].OutOfForce); !slices.Equal(out, []string{"nn-b-01-key-inspection"}) {
		t.Errorf("suspended: out of force %v", out)
	}
	if evs := feed(bj); len(evs) != 0 {
		t.Fatalf("a department outside Nanning was told: %+v", evs)
	}
	// The bank, which neither checked nor watches the subject, hears nothing.
	if evs := w.feed(""); len(evs) != 0 {
		t.Fatalf("the bank was told: %+v", evs)
	}
}
