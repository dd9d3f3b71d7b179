package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// startPush starts the event fan-out and the webhook deliverer of serve,
// which run until ctx ends (stop waits for them), and returns the gateway
// options serving the feed, watchlists, departments' subscriptions and
// webhooks. Both loops read the store, never a cache (the fan-out must see
// the change it announces), and every read of push, the loops' and the
// requests', is bounded by timeout (store.timeout) like the check path's:
// a database that stops answering fails a feed request with 503 and a
// fan-out pass with an error it retries, instead of hanging either. The
// deliverer is returned too, for the console's page of deliveries (whose
// replay then kicks the running loop).
func startPush(ctx context.Context, c config.Events, raw store, timeout time.Duration, cat *policy.Catalog, audit *service.Audit, tokenKey ed25519.PrivateKey, logger *slog.Logger) ([]gateway.Option, *service.Deliverer, func(), error) {
	key, err := service.DeriveWebhookKey(tokenKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("webhook key: %w", err)
	}
	allow, err := webhook.ParseAllow(c.WebhookAllow)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("events.webhook_allow: %w", err)
	}
	st := service.NewBoundedPushStore(raw, service.WithStoreTimeout(timeout))
	reads := service.NewBoundedStore(raw, service.WithStoreTimeout(timeout))
	events := service.NewEvents(st, reads, reads, cat, service.WithEventsAudit(audit), service.WithEventsLogger(logger),
		service.WithCheckedWindow(c.CheckedWindow), service.WithEventRetention(c.Retention), service.WithFanoutInterval(c.Interval))
	deliverer := service.NewDeliverer(st, service.NewWebhookSigner(key), webhook.NewSender(webhook.WithAllow(allow)), service.WithDeliveryAudit(audit),
		service.WithDeliveryLogger(logger), service.WithDeliveryInterval(c.Interval), service.WithDeliveryTimeout(c.WebhookTimeout),
		service.WithDeliveryBackoff(c.WebhookMinBackoff, c.WebhookMaxBackoff), service.WithDeliveryAttempts(c.WebhookMaxAttempts))
	warnRefusedWebhooks(ctx, raw, deliverer, logger)
	watchlists := service.NewWatchlists(st, service.WithWatchlistsAudit(audit))
	departments := service.NewDepartments(st, reads, cat, service.WithDepartmentsAudit(audit))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { events.Run(ctx) })
	wg.Go(func() { deliverer.Run(ctx) })
	logger.Info("push running", "webhook_key_id", deliverer.Signer().KeyID())
	opts := []gateway.Option{gateway.WithPush(events, watchlists, deliverer), gateway.WithDepartments(departments)}
	return opts, deliverer, func() { cancel(); wg.Wait() }, nil
}

// warnRefusedWebhooks logs, as serve starts, each stored webhook the
// address policy (events.webhook_allow) refuses: its deliveries would
// otherwise wait silently. A store that cannot be read now only skips the
// check.
func warnRefusedWebhooks(ctx context.Context, raw service.Store, deliverer *service.Deliverer, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	all, err := raw.ListPartners(ctx)
	if err != nil {
		logger.Warn("stored webhooks not checked against events.webhook_allow", "error", err)
		return
	}
	ids := make([]string, 0, len(all))
	for _, p := range all {
		ids = append(ids, p.ClientID)
	}
	n, err := deliverer.WarnRefusedWebhooks(ctx, ids)
	if err != nil {
		logger.Warn("stored webhooks not all checked against events.webhook_allow", "error", err)
	}
	if n > 0 {
		logger.Warn("webhooks refused by the address policy", "count", n, "setting", "events.webhook_allow")
	}
}
