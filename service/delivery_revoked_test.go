package service_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// A delivery pending when its partner is revoked (the receiver was down)
// is never sent: once the receiver is back, the next attempt finds the
// partner revoked and dead-letters the delivery, with the reason in its
// delivery log and in the webhook_dead_lettered act. The deliverer here
// is built as serve builds it, over the bounded push store.
func TestRevokedPartnersDeliveriesAreNotSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu       sync.Mutex
		down     = true
		received int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		received++
	}))
	defer srv.Close()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	_, key, _ := ed25519.GenerateKey(nil)
	deliverer := service.NewDeliverer(service.NewBoundedPushStore(w.store), service.NewWebhookSigner(key), loopbackSender(t),
		service.WithDeliveryAudit(service.NewAudit(w.audit)), service.WithDeliveryBackoff(time.Millisecond, time.Millisecond),
		service.WithDeliveryAttempts(10))
	if _, err := deliverer.SetWebhook(ctx, w.bank, srv.URL+"/hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader(lcOrg)); err != nil {
		t.Fatal(err)
	}
	w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	w.fanOut()
	if n, err := deliverer.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("first attempt: %d, %v", n, err)
	}
	pending, err := deliverer.Deliveries(ctx, w.bank, service.DeliveryFilter{State: service.DeliveryPending})
	if err != nil || len(pending) != 1 || pending[0].LastStatus != http.StatusServiceUnavailable {
		t.Fatalf("pending after the receiver failed: %+v, %v", pending, err)
	}

	p, err := w.store.PartnerByClientID(ctx, w.bank.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.Status, p.RevokedAt, p.UpdatedAt = service.PartnerRevoked, &now, now
	p.Version++
	if err := w.store.UpdatePartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	time.Sleep(5 * time.Millisecond) // past the backoff
	if n, err := deliverer.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("attempt after the revocation: %d, %v", n, err)
	}
	mu.Lock()
	got := received
	mu.Unlock()
	if got != 0 {
		t.Fatalf("a revoked partner's receiver got %d deliveries", got)
	}
	dead, err := deliverer.Deliveries(ctx, w.bank, service.DeliveryFilter{State: service.DeliveryDead})
	if err != nil || len(dead) != 1 || dead[0].LastError != service.StoppedPartnerRevoked || dead[0].Attempts != 2 || dead[0].LastStatus != 0 {
		t.Fatalf("dead after the revocation: %+v, %v", dead, err)
	}
	if !slices.Contains(w.acts(), string(service.ActWebhookDeadLetter)) {
		t.Fatalf("no %s act: %v", service.ActWebhookDeadLetter, w.acts())
	}
	var reason any
	for _, b := range w.audit.bodies(t) {
		if b.Act == service.ActWebhookDeadLetter {
			reason = b.Details["reason"]
		}
	}
	if reason != service.StoppedPartnerRevoked {
		t.Errorf("dead letter's reason %v, want %q", reason, service.StoppedPartnerRevoked)
	}
	// Nothing is due any more: no pass sends it later.
	if n, err := deliverer.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("a later pass: %d, %v", n, err)
	}
}
