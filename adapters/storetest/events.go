package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// PushStore is a store with push (migration 0011).
type PushStore interface {
	service.Store
	service.PushStore
}

// RunPush runs the conformance tests of the outbox, subscriptions,
// events, webhooks and deliveries.
func RunPush(t *testing.T, open func(t *testing.T) PushStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s PushStore)
	}{
		{"OutboxWrittenWithEntry", testOutboxWithEntry},
		{"OutboxRollsBackWithEntry", testOutboxRollsBack},
		{"SubscribersFromChecks", testSubscribers},
		{"Watchlist", testWatchlist},
		{"AuthoritySubscriptions", testAuthoritySubscriptions},
		{"PublishAndFeed", testPublishAndFeed},
		{"PublishTwiceConflicts", testPublishTwice},
		{"ConcurrentPublishersKeepOrder", testConcurrentPublish},
		{"DeliveriesClaimRetryDeadReplay", testDeliveries},
		{"Prune", testPrune},
		{"SweepExpired", testSweepExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func pending(t *testing.T, s PushStore) []service.OutboxChange {
	t.Helper()
	cs, err := s.PendingChanges(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func testOutboxWithEntry(t *testing.T, s PushStore) {
	ctx := t.Context()
	e := orgEntry("e1", "91110000MA00000001")
	mustInsert(t, s, e)
	e2 := e
	e2.Version, e2.UpdatedAt, e2.Reason = 2, at(time.Hour), "更正"
	if err := s.UpdateEntry(ctx, e2); err != nil {
		t.Fatal(err)
	}
	cs := pending(t, s)
	if len(cs) != 2 || cs[0].EntryID != "e1" || cs[0].Version != 1 || cs[1].Version != 2 || cs[0].Seq >= cs[1].Seq {
		t.Fatalf("outbox = %+v, want e1 v1 then v2", cs)
	}
	if !cs[1].RecordedAt.Equal(stored(e2.UpdatedAt)) {
		t.Errorf("recorded at %v, want the entry's update time %v", cs[1].RecordedAt, stored(e2.UpdatedAt))
	}
	inUTC(t, "outbox change's recorded_at", cs[1].RecordedAt)
	v1, err := s.EntryVersion(ctx, "e1", 1)
	if err != nil || v1.Reason != e.Reason || v1.Version != 1 {
		t.Fatalf("EntryVersion 1 = %+v, %v", v1, err)
	}
	if _, err := s.EntryVersion(ctx, "e1", 9); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("EntryVersion of a missing version: %v, want ErrNotFound", err)
	}
	// Lifecycle writes leave their rows too.
	e3 := e2
	e3.Version, e3.UpdatedAt = 3, at(2*time.Hour)
	if err := s.ApplyEntryChanges(ctx, service.EntryChanges{Update: []policy.Entry{e3}, Insert: []policy.Entry{orgEntry("e2", "91110000MA00000002")}}); err != nil {
		t.Fatal(err)
	}
	if cs := pending(t, s); len(cs) != 4 {
		t.Fatalf("after a lifecycle write: %d outbox rows, want 4", len(cs))
	}
}

func testOutboxRollsBack(t *testing.T, s PushStore) {
	mustInsert(t, s, orgEntry("e1", "91110000MA00000001"))
	err := s.InsertEntries(t.Context(), []policy.Entry{orgEntry("e2", "91110000MA00000002"), orgEntry("e1", "91110000MA00000001")})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("duplicate insert: %v", err)
	}
	if cs := pending(t, s); len(cs) != 1 || cs[0].EntryID != "e1" {
		t.Fatalf("outbox after a failed batch = %+v, want e1 only", cs)
	}
}

// checkEvidence is a check's evidence record in the body's encoding.
func checkEvidence(t testing.TB, id, partner, subject string, when time.Time) evidence.Record {
	return checkOf(t, id, partner, subject, "a", "", when)
}

// checkOf is checkEvidence of action, re-run as of asOf unless "".
func checkOf(t testing.TB, id, partner, subject, action, asOf string, when time.Time) evidence.Record {
	body := fmt.Sprintf(`{"check_id":%q,"partner":%q,"subject":{"id":%q,"kind":"organization"},"action":%q`, id, partner, subject, action)
	if asOf != "" {
		body += fmt.Sprintf(`,"as_of":%q`, asOf)
	}
	r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: partner, At: when, Body: []byte(body + "}")}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	return r
}

// testSubscribers: a partner that checked a subject within the window is
// its subscriber, once however many checks and actions; one whose checks
// are all before the window, or all as of a past time, is not; watchlist
// subscribers come alongside, in order of subject, partner, reason.
func testSubscribers(t *testing.T, s PushStore) {
	ctx := t.Context()
	for _, batch := range [][]evidence.Record{{
		checkEvidence(t, "c1", "bank", "S1", at(0)),
		checkOf(t, "c2", "bank", "S1", "b", "", at(time.Hour)),
		checkEvidence(t, "c3", "city", "S1", at(-48*time.Hour)),
		checkEvidence(t, "c4", "bank", "S2", at(0)),
		record(t, "odd"), // a body that is not a check's encoding
	}, {
		checkEvidence(t, "c5", "agency", "S1", at(-30*time.Minute)),
		checkEvidence(t, "c6", "city", "S2", at(-time.Hour)), // the window's first instant
		checkOf(t, "c7", "audit", "S1", "a", "2023-01-01T00:00:00Z", at(0)),
		checkEvidence(t, "c8", "bank", "S4", at(-2*time.Hour)),
	}} {
		if _, err := s.AppendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for partner, subjects := range map[string][]string{"city": {"S2"}, "audit": {"S1"}, "zoo": {"S3"}} {
		if _, _, err := s.WatchSubjects(ctx, partner, subjects, false, at(0)); err != nil {
			t.Fatal(err)
		}
	}
	// city's check of S1 is before the window, audit's as of a past time,
	// S4's before it.
	wantSubscribers(t, s, []string{"S1", "S2", "S4", "S1"}, stored(at(-time.Hour)),
		service.Subscriber{Subject: "S1", Partner: "agency", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S1", Partner: "audit", Reason: service.SubscribedWatchlist},
		service.Subscriber{Subject: "S1", Partner: "bank", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S2", Partner: "bank", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S2", Partner: "city", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S2", Partner: "city", Reason: service.SubscribedWatchlist})
	// A window reaching back further takes city's check of S1 and the
	// check of S4; the re-run as of a past time still subscribes no one.
	wantSubscribers(t, s, []string{"S1", "S4"}, at(-72*time.Hour),
		service.Subscriber{Subject: "S1", Partner: "agency", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S1", Partner: "audit", Reason: service.SubscribedWatchlist},
		service.Subscriber{Subject: "S1", Partner: "bank", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S1", Partner: "city", Reason: service.SubscribedChecked},
		service.Subscriber{Subject: "S4", Partner: "bank", Reason: service.SubscribedChecked})
	if got, err := s.Subscribers(ctx, []string{"S9"}, at(-72*time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("Subscribers of a subject no one checked or watches = %+v, %v", got, err)
	}
}

// wantSubscribers asks s for the subscribers of subjects since since and
// fails unless they are want, in order.
func wantSubscribers(t *testing.T, s PushStore, subjects []string, since time.Time, want ...service.Subscriber) {
	t.Helper()
	got, err := s.Subscribers(t.Context(), subjects, since)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Subscribers(%v, since %s) =\n%+v, want\n%+v", subjects, since.Format(time.RFC3339), got, want)
	}
}

func testWatchlist(t *testing.T, s PushStore) {
	ctx := t.Context()
	n, size, err := s.WatchSubjects(ctx, "bank", []string{"A", "B", "B", "C"}, false, at(0))
	if err != nil || n != 3 || size != 3 {
		t.Fatalf("add: %d changed, size %d, %v; want 3, 3 (a duplicate line is one subject)", n, size, err)
	}
	if n, size, err = s.WatchSubjects(ctx, "bank", []string{"C", "D"}, false, at(0)); err != nil || n != 1 || size != 4 {
		t.Fatalf("add again: %d changed, size %d, %v; want 1, 4", n, size, err)
	}
	if n, size, err = s.WatchSubjects(ctx, "bank", []string{"A", "Z"}, true, at(0)); err != nil || n != 1 || size != 3 {
		t.Fatalf("remove: %d changed, size %d, %v; want 1, 3", n, size, err)
	}
	if n, size, err = s.WatchSubjects(ctx, "other", []string{"B"}, false, at(0)); err != nil || n != 1 || size != 1 {
		t.Fatalf("another partner: %d changed, size %d, %v; want 1, 1 (its own list only)", n, size, err)
	}
	if size, err := s.WatchlistSize(ctx, "bank"); err != nil || size != 3 {
		t.Fatalf("size = %d, %v; want 3", size, err)
	}
	subs, err := s.Subscribers(ctx, []string{"B"}, at(0))
	if err != nil || len(subs) != 2 {
		t.Fatalf("subscribers of B = %+v, %v", subs, err)
	}
	// A large part is one statement.
	big := make([]string, 20_000)
	for i := range big {
		big[i] = fmt.Sprintf("S%08d", i)
	}
	if n, size, err = s.WatchSubjects(ctx, "bank", big, false, at(0)); err != nil || n != int64(len(big)) || size != 3+int64(len(big)) {
		t.Fatalf("large part: %d changed, size %d, %v", n, size, err)
	}
}

// testAuthoritySubscriptions: a department's authorities are replaced
// whole, those kept keep their creation time, Chinese names round-trip
// and are ordered byte-wise on every database, other partners' are
// untouched, and [] ends a subscription.
func testAuthoritySubscriptions(t *testing.T, s PushStore) {
	ctx := t.Context()
	names := func(subs []service.AuthoritySubscription) []string {
		var out []string
		for _, a := range subs {
			out = append(out, a.Partner+":"+a.Authority)
		}
		return out
	}
	if subs, err := s.AuthoritySubscriptions(ctx); err != nil || len(subs) != 0 {
		t.Fatalf("before any = %+v, %v", subs, err)
	}
	if err := s.SetAuthorities(ctx, "ndrc", []string{"国家发展改革委", "财政部"}, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAuthorities(ctx, "customs", []string{"海关总署"}, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAuthorities(ctx, "ndrc", []string{"财政部", "科技部"}, at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Authorities(ctx, "ndrc")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ndrc:科技部", "ndrc:财政部"}; !slices.Equal(names(got), want) {
		t.Fatalf("authorities = %v, want %v (replaced, byte order)", names(got), want)
	}
	for _, a := range got {
		want := stored(at(time.Hour))
		if a.Authority == "财政部" {
			want = stored(at(0)) // kept: its creation time stays
		}
		if !a.CreatedAt.Equal(want) {
			t.Errorf("%s created at %v, want %v", a.Authority, a.CreatedAt, want)
		}
		inUTC(t, "authority "+a.Authority+" created_at", a.CreatedAt)
	}
	all, err := s.AuthoritySubscriptions(ctx)
	if want := []string{"customs:海关总署", "ndrc:科技部", "ndrc:财政部"}; err != nil || !slices.Equal(names(all), want) {
		t.Fatalf("all = %v, %v; want %v", names(all), err, want)
	}
	for _, a := range all {
		inUTC(t, "subscription "+a.Authority+" created_at", a.CreatedAt)
	}
	if err := s.SetAuthorities(ctx, "ndrc", nil, at(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authorities(ctx, "ndrc"); err != nil || len(got) != 0 {
		t.Fatalf("after [] = %+v, %v", got, err)
	}
	if all, err := s.AuthoritySubscriptions(ctx); err != nil || !slices.Equal(names(all), []string{"customs:海关总署"}) {
		t.Fatalf("all after [] = %v, %v", names(all), err)
	}
}

func storedEvent(id, partner string) service.StoredEvent {
	return service.StoredEvent{ID: id, Partner: partner, Kind: service.EventListed, CreatedAt: stored(at(0)),
		Body: fmt.Appendf(nil, `{"id":%q,"kind":"listed"}`, id)}
}

func publish(t *testing.T, s PushStore, evs ...service.StoredEvent) {
	t.Helper()
	mustInsert(t, s, orgEntry(fmt.Sprintf("e-%s", evs[0].ID), "91110000MA00000001"))
	cs := pending(t, s)
	seqs := make([]int64, len(cs))
	for i, c := range cs {
		seqs[i] = c.Seq
	}
	if err := s.PublishEvents(t.Context(), seqs, evs); err != nil {
		t.Fatal(err)
	}
}

func testPublishAndFeed(t *testing.T, s PushStore) {
	ctx := t.Context()
	publish(t, s, storedEvent("ev1", "bank"), storedEvent("ev2", "city"), storedEvent("ev3", "bank"))
	publish(t, s, storedEvent("ev4", "bank"))
	if cs := pending(t, s); len(cs) != 0 {
		t.Fatalf("outbox after publishing: %+v", cs)
	}
	got, err := s.Events(ctx, "bank", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(es []service.StoredEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), []string{"ev1", "ev3", "ev4"}) {
		t.Fatalf("bank's events = %v", ids(got))
	}
	if string(got[0].Body) != `{"id":"ev1","kind":"listed"}` || got[0].Kind != service.EventListed || !got[0].CreatedAt.Equal(stored(at(0))) {
		t.Errorf("event round trip: %+v", got[0])
	}
	inUTC(t, "event created_at", got[0].CreatedAt)
	again, err := s.Events(ctx, "bank", got[0].Seq, 1)
	if err != nil || !slices.Equal(ids(again), []string{"ev3"}) {
		t.Fatalf("after the first, limit 1: %v, %v", ids(again), err)
	}
	if dup := s.PublishEvents(ctx, nil, []service.StoredEvent{storedEvent("ev1", "bank")}); !errors.Is(dup, service.ErrConflict) {
		t.Errorf("duplicate event id: %v, want ErrConflict", dup)
	}
}

func testPublishTwice(t *testing.T, s PushStore) {
	mustInsert(t, s, orgEntry("e1", "91110000MA00000001"))
	cs := pending(t, s)
	if err := s.PublishEvents(t.Context(), []int64{cs[0].Seq}, []service.StoredEvent{storedEvent("a", "bank")}); err != nil {
		t.Fatal(err)
	}
	err := s.PublishEvents(t.Context(), []int64{cs[0].Seq}, []service.StoredEvent{storedEvent("b", "bank")})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("second publication of a row: %v, want ErrConflict", err)
	}
	if evs, _ := s.Events(t.Context(), "bank", 0, 10); len(evs) != 1 {
		t.Fatalf("events = %d, want 1 (the losing publication writes nothing)", len(evs))
	}
}

// testConcurrentPublish: readers polling the feed while publishers commit
// never see a later event before an earlier one commits (no skipped
// cursor).
func testConcurrentPublish(t *testing.T, s PushStore) {
	ctx := t.Context()
	const publishers, each = 4, 10
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				ev := storedEvent(fmt.Sprintf("p%d-%d", p, i), "bank")
				if err := s.PublishEvents(ctx, nil, []service.StoredEvent{ev}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var seen []int64
	cursor := int64(0)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		evs, err := s.Events(ctx, "bank", cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seen = append(seen, e.Seq)
			cursor = e.Seq
		}
	}
	evs, err := s.Events(ctx, "bank", cursor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		seen = append(seen, e.Seq)
	}
	if len(seen) != publishers*each {
		t.Fatalf("a reader following the cursor saw %d events, want %d", len(seen), publishers*each)
	}
}

func testDeliveries(t *testing.T, s PushStore) {
	ctx := t.Context()
	if _, err := s.Webhook(ctx, "bank"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("no webhook: %v", err)
	}
	w := service.Webhook{Partner: "bank", URL: "https://bank.example/hook", CreatedAt: stored(at(0)), UpdatedAt: stored(at(0))}
	if err := s.SetWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.URL, w.UpdatedAt = "https://bank.example/hook2", stored(at(time.Minute))
	if err := s.SetWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Webhook(ctx, "bank"); err != nil || got.URL != w.URL || !got.CreatedAt.Equal(w.CreatedAt) || !got.UpdatedAt.Equal(w.UpdatedAt) {
		t.Fatalf("Webhook = %+v, %v; want %+v", got, err, w)
	} else {
		inUTC(t, "webhook created_at", got.CreatedAt)
		inUTC(t, "webhook updated_at", got.UpdatedAt)
	}
	// bank has a webhook, city not: only bank's event gets a delivery.
	publish(t, s, storedEvent("ev1", "bank"), storedEvent("ev2", "city"))
	now := at(time.Hour)
	ds, err := s.ClaimDeliveries(ctx, now, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].Event.ID != "ev1" || ds[0].URL != w.URL || ds[0].State != service.DeliveryPending {
		t.Fatalf("claim = %+v, %v", ds, err)
	}
	deliveryInUTC(t, ds[0])
	if again, err := s.ClaimDeliveries(ctx, now, time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("a leased delivery was claimed again: %+v, %v", again, err)
	}
	// A failed attempt: due again later.
	a := service.DeliveryAttempt{EventSeq: ds[0].Event.Seq, Attempt: 1, At: stored(now), Status: 503, Error: "status 503", Duration: time.Millisecond}
	if err := s.RecordAttempt(ctx, a, service.DeliveryPending, stored(now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if early, _ := s.ClaimDeliveries(ctx, now.Add(time.Second), time.Minute, 10); len(early) != 0 {
		t.Fatalf("claimed before it is due: %+v", early)
	}
	later := now.Add(2 * time.Minute)
	ds, err = s.ClaimDeliveries(ctx, later, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].Attempts != 1 || ds[0].LastStatus != 503 {
		t.Fatalf("claim when due = %+v, %v", ds, err)
	}
	a.Attempt, a.At = 2, stored(later)
	if err := s.RecordAttempt(ctx, a, service.DeliveryDead, stored(later)); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Deliveries(ctx, service.DeliveryFilter{Partner: "bank", State: service.DeliveryDead, Limit: 10})
	if err != nil || len(dead) != 1 || dead[0].Attempts != 2 {
		t.Fatalf("dead deliveries = %+v, %v", dead, err)
	}
	deliveryInUTC(t, dead[0])
	if ids, err := s.ReplayDeliveries(ctx, "city", nil, stored(later)); err != nil || len(ids) != 0 {
		t.Fatalf("replay of another partner: %v, %v", ids, err)
	}
	ids, err := s.ReplayDeliveries(ctx, "bank", []string{"ev1"}, stored(later))
	if err != nil || !slices.Equal(ids, []string{"ev1"}) {
		t.Fatalf("replay = %v, %v", ids, err)
	}
	ds, err = s.ClaimDeliveries(ctx, later, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].Attempts != 0 {
		t.Fatalf("claim after replay = %+v, %v", ds, err)
	}
	a.At = stored(later)
	if err := s.RecordAttempt(ctx, a, service.DeliveryDelivered, stored(later)); err != nil {
		t.Fatalf("an attempt after a replay: %v", err)
	}
	if got, _ := s.Deliveries(ctx, service.DeliveryFilter{State: service.DeliveryDelivered, Limit: 10}); len(got) != 1 {
		t.Fatalf("delivered = %+v", got)
	}
	if err := s.DeleteWebhook(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Webhook(ctx, "bank"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func testPrune(t *testing.T, s PushStore) {
	ctx := t.Context()
	old := storedEvent("old", "bank")
	old.CreatedAt = stored(at(-48 * time.Hour))
	if err := s.SetWebhook(ctx, service.Webhook{Partner: "bank", URL: "https://b.example", CreatedAt: at(0), UpdatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	publish(t, s, old, storedEvent("new", "bank"))
	if _, err := s.AppendBatch(ctx, []evidence.Record{checkEvidence(t, "c1", "bank", "S1", at(-48*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneEvents(ctx, at(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	evs, _ := s.Events(ctx, "bank", 0, 10)
	if len(evs) != 1 || evs[0].ID != "new" {
		t.Fatalf("after pruning: %+v", evs)
	}
	// Pruning events leaves the checks: a window reaching back to the
	// check still finds it.
	if subs, err := s.Subscribers(ctx, []string{"S1"}, at(-72*time.Hour)); err != nil || len(subs) != 1 || subs[0].Partner != "bank" {
		t.Fatalf("subscribers after pruning events = %+v, %v; want bank's check", subs, err)
	}
}

func testSweepExpired(t *testing.T, s PushStore) {
	ctx := t.Context()
	soon, later, revoked := orgEntry("soon", "S1"), orgEntry("later", "S2"), orgEntry("gone", "S3")
	soon.ValidUntil, later.ValidUntil, revoked.ValidUntil = ptr(at(time.Hour)), ptr(at(10*time.Hour)), ptr(at(time.Hour))
	revoked.RevokedAt = ptr(at(time.Minute))
	mustInsert(t, s, soon, later, revoked)
	if n, err := s.SweepExpired(ctx, stored(at(0))); err != nil || n != 0 {
		t.Fatalf("first sweep: %d, %v; want 0 (it only starts the sweep)", n, err)
	}
	if n, err := s.SweepExpired(ctx, stored(at(2*time.Hour))); err != nil || n != 1 {
		t.Fatalf("sweep past one validity end: %d, %v; want 1 (a revoked entry does not expire)", n, err)
	}
	if n, err := s.SweepExpired(ctx, stored(at(3*time.Hour))); err != nil || n != 0 {
		t.Fatalf("sweep again: %d, %v; want 0", n, err)
	}
	var expired []service.OutboxChange
	for _, c := range pending(t, s) {
		if c.Kind == service.EventExpired {
			expired = append(expired, c)
		}
	}
	if len(expired) != 1 || expired[0].EntryID != "soon" || !expired[0].RecordedAt.Equal(stored(at(time.Hour))) {
		t.Fatalf("expired outbox rows = %+v", expired)
	}
}

// MigrationChecks are checks a database holds when it is migrated from a
// release whose fan-out read checked_subjects: two partners on a subject,
// two actions of one partner, a check before the window (since) and a
// re-run as of a past time, audit's only check of S1.
func MigrationChecks(t testing.TB) (recs []evidence.Record, subjects []string, since time.Time) {
	return []evidence.Record{
		checkEvidence(t, "m1", "bank", "S1", at(0)),
		checkOf(t, "m2", "bank", "S1", "b", "", at(time.Hour)),
		checkEvidence(t, "m3", "city", "S1", at(-48*time.Hour)),
		checkEvidence(t, "m4", "city", "S2", at(-30*time.Minute)),
		checkEvidence(t, "m5", "agency", "S2", at(0)),
		checkOf(t, "m6", "audit", "S1", "a", "2023-01-01T00:00:00Z", at(0)),
	}, []string{"S1", "S2", "S3"}, stored(at(-time.Hour))
}

// CheckMigratedSubscribers checks that s, migrated with MigrationChecks in
// it, finds the subscribers the release before found in checked_subjects
// (before: subject and partner, ordered, of the rows checked since), but
// for the re-run as of a past time, which no longer subscribes.
func CheckMigratedSubscribers(t *testing.T, before [][2]string, s PushStore) {
	t.Helper()
	if want := [][2]string{{"S1", "audit"}, {"S1", "bank"}, {"S2", "agency"}, {"S2", "city"}}; !slices.Equal(before, want) {
		t.Fatalf("before the migration checked_subjects held %v since the window, want %v", before, want)
	}
	_, subjects, since := MigrationChecks(t)
	got, err := s.Subscribers(t.Context(), subjects, since)
	if err != nil {
		t.Fatal(err)
	}
	var want []service.Subscriber
	for _, b := range before {
		if b[1] != "audit" {
			want = append(want, service.Subscriber{Subject: b[0], Partner: b[1], Reason: service.SubscribedChecked})
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the migration Subscribers = %+v, want %+v (all but audit's re-run as of a past time)", got, want)
	}
}

// inUTC checks that a time a store returns is in UTC, as every time of
// the API is: PostgreSQL's driver returns timestamptz in the process's
// zone (TZ=Asia/Shanghai gave +08:00 in answers) unless the store says
// otherwise.
func inUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s = %v: not in UTC", what, tm)
	}
}

// deliveryInUTC checks the times of a delivery.
func deliveryInUTC(t *testing.T, d service.Delivery) {
	t.Helper()
	inUTC(t, "delivery next_at", d.NextAt)
	inUTC(t, "delivery updated_at", d.UpdatedAt)
	inUTC(t, "delivery's event created_at", d.Event.CreatedAt)
}
