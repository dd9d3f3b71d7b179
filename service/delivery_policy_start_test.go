package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/service"
)

// A webhook stored before the address policy (or before
// events.webhook_allow was narrowed) is named as serve starts: one WARN a
// refused webhook, with the partner and the host, never the URL's path
// (it may carry the receiver's secret), and the setting to change.
func TestWarnRefusedWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newPushWorld(t, cstAt(2026, 1, 4, 9))
	var logs bytes.Buffer
	_, key, _ := ed25519.GenerateKey(nil)
	deliverer := service.NewDeliverer(w.store, service.NewWebhookSigner(key), webhook.NewSender(),
		service.WithDeliveryLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := w.store.SetWebhook(ctx, service.Webhook{Partner: w.bank.ClientID, URL: "http://127.0.0.1:19211/hook/s3cr3t-token",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	n, err := deliverer.WarnRefusedWebhooks(ctx, []string{w.bank.ClientID, "no_webhook_partner"})
	if err != nil || n != 1 {
		t.Fatalf("WarnRefusedWebhooks = %d, %v; want 1 refused", n, err)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "partner="+w.bank.ClientID) ||
		!strings.Contains(out, "host=127.0.0.1") || !strings.Contains(out, "events.webhook_allow") {
		t.Fatalf("log:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "/hook") {
		t.Fatalf("the URL's path is logged:\n%s", out)
	}

	// Allowed by the operator: nothing to say.
	logs.Reset()
	allowed := service.NewDeliverer(w.store, service.NewWebhookSigner(key), loopbackSender(t),
		service.WithDeliveryLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if n, err := allowed.WarnRefusedWebhooks(ctx, []string{w.bank.ClientID}); err != nil || n != 0 || logs.Len() != 0 {
		t.Fatalf("allowed: %d, %v, log %q", n, err, logs.String())
	}
}
