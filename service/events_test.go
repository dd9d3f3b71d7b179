package service_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// pushWorld is the lifecycle world with push: a bank partner that may
// check procurement, and the fan-out and deliverer over the same store.
type pushWorld struct {
	*lcWorld
	events    *service.Events
	deliverer *service.Deliverer
	watch     *service.Watchlists
	bank      service.Caller
}

func newPushWorld(t *testing.T, start time.Time, opts ...service.DelivererOption) *pushWorld {
	t.Helper()
	w := newLCWorld(t, start)
	bank := service.Partner{ID: "p-bank", ClientID: "bank", Name: "银行", Role: service.RolePartner,
		Actions: []string{"government_procurement"}, Status: service.PartnerActive, CreatedAt: start, UpdatedAt: start, Version: 1}
	if err := w.store.InsertPartner(context.Background(), bank); err != nil {
		t.Fatal(err)
	}
	audit := service.NewAudit(w.audit)
	_, key, _ := ed25519.GenerateKey(nil)
	return &pushWorld{
		lcWorld:   w,
		events:    service.NewEvents(w.store, w.store, w.store, w.lifecycle.Catalog(), service.WithEventsClock(w.clock.Now), service.WithEventsAudit(audit)),
		deliverer: service.NewDeliverer(w.store, service.NewWebhookSigner(key), loopbackSender(t), append([]service.DelivererOption{service.WithDeliveryAudit(audit)}, opts...)...),
		watch:     service.NewWatchlists(w.store, service.WithWatchlistsAudit(audit)),
		bank:      service.CallerOf(bank),
	}
}

func (w *pushWorld) fanOut() {
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

func (w *pushWorld) feed(after string) []service.Event {
	w.t.Helper()
	page, err := w.events.Feed(context.Background(), w.bank, after, 100, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]service.Event, len(page.Events))
	for i, raw := range page.Events {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	return out
}

func measureIDs(ms []service.MeasureView) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// A partner that checked a subject is told, in order, that it was listed
// (with the measure newly in force for its action), suspended by an
// objection and restored; replay from a cursor gives the same events;
// subjects it neither checked nor watches stay silent.
func TestEventsFollowLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	if _, err := w.checker.Check(ctx, w.bank, service.CheckRequest{Subject: lcOrg, Action: "government_procurement"}); err != nil {
		t.Fatal(err)
	}
	e := w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	w.create(service.EntryInput{Subject: lcOrg2, List: "safety_production_blacklist", OriginatingDepartment: "应急管理局",
		Reason: "r", LegalBasis: "b", DecidedAt: cstAt(2026, 1, 4, 0), PublishedAt: cstAt(2026, 1, 4, 0)})
	w.fanOut()
	evs := w.feed("")
	if len(evs) != 1 || evs[0].Kind != service.EventListed || evs[0].Subject.ID != lcOrg || evs[0].EntryID != e.ID {
		t.Fatalf("events after the listing = %+v", evs)
	}
	ch := evs[0].Changes
	if len(ch) != 1 || ch[0].Action != "government_procurement" || ch[0].Outcome != policy.OutcomeRestrict ||
		!slices.Contains(measureIDs(ch[0].InForce), "sp-18-procurement") || len(ch[0].OutOfForce) != 0 {
		t.Fatalf("changes = %+v", ch)
	}
	if !slices.Equal(evs[0].Subscription, []string{service.SubscribedChecked}) {
		t.Errorf("subscription = %v", evs[0].Subscription)
	}

	w.clock.Set(cstAt(2026, 3, 2, 10))
	_, o, err := w.lifecycle.FileObjection(ctx, e.ID, service.ObjectionInput{FiledBy: "originating_department", Grounds: "g"})
	if err != nil {
		t.Fatal(err)
	}
	w.fanOut()
	w.clock.Set(cstAt(2026, 3, 12, 10))
	if _, _, err := w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "rejected"}); err != nil {
		t.Fatal(err)
	}
	w.fanOut()
	all := w.feed("")
	var kinds []service.EventKind
	for _, ev := range all {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Equal(kinds, []service.EventKind{service.EventListed, service.EventSuspended, service.EventRestored}) {
		t.Fatalf("kinds = %v", kinds)
	}
	if !slices.Contains(measureIDs(all[1].Changes[0].OutOfForce), "sp-18-procurement") ||
		!slices.Contains(measureIDs(all[2].Changes[0].InForce), "sp-18-procurement") {
		t.Fatalf("suspension / restoration changes: %+v / %+v", all[1].Changes, all[2].Changes)
	}
	replay := w.feed(all[0].Cursor)
	if len(replay) != 2 || replay[0].ID != all[1].ID || replay[1].ID != all[2].ID {
		t.Fatalf("replay from the first cursor = %+v", replay)
	}
	if again := w.feed(""); !slices.EqualFunc(again, all, func(a, b service.Event) bool { return a.ID == b.ID && a.Cursor == b.Cursor }) {
		t.Fatal("a second read of the feed differs")
	}
	if _, err := w.events.Feed(ctx, w.bank, "x1", 10, 0); !errors.Is(err, service.ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if !slices.Contains(w.acts(), string(service.ActEventsPublished)) {
		t.Errorf("publication not in the evidence log: %v", w.acts())
	}
}

// A watchlist upload subscribes without a check; a long-poll wakes when
// the event is published; a partner not entitled to persons is never told
// about a person.
func TestWatchlistAndLongPoll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	w.bank.SubjectKinds = []policy.SubjectKind{policy.KindOrganization}
	res, err := w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader("subject\n"+lcOrg+"\n\n# comment\n"+lcOrg+"\n"))
	if err != nil || res.Received != 2 || res.Changed != 1 || res.Size != 1 {
		t.Fatalf("upload = %+v, %v", res, err)
	}
	_, err = w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader(lcOrg2+"\nnot-a-subject\n"+lcPerson+"\n"))
	var wl *service.WatchlistError
	if !errors.As(err, &wl) || len(wl.Lines) != 2 || wl.Lines[0].Line != 2 || wl.Lines[1].Line != 3 {
		t.Fatalf("bad lines: %v", err)
	}
	if n, _ := w.watch.Size(ctx, w.bank); n != 1 {
		t.Fatalf("a rejected upload changed the watchlist: size %d", n)
	}
	got := make(chan []json.RawMessage, 1)
	go func() {
		page, err := w.events.Feed(ctx, w.bank, "", 10, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- page.Events
	}()
	time.Sleep(100 * time.Millisecond)
	w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	w.fanOut()
	select {
	case evs := <-got:
		if len(evs) != 1 || !strings.Contains(string(evs[0]), `"subscription":["watchlist"]`) {
			t.Fatalf("long-poll got %s", evs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not wake on publication")
	}
	if _, err := w.watch.Update(ctx, w.bank, service.WatchRemove, strings.NewReader(lcOrg)); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.watch.Size(ctx, w.bank); n != 0 {
		t.Fatalf("after removal: %d", n)
	}
}

// Webhook delivery: signed with the published key, retried with backoff
// while the receiver fails, dead after the last attempt, replayed by an
// administrator and delivered once more; state changes in the evidence log.
func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu     sync.Mutex
		fail   = true
		bodies [][]byte
	)
	w := newPushWorld(t, cstAt(2026, 1, 4, 9), service.WithDeliveryBackoff(time.Millisecond, time.Millisecond), service.WithDeliveryAttempts(3))
	var jwks struct {
		Keys []struct{ X string } `json:"keys"`
	}
	if err := json.Unmarshal(w.deliverer.Signer().JWKS(), &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("JWKS: %v", err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].X)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get(service.HeaderWebhookID), r.Header.Get(service.HeaderWebhookTimestamp)
		sig, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get(service.HeaderWebhookSignature), "v1a,"))
		if !ed25519.Verify(ed25519.PublicKey(pub), []byte(id+"."+ts+"."+string(body)), sig) {
			t.Error("signature does not verify with the published key")
		}
		if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
			t.Errorf("timestamp %q", ts)
		}
		mu.Lock()
		defer mu.Unlock()
		if fail {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		bodies = append(bodies, body)
	}))
	defer srv.Close()
	if _, err := w.deliverer.SetWebhook(ctx, w.bank, "ftp://x"); !errors.Is(err, service.ErrInvalidWebhook) {
		t.Fatalf("ftp webhook: %v", err)
	}
	if _, err := w.deliverer.SetWebhook(ctx, w.bank, srv.URL+"/hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader(lcOrg)); err != nil {
		t.Fatal(err)
	}
	w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	w.fanOut()
	for range 10 {
		if _, err := w.deliverer.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dead, err := w.deliverer.Deliveries(ctx, w.bank, service.DeliveryFilter{State: service.DeliveryDead})
	if err != nil || len(dead) != 1 || dead[0].Attempts != 3 || dead[0].LastStatus != 503 {
		t.Fatalf("dead = %+v, %v", dead, err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	ids, err := w.deliverer.Replay(ctx, "bank", nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("replay = %v, %v", ids, err)
	}
	if _, err := w.deliverer.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(bodies)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("received %d bodies after replay, want 1", n)
	}
	var ev service.Event
	if err := json.Unmarshal(bodies[0], &ev); err != nil || ev.ID != ids[0] || ev.Cursor == "" {
		t.Fatalf("body %s: %v", bodies[0], err)
	}
	acts := w.acts()
	for _, a := range []service.Act{service.ActWebhookSet, service.ActWebhookDeadLetter, service.ActWebhookReplayed, service.ActWebhookDelivered, service.ActWatchlistChanged} {
		if !slices.Contains(acts, string(a)) {
			t.Errorf("%s not in the evidence log: %v", a, acts)
		}
	}
}

// The end of an entry's validity, which writes nothing, is found by the
// sweep; an entry its list holds until an exit application is decided
// has not expired and yields no event (otherwise: "expired", with the
// measures out of force).
func TestEventsOnExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	if _, err := w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader(lcOrg)); err != nil {
		t.Fatal(err)
	}
	e := w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	if e.ValidUntil == nil {
		t.Fatal("the entry has no validity end")
	}
	if _, err := w.events.SweepExpired(ctx); err != nil {
		t.Fatal(err)
	}
	w.fanOut()
	w.clock.Set(e.ValidUntil.Add(time.Hour))
	if n, err := w.events.SweepExpired(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the validity end: %d, %v", n, err)
	}
	w.fanOut()
	evs := w.feed("")
	if e.ExitByApplication {
		// The list holds its entries until an exit application is
		// decided: the end of validity changes nothing, and says nothing.
		if len(evs) != 1 || evs[0].Kind != service.EventListed {
			t.Fatalf("events of an entry held for an exit application = %+v", evs)
		}
		return
	}
	if len(evs) != 2 || evs[1].Kind != service.EventExpired || evs[1].EntryStatus != string(policy.StatusExpired) ||
		!slices.Contains(measureIDs(evs[1].Changes[0].OutOfForce), "sp-18-procurement") {
		t.Fatalf("events = %+v", evs)
	}
}
