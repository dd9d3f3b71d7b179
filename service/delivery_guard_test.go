package service_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/service"
)

// loopbackSender is a webhook sender that may reach the tests' receivers,
// httptest servers on the loopback address, as an operator allows them
// (events.webhook_allow).
func loopbackSender(t testing.TB) *webhook.Sender {
	t.Helper()
	allow, err := webhook.ParseAllow([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	return webhook.NewSender(webhook.WithAllow(allow))
}

// A partner cannot set a webhook on the credit office's own network (its
// database and Redis ports, an administration API, a cloud's metadata
// service) nor on a port that does not exist.
func TestSetWebhookRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	_, key, _ := ed25519.GenerateKey(nil)
	deliverer := service.NewDeliverer(w.store, service.NewWebhookSigner(key), webhook.NewSender(), service.WithDeliveryAudit(service.NewAudit(w.audit)))
	for _, url := range []string{
		"http://127.0.0.1:6379/", "http://127.0.0.1:5432/", "http://127.0.0.1:1/", "http://127.0.0.1:18810/v1/admin/partners",
		"http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "http://10.0.0.5/hook",
		"http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0:8080/", "http://[fe80::1%25eth0]/",
		"http://[fd00::1]/", "http://224.0.0.1/", "http://localhost:8080/hook",
		"https://bank.example:99999/hook", "https://bank.example:0/hook", "https://:443/hook",
	} {
		if _, err := deliverer.SetWebhook(ctx, w.bank, url); !errors.Is(err, service.ErrInvalidWebhook) {
			t.Errorf("SetWebhook(%s) = %v, want ErrInvalidWebhook", url, err)
		}
	}
	for _, url := range []string{"https://bank.example/hook", "https://bank.example:8443/hook", "https://93.184.215.14/hook"} {
		if _, err := deliverer.SetWebhook(ctx, w.bank, url); err != nil {
			t.Errorf("SetWebhook(%s) = %v", url, err)
		}
	}
}

// A webhook that names an internal address (one a name came to resolve
// to, or one stored before this check) is never reached, and the partner
// reads "address not allowed", not what answered there. The refusal is
// this server's address policy (events.webhook_allow), not the receiver's
// failure: it uses up no attempt toward dead-lettering, the delivery stays
// pending, retried at the longest backoff, and once the operator allows
// the address it is delivered.
func TestDeliveryNeverReachesInternalAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	_, key, _ := ed25519.GenerateKey(nil)
	const longest = 3 * time.Millisecond
	deliverer := service.NewDeliverer(w.store, service.NewWebhookSigner(key), webhook.NewSender(),
		service.WithDeliveryBackoff(time.Millisecond, longest), service.WithDeliveryAttempts(2))
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := w.store.SetWebhook(ctx, service.Webhook{Partner: w.bank.ClientID, URL: srv.URL + "/hook", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.watch.Update(ctx, w.bank, service.WatchAdd, strings.NewReader(lcOrg)); err != nil {
		t.Fatal(err)
	}
	w.create(safetyEntry(cstAt(2026, 1, 4, 0)))
	w.fanOut()
	for range 4 {
		if _, err := deliverer.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver on the loopback address got %d requests", n)
	}
	all, err := deliverer.Deliveries(ctx, w.bank, service.DeliveryFilter{})
	if err != nil || len(all) != 1 {
		t.Fatalf("deliveries = %+v, %v; want one", all, err)
	}
	if d := all[0]; d.State != service.DeliveryPending || d.Attempts != 0 || d.LastError != webhook.FailureNotAllowed || d.LastStatus != 0 {
		t.Fatalf("delivery refused by the address policy = %+v; want pending, no attempt counted, failed with %q", d, webhook.FailureNotAllowed)
	}
	if d := all[0]; d.NextAt.Sub(d.UpdatedAt) < longest {
		t.Fatalf("retried after %v, want the longest backoff %v", d.NextAt.Sub(d.UpdatedAt), longest)
	}

	// The operator allows the address (a restart with events.webhook_allow).
	time.Sleep(2 * longest)
	allowed := service.NewDeliverer(w.store, service.NewWebhookSigner(key), loopbackSender(t),
		service.WithDeliveryBackoff(time.Millisecond, longest), service.WithDeliveryAttempts(2))
	if _, err := allowed.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests once allowed, want 1", n)
	}
	done, err := allowed.Deliveries(ctx, w.bank, service.DeliveryFilter{State: service.DeliveryDelivered})
	if err != nil || len(done) != 1 {
		t.Fatalf("delivered = %+v, %v; want the one", done, err)
	}
}

// The service's name for a policy refusal is the sender's.
func TestWebhookFailureNotAllowedIsTheSenders(t *testing.T) {
	if service.WebhookFailureNotAllowed != webhook.FailureNotAllowed {
		t.Fatalf("service %q, webhook %q", service.WebhookFailureNotAllowed, webhook.FailureNotAllowed)
	}
}
