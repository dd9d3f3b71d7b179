package service_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// narrowPush is push over a narrowWorld's store.
type narrowPush struct {
	*narrowWorld
	events *service.Events
	watch  *service.Watchlists
}

func newNarrowPush(w *narrowWorld) *narrowPush {
	return &narrowPush{narrowWorld: w,
		events: service.NewEvents(w.store, w.store, w.store, w.checker.Catalog(), service.WithEventsAudit(service.NewAudit(w.audit))),
		watch:  service.NewWatchlists(w.store, service.WithWatchlistsAudit(service.NewAudit(w.audit)))}
}

func (w *narrowPush) fanOut() {
	w.t.Helper()
	for {
		n, err := w.events.FanOut(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// watchBoth puts the company and its legal representative on the
// partner's watchlist and lists the company, the person named as its
// legal representative: one change, an event about each.
func (w *narrowPush) watchBoth(c service.Caller) {
	w.t.Helper()
	if _, err := w.watch.Update(context.Background(), c, service.WatchAdd, strings.NewReader(lcOrg+"\n"+lcPerson+"\n")); err != nil {
		w.t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if _, err := w.entries.Create(context.Background(), safetyEntry(past,
		policy.ResponsiblePerson{ID: lcPerson, Role: policy.RoleLegalRepresentative})); err != nil {
		w.t.Fatal(err)
	}
	w.fanOut()
}

// feedOf is a feed page of c from after, its events decoded.
func (w *narrowPush) feedOf(c service.Caller, after string, wait time.Duration) ([]service.Event, string) {
	w.t.Helper()
	page, err := w.events.Feed(context.Background(), c, after, 100, wait)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]service.Event, len(page.Events))
	for i, raw := range page.Events {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	return out, page.Next
}

func eventKinds(evs []service.Event) []policy.SubjectKind {
	var out []policy.SubjectKind
	for _, e := range evs {
		out = append(out, e.Subject.Kind)
	}
	return out
}

// The feed serves a partner only the events its scope, as it is now,
// covers: once persons are taken from it, not the events about a person
// made before (nor any new one: the fan-out makes none, though the
// person stays on its watchlist); once the actions the events told about
// are taken, none of them. The cursor moves past what it passes over, a
// long-poll included.
func TestFeedFollowsNarrowedScope(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, nw *narrowWorld) {
		w := newNarrowPush(nw)
		a := w.fullPartner("收窄前关注自然人的银行")
		w.watchBoth(service.CallerOf(a))
		all, last := w.feedOf(service.CallerOf(a), "", 0)
		if len(all) != 2 {
			t.Fatalf("events before the narrowing: %v, want the company's and the person's", eventKinds(all))
		}

		orgsOnly := w.narrow(a.ClientID, nil, []policy.SubjectKind{policy.KindOrganization}, "")
		evs, next := w.feedOf(orgsOnly, "", 0)
		if len(evs) != 1 || evs[0].Subject.Kind != policy.KindOrganization || evs[0].Subject.ID != lcOrg {
			t.Errorf("events once persons were taken: %v, want the company's only", eventKinds(evs))
		}
		if next != last {
			t.Errorf("next %s, want %s: past the event passed over", next, last)
		}
		// A new change about the watched person tells the partner nothing.
		past := time.Now().Add(-time.Hour)
		if _, err := w.entries.Create(context.Background(), service.EntryInput{Subject: lcPerson, List: "court_dishonest_debtor",
			OriginatingDepartment: narrowPersonDept, Reason: narrowPersonReason, LegalBasis: "《民事诉讼法》第二百六十二条",
			DecidedAt: past, PublishedAt: past}); err != nil {
			t.Fatal(err)
		}
		w.fanOut()
		if evs, _ := w.feedOf(orgsOnly, last, 0); len(evs) != 0 {
			t.Errorf("events about the watched person after persons were taken: %v", eventKinds(evs))
		}

		noneOfTheirs := w.narrow(a.ClientID, []string{"financial_institution_setup"}, nil, "")
		evs, next = w.feedOf(noneOfTheirs, "", 0)
		if len(evs) != 0 || next != last {
			t.Errorf("events once their actions were taken: %v, next %s; want none, next %s", eventKinds(evs), next, last)
		}
		start := time.Now()
		evs, next = w.feedOf(noneOfTheirs, "", 300*time.Millisecond)
		if len(evs) != 0 || next != last || time.Since(start) > 10*time.Second {
			t.Errorf("long-poll once their actions were taken: %v, next %s; want none, next %s", eventKinds(evs), next, last)
		}
	})
}

// A delivery pending when its partner loses the kind of its subject (the
// receiver was down) is never sent: the next attempt skips it, recorded
// in its delivery log and a webhook_skipped act, neither retried nor
// dead-lettered as the receiver's failure; the other is delivered.
func TestDeliveriesFollowNarrowedScope(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, nw *narrowWorld) {
		ctx := context.Background()
		var (
			mu       sync.Mutex
			down     = true
			received []service.Event
		)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				rw.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var ev service.Event
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Error(err)
			}
			received = append(received, ev)
		}))
		defer srv.Close()
		w := newNarrowPush(nw)
		_, key, _ := ed25519.GenerateKey(nil)
		deliverer := service.NewDeliverer(w.store, service.NewWebhookSigner(key), loopbackSender(t),
			service.WithDeliveryAudit(service.NewAudit(w.audit)), service.WithDeliveryBackoff(time.Millisecond, time.Millisecond),
			service.WithDeliveryAttempts(10))
		a := w.fullPartner("接收端宕机的银行")
		if _, err := deliverer.SetWebhook(ctx, service.CallerOf(a), srv.URL+"/hook"); err != nil {
			t.Fatal(err)
		}
		w.watchBoth(service.CallerOf(a))
		if n, err := deliverer.DeliverDue(ctx); err != nil || n != 2 {
			t.Fatalf("first attempts: %d, %v", n, err)
		}

		orgsOnly := w.narrow(a.ClientID, nil, []policy.SubjectKind{policy.KindOrganization}, "")
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // past the backoff
		if n, err := deliverer.DeliverDue(ctx); err != nil || n != 2 {
			t.Fatalf("attempts after the narrowing: %d, %v", n, err)
		}
		mu.Lock()
		got := eventKinds(received)
		mu.Unlock()
		if len(got) != 1 || got[0] != policy.KindOrganization {
			t.Fatalf("the receiver got events about %v, want the company's only", got)
		}
		skipped, err := deliverer.Deliveries(ctx, orgsOnly, service.DeliveryFilter{State: service.DeliverySkipped})
		if err != nil || len(skipped) != 1 || skipped[0].LastError != service.SkippedOutOfScope || skipped[0].Attempts != 2 || skipped[0].LastStatus != 0 {
			t.Fatalf("skipped deliveries: %+v, %v", skipped, err)
		}
		if dead, err := deliverer.Deliveries(ctx, orgsOnly, service.DeliveryFilter{State: service.DeliveryDead}); err != nil || len(dead) != 0 {
			t.Errorf("dead letters: %+v, %v; want none (not the receiver's failure)", dead, err)
		}
		var reason any
		for _, b := range w.audit.bodies(t) {
			if b.Act == service.ActWebhookSkipped {
				reason = b.Details["reason"]
			}
		}
		if reason != service.SkippedOutOfScope {
			t.Errorf("webhook_skipped reason %v, want %q", reason, service.SkippedOutOfScope)
		}
		// Nothing is due any more: no pass sends it later.
		time.Sleep(5 * time.Millisecond)
		if n, err := deliverer.DeliverDue(ctx); err != nil || n != 0 {
			t.Fatalf("a later pass: %d, %v", n, err)
		}
	})
}

// Rows of a kind taken from the partner stay on its watchlist (they tell
// it nothing: TestFeedFollowsNarrowedScope) and it may remove them, but
// not add more.
func TestWatchlistRowsOfANarrowedKindCanBeRemoved(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, nw *narrowWorld) {
		ctx := context.Background()
		w := newNarrowPush(nw)
		a := w.fullPartner("收窄后清理关注名单的银行")
		if _, err := w.watch.Update(ctx, service.CallerOf(a), service.WatchAdd, strings.NewReader(lcOrg+"\n"+lcPerson+"\n")); err != nil {
			t.Fatal(err)
		}
		orgsOnly := w.narrow(a.ClientID, nil, []policy.SubjectKind{policy.KindOrganization}, "")
		if n, err := w.watch.Size(ctx, orgsOnly); err != nil || n != 2 {
			t.Fatalf("watchlist after the narrowing: %d, %v; want its rows kept", n, err)
		}
		if _, err := w.watch.Update(ctx, orgsOnly, service.WatchAdd, strings.NewReader(lcPerson+"\n")); !errors.Is(err, service.ErrInvalidWatchlist) {
			t.Errorf("adding a person once persons were taken: %v, want ErrInvalidWatchlist", err)
		}
		res, err := w.watch.Update(ctx, orgsOnly, service.WatchRemove, strings.NewReader(lcPerson+"\n"))
		if err != nil || res.Changed != 1 || res.Size != 1 {
			t.Fatalf("removing the person once persons were taken: %+v, %v", res, err)
		}
	})
}
