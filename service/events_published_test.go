package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// An entry recorded with its published_at 90 seconds ahead is pending: the
// bank that checked the subject (clear) is told it was listed, with
// nothing in force. When published_at passes, the sweep finds it and the
// bank, and the department subscribed to the authority of the measure
// that came into force, are told "published": outcome clear before,
// restrict after, the measure in force, as the bank's check now answers.
// An entry recorded after its publication, even one since the last sweep,
// was told in force when recorded, and the sweep adds nothing for it.
func TestEventsOnPublication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := cstAt(2026, 1, 4, 9)
	w := newPushWorld(t, start)
	const finance = "财政部"
	deps := service.NewDepartments(w.store, w.store, w.lifecycle.Catalog())
	dept := service.Partner{ID: "p-finance", ClientID: "finance", Name: "财政部门", Role: service.RolePartner,
		Actions: []string{"supervision"}, Status: service.PartnerActive, CreatedAt: start, UpdatedAt: start, Version: 1}
	if err := w.store.InsertPartner(ctx, dept); err != nil {
		t.Fatal(err)
	}
	if _, err := deps.Set(ctx, dept.ClientID, []string{finance}); err != nil {
		t.Fatal(err)
	}
	feed := func(c service.Caller) []service.Event {
		t.Helper()
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
	sweep := func(want int64) {
		t.Helper()
		if n, err := w.events.SweepExpired(ctx); err != nil || n != want {
			t.Fatalf("sweep at %v: %d outbox rows, %v; want %d", w.clock.Now(), n, err, want)
		}
	}
	outcome := func() policy.Outcome {
		t.Helper()
		ans, err := w.checker.Check(ctx, w.bank, service.CheckRequest{Subject: lcOrg, Action: "government_procurement"})
		if err != nil {
			t.Fatal(err)
		}
		return ans.Outcome
	}

	if got := outcome(); got != policy.OutcomeClear {
		t.Fatalf("the bank's first check: %s, want clear", got)
	}
	sweep(0) // the first sweep only starts
	w.clock.Add(10 * time.Second)
	published := w.clock.Now().Add(90 * time.Second)
	in := safetyEntry(published)
	in.DecidedAt = start.Add(-24 * time.Hour)
	e := w.create(in)
	// lcOrg2, recorded at once with a published_at after the first sweep
	// but before its recording.
	w.create(service.EntryInput{Subject: lcOrg2, List: "safety_production_blacklist", OriginatingDepartment: "应急管理局",
		Reason: "r", LegalBasis: "b", DecidedAt: start.Add(-24 * time.Hour), PublishedAt: start.Add(5 * time.Second)})
	w.fanOut()
	evs := w.feed("")
	if len(evs) != 1 || evs[0].Kind != service.EventListed || evs[0].EntryStatus != string(policy.StatusPending) {
		t.Fatalf("events of the pending listing = %+v", evs)
	}
	if ch := evs[0].Changes; len(ch) != 1 || ch[0].Outcome != policy.OutcomeClear || len(ch[0].InForce) != 0 {
		t.Fatalf("the pending listing's changes = %+v, want nothing in force", ch)
	}
	if evs := feed(service.CallerOf(dept)); slices.ContainsFunc(evs, func(ev service.Event) bool { return ev.EntryID == e.ID }) {
		t.Fatalf("the department was told of a pending listing: %+v", evs)
	}

	w.clock.Add(60 * time.Second)
	sweep(0) // published_at has not passed
	if got := outcome(); got != policy.OutcomeClear {
		t.Fatalf("the bank's check before publication: %s, want clear", got)
	}
	w.clock.Set(published.Add(20 * time.Second))
	sweep(1) // e's publication; not lcOrg2's, told in force when recorded
	sweep(0)
	w.fanOut()
	if got := outcome(); got != policy.OutcomeRestrict {
		t.Fatalf("the bank's check after publication: %s, want restrict", got)
	}
	evs = w.feed("")
	if len(evs) != 2 {
		t.Fatalf("the bank's events after publication = %+v, want the listing and the publication", evs)
	}
	ev := evs[1]
	if ev.Kind != service.EventPublished || ev.EntryID != e.ID || ev.EntryStatus != string(policy.StatusActive) ||
		!ev.OccurredAt.Equal(published) || !slices.Equal(ev.Subscription, []string{service.SubscribedChecked}) {
		t.Fatalf("publication event = %+v", ev)
	}
	if ch := ev.Changes; len(ch) != 1 || ch[0].Action != "government_procurement" || ch[0].OutcomeBefore != policy.OutcomeClear ||
		ch[0].Outcome != policy.OutcomeRestrict || !slices.Contains(measureIDs(ch[0].InForce), "sp-18-procurement") ||
		len(ch[0].OutOfForce) != 0 {
		t.Fatalf("publication changes = %+v", ch)
	}
	devs := feed(service.CallerOf(dept))
	var forE []service.Event
	for _, d := range devs {
		if d.EntryID == e.ID {
			forE = append(forE, d)
		}
	}
	if len(forE) != 1 || forE[0].Kind != service.EventPublished || !slices.Equal(forE[0].Authorities, []string{finance}) ||
		!slices.Equal(forE[0].Subscription, []string{service.SubscribedAuthority}) {
		t.Fatalf("the department's events of the entry = %+v, want its publication", forE)
	}
	if !slices.ContainsFunc(forE[0].Changes, func(mc service.MeasureChange) bool {
		return mc.Action == "government_procurement" && slices.Equal(measureIDs(mc.InForce), []string{"sp-18-procurement"})
	}) {
		t.Fatalf("the department's publication changes = %+v", forE[0].Changes)
	}
}
