package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// startPush starts the event fan-out and the webhook deliverer of serve,
// which run until ctx ends (stop waits for them), and returns the gateway
// option serving the feed, watchlists and webhooks. Both loops read the
// store directly: they are background work with their own retries, and the
// fan-out must see the change it announces, never a cached answer.
func startPush(ctx context.Context, c config.Events, st store, cat *policy.Catalog, audit *service.Audit, tokenKey ed25519.PrivateKey, logger *slog.Logger) (gateway.Option, func(), error) {
	key, err := service.DeriveWebhookKey(tokenKey)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook key: %w", err)
	}
	events := service.NewEvents(st, st, st, cat, service.WithEventsAudit(audit), service.WithEventsLogger(logger),
		service.WithCheckedWindow(c.CheckedWindow), service.WithEventRetention(c.Retention), service.WithFanoutInterval(c.Interval))
	deliverer := service.NewDeliverer(st, service.NewWebhookSigner(key), webhook.NewSender(), service.WithDeliveryAudit(audit),
		service.WithDeliveryLogger(logger), service.WithDeliveryInterval(c.Interval), service.WithDeliveryTimeout(c.WebhookTimeout),
		service.WithDeliveryBackoff(c.WebhookMinBackoff, c.WebhookMaxBackoff), service.WithDeliveryAttempts(c.WebhookMaxAttempts))
	watchlists := service.NewWatchlists(st, service.WithWatchlistsAudit(audit))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { events.Run(ctx) })
	wg.Go(func() { deliverer.Run(ctx) })
	logger.Info("push running", "webhook_key_id", deliverer.Signer().KeyID())
	return gateway.WithPush(events, watchlists, deliverer), func() { cancel(); wg.Wait() }, nil
}
