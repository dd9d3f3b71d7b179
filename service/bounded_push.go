package service

import (
	"context"
	"time"

	"github.com/credgate/credgate/policy"
)

// BoundedPushStore decorates a PushStore as BoundedStore decorates a
// Store: every read of push (the event feed and its long-poll's polls, the
// fan-out's outbox, entry history and subscribers, watchlist sizes,
// webhooks, delivery logs, subscriptions by authority) gets the store's
// deadline, and a database that is down or does not answer in time is
// ErrStoreUnavailable (503 store_unavailable) instead of a request or a
// fan-out pass that hangs. Writes are not bounded here: a watchlist part
// of 100,000 subjects or a publication may legitimately take longer, and
// their transactions keep the outbox and at-least-once guarantees.
type BoundedPushStore struct {
	PushStore
	bound *BoundedStore
}

// NewBoundedPushStore returns st with its reads bounded (WithStoreTimeout,
// default DefaultStoreTimeout).
func NewBoundedPushStore(st PushStore, opts ...BoundedStoreOption) *BoundedPushStore {
	return &BoundedPushStore{PushStore: st, bound: NewBoundedStore(nil, opts...)}
}

// Timeout is the bound of each read.
func (b *BoundedPushStore) Timeout() time.Duration { return b.bound.timeout }

// PendingChanges is EventStore.PendingChanges, bounded.
func (b *BoundedPushStore) PendingChanges(ctx context.Context, limit int) ([]OutboxChange, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) ([]OutboxChange, error) { return b.PushStore.PendingChanges(ctx, limit) })
}

// EntryVersion is EventStore.EntryVersion, bounded.
func (b *BoundedPushStore) EntryVersion(ctx context.Context, id string, v int64) (policy.Entry, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) (policy.Entry, error) { return b.PushStore.EntryVersion(ctx, id, v) })
}

// Subscribers is EventStore.Subscribers, bounded.
func (b *BoundedPushStore) Subscribers(ctx context.Context, subjects []string, checkedSince time.Time) ([]Subscriber, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) ([]Subscriber, error) {
		return b.PushStore.Subscribers(ctx, subjects, checkedSince)
	})
}

// Events is EventStore.Events, bounded.
func (b *BoundedPushStore) Events(ctx context.Context, partner string, after int64, limit int) ([]StoredEvent, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) ([]StoredEvent, error) {
		return b.PushStore.Events(ctx, partner, after, limit)
	})
}

// AuthoritySubscriptions is EventStore.AuthoritySubscriptions, bounded.
func (b *BoundedPushStore) AuthoritySubscriptions(ctx context.Context) ([]AuthoritySubscription, error) {
	return bounded(ctx, b.bound, b.PushStore.AuthoritySubscriptions)
}

// Authorities is AuthorityStore.Authorities, bounded.
func (b *BoundedPushStore) Authorities(ctx context.Context, partner string) ([]AuthoritySubscription, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) ([]AuthoritySubscription, error) {
		return b.PushStore.Authorities(ctx, partner)
	})
}

// WatchlistSize is WatchlistStore.WatchlistSize, bounded.
func (b *BoundedPushStore) WatchlistSize(ctx context.Context, partner string) (int64, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) (int64, error) { return b.PushStore.WatchlistSize(ctx, partner) })
}

// Webhook is WebhookStore.Webhook, bounded.
func (b *BoundedPushStore) Webhook(ctx context.Context, partner string) (Webhook, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) (Webhook, error) { return b.PushStore.Webhook(ctx, partner) })
}

// Deliveries is WebhookStore.Deliveries, bounded.
func (b *BoundedPushStore) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	return bounded(ctx, b.bound, func(ctx context.Context) ([]Delivery, error) { return b.PushStore.Deliveries(ctx, f) })
}
