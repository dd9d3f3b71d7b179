package service_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// deliveryStore is what the delivery tests write to directly: webhooks,
// events and the partners they belong to.
type deliveryStore interface {
	service.PushStore
	InsertPartner(ctx context.Context, p service.Partner) error
	PartnerByClientID(ctx context.Context, clientID string) (service.Partner, error)
}

func openSQLiteDeliveries(t *testing.T) deliveryStore {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openPostgresDeliveries opens n stores (pools of their own, as n
// replicas have) on one fresh schema.
func openPostgresDeliveries(t *testing.T, n int) []deliveryStore {
	t.Helper()
	url, _ := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	var out []deliveryStore
	for range n {
		st, err := postgres.Open(t.Context(), url, postgres.WithSchema(schema), postgres.WithMaxConns(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// eachDeliveryStore runs fn on SQLite and on PostgreSQL.
func eachDeliveryStore(t *testing.T, fn func(t *testing.T, st deliveryStore)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, openSQLiteDeliveries(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, openPostgresDeliveries(t, 1)[0]) })
}

// hookPartner adds an active partner with a webhook at url.
func hookPartner(t *testing.T, st deliveryStore, id, url string) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := service.Partner{ID: "p-" + id, ClientID: id, Name: id, Role: service.RolePartner, Actions: []string{"government_procurement"},
		Status: service.PartnerActive, CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := st.InsertPartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := st.SetWebhook(ctx, service.Webhook{Partner: id, URL: url, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// publishFor publishes n events for partner, each with its delivery.
func publishFor(t *testing.T, st deliveryStore, partner string, n int) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	evs := make([]service.StoredEvent, n)
	for i := range evs {
		evs[i] = service.StoredEvent{ID: fmt.Sprintf("evt_%s_%03d", partner, i), Partner: partner, Kind: service.EventListed,
			CreatedAt: now, Body: []byte(`{}`)}
	}
	if err := st.PublishEvents(t.Context(), nil, evs); err != nil {
		t.Fatal(err)
	}
}

// An attempt is recorded only by the claim that still holds its delivery:
// a replica whose lease ran out, and whose delivery another claimed since,
// records nothing over the other's outcome.
func TestDeliveryAttemptRecordedOnlyUnderItsLease(t *testing.T) {
	t.Parallel()
	eachDeliveryStore(t, func(t *testing.T, st deliveryStore) {
		ctx := t.Context()
		hookPartner(t, st, "bank", "https://bank.example/hook")
		publishFor(t, st, "bank", 1)
		now := time.Now().UTC()
		first, err := st.ClaimDeliveries(ctx, now, time.Minute, 8)
		if err != nil || len(first) != 1 || first[0].LeasedUntil.IsZero() {
			t.Fatalf("first claim = %+v, %v", first, err)
		}
		// The first claim's lease runs out while its attempt is in flight;
		// another replica claims the delivery.
		second, err := st.ClaimDeliveries(ctx, now.Add(2*time.Minute), time.Minute, 8)
		if err != nil || len(second) != 1 || second[0].LeasedUntil.Equal(first[0].LeasedUntil) {
			t.Fatalf("second claim = %+v, %v", second, err)
		}
		late := service.DeliveryAttempt{EventSeq: first[0].Event.Seq, Attempt: 1, At: now, Status: 200, Duration: time.Second,
			Lease: first[0].LeasedUntil}
		if err := st.RecordAttempt(ctx, late, service.DeliveryDelivered, now); !errors.Is(err, service.ErrDeliveryLeaseLost) {
			t.Fatalf("an attempt under a lost lease: %v, want ErrDeliveryLeaseLost", err)
		}
		got, err := st.Deliveries(ctx, service.DeliveryFilter{Partner: "bank", Limit: 10})
		if err != nil || len(got) != 1 || got[0].State != service.DeliveryPending || got[0].Attempts != 0 {
			t.Fatalf("after the lost lease's attempt: %+v, %v; want it pending, unattempted", got, err)
		}
		held := service.DeliveryAttempt{EventSeq: second[0].Event.Seq, Attempt: 1, At: now.Add(2 * time.Minute), Status: 503,
			Error: "HTTP 503", Duration: time.Second, Lease: second[0].LeasedUntil}
		if err := st.RecordAttempt(ctx, held, service.DeliveryPending, now.Add(3*time.Minute)); err != nil {
			t.Fatalf("an attempt under the lease held: %v", err)
		}
		got, err = st.Deliveries(ctx, service.DeliveryFilter{Partner: "bank", Limit: 10})
		if err != nil || len(got) != 1 || got[0].Attempts != 1 || got[0].LastStatus != 503 {
			t.Fatalf("after the held lease's attempt: %+v, %v", got, err)
		}
		// Recording released the lease: the same claim cannot record twice.
		if err := st.RecordAttempt(ctx, held, service.DeliveryDelivered, now); !errors.Is(err, service.ErrDeliveryLeaseLost) {
			t.Fatalf("a second record under one claim: %v", err)
		}
	})
}

// A claim with a share leases no more of one partner's deliveries than
// its room, and reaches past them to the other partners'.
func TestDeliveryClaimSharesAmongPartners(t *testing.T) {
	t.Parallel()
	eachDeliveryStore(t, func(t *testing.T, st deliveryStore) {
		ctx := t.Context()
		for _, p := range []string{"slow", "other", "third"} {
			hookPartner(t, st, p, "https://"+p+".example/hook")
		}
		publishFor(t, st, "slow", 20)
		publishFor(t, st, "other", 3)
		publishFor(t, st, "third", 1)
		count := func(ds []service.Delivery) map[string]int {
			n := map[string]int{}
			for _, d := range ds {
				n[d.Event.Partner]++
			}
			return n
		}
		now := time.Now().UTC()
		ds, err := st.ClaimDeliveries(ctx, now, time.Minute, 8, service.DeliveryShare{PerPartner: 4, Busy: map[string]int{"slow": 1}})
		if got := count(ds); err != nil || len(ds) != 7 || got["slow"] != 3 || got["other"] != 3 || got["third"] != 1 {
			t.Fatalf("claim = %v, %v; want 3 of slow (1 in flight), 3 of other, 1 of third", got, err)
		}
		ds, err = st.ClaimDeliveries(ctx, now, time.Minute, 8, service.DeliveryShare{PerPartner: 4, Busy: map[string]int{"slow": 4}})
		if err != nil || len(ds) != 0 {
			t.Fatalf("claim with slow at its bound = %v, %v; want none", count(ds), err)
		}
		ds, err = st.ClaimDeliveries(ctx, now, time.Minute, 8)
		if got := count(ds); err != nil || len(ds) != 8 || got["slow"] != 8 {
			t.Fatalf("claim without a share = %v, %v; want 8 of slow", got, err)
		}
	})
}

// receiver is a webhook receiver that answers after delay and keeps every
// request's arrival by event id.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	arrived map[string][]time.Time
}

func newReceiver(t *testing.T, delay time.Duration) *receiver {
	t.Helper()
	r := &receiver{arrived: map[string][]time.Time{}}
	release := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		id := req.Header.Get(service.HeaderWebhookID)
		r.arrived[id] = append(r.arrived[id], time.Now())
		r.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-release:
		}
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(release) })
	return r
}

func (r *receiver) requests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for id, at := range r.arrived {
		out[id] = len(at)
	}
	return out
}

func (r *receiver) first(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.arrived[id]
	if len(at) == 0 {
		return time.Time{}, false
	}
	return at[0], true
}

func runDeliverer(t *testing.T, d *service.Deliverer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// One partner's slow receiver does not hold up another's webhooks: with
// 60 events queued for a receiver that answers after 10 s (timeout 1 s),
// an event for another partner arrives within about one attempt timeout,
// not after the slow partner's queue.
func TestSlowPartnerDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	st := openSQLiteDeliveries(t)
	slow, fast := newReceiver(t, 10*time.Second), newReceiver(t, 0)
	hookPartner(t, st, "slow", slow.srv.URL+"/hook")
	hookPartner(t, st, "fast", fast.srv.URL+"/hook")
	publishFor(t, st, "slow", 60)
	time.Sleep(time.Millisecond) // the fast partner's event is due after the slow one's
	publishFor(t, st, "fast", 1)
	_, key, _ := ed25519.GenerateKey(nil)
	d := service.NewDeliverer(st, service.NewWebhookSigner(key), loopbackSender(t), service.WithDeliveryTimeout(timeout),
		service.WithDeliveryInterval(20*time.Millisecond), service.WithDeliveryBackoff(time.Minute, time.Minute))
	start := time.Now()
	runDeliverer(t, d)
	for {
		if at, ok := fast.first("evt_fast_000"); ok {
			if took := at.Sub(start); took > timeout*3/2 {
				t.Fatalf("the fast partner's event arrived after %s, behind the slow partner's queue", took)
			} else {
				t.Logf("the fast partner's event arrived after %s", took)
			}
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the fast partner's event never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two replicas on one PostgreSQL database, with a receiver that answers
// 200 just within the timeout, deliver each event once: a delivery is
// claimed only for a worker that starts it at once, under a lease longer
// than an attempt, so no other replica claims it while it is in flight.
// (Before, a replica claimed 32 at once and sent them 8 by 8: the last
// were sent after the 30 s lease ran out, by both replicas.)
func TestReplicasDeliverEachEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a receiver that takes 8 s an answer, for two rounds at least")
	}
	t.Parallel()
	const (
		timeout  = 10 * time.Second
		delay    = 8 * time.Second
		partners = 8
		each     = 4
	)
	stores := openPostgresDeliveries(t, 2)
	rcv := newReceiver(t, delay)
	for i := range partners {
		p := fmt.Sprintf("bank%d", i)
		hookPartner(t, stores[0], p, rcv.srv.URL+"/"+p)
		publishFor(t, stores[0], p, each)
	}
	for _, st := range stores {
		_, key, _ := ed25519.GenerateKey(nil)
		runDeliverer(t, service.NewDeliverer(st, service.NewWebhookSigner(key), loopbackSender(t), service.WithDeliveryTimeout(timeout),
			service.WithDeliveryInterval(50*time.Millisecond), service.WithDeliveryLogger(slog.New(slog.DiscardHandler))))
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := stores[1].Deliveries(t.Context(), service.DeliveryFilter{State: service.DeliveryDelivered, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == partners*each {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", len(got), partners*each)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reqs := rcv.requests()
	if len(reqs) != partners*each {
		t.Errorf("%d events received, want %d", len(reqs), partners*each)
	}
	for id, n := range reqs {
		if n != 1 {
			t.Errorf("%s was sent %d times", id, n)
		}
	}
	all, err := stores[0].Deliveries(t.Context(), service.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.Attempts != 1 {
			t.Errorf("%s: %d attempts recorded, want 1", d.Event.ID, d.Attempts)
		}
	}
}
