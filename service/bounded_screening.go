package service

import (
	"context"
	"time"
)

// GetScreening is ScreeningStore.GetScreening, bounded.
func (b *BoundedStore) GetScreening(ctx context.Context, id string) (ScreeningJob, error) {
	return bounded(ctx, b, func(ctx context.Context) (ScreeningJob, error) { return b.Store.GetScreening(ctx, id) })
}

// UnfinishedScreenings is ScreeningStore.UnfinishedScreenings, bounded.
func (b *BoundedStore) UnfinishedScreenings(ctx context.Context, limit int) ([]ScreeningJob, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]ScreeningJob, error) { return b.Store.UnfinishedScreenings(ctx, limit) })
}

// ClaimableScreenings is ScreeningStore.ClaimableScreenings, bounded.
func (b *BoundedStore) ClaimableScreenings(ctx context.Context, now time.Time, limit int) ([]ScreeningJob, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]ScreeningJob, error) {
		return b.Store.ClaimableScreenings(ctx, now, limit)
	})
}

// LookupEntriesBatch is EntryBatchLookup.LookupEntriesBatch of the store,
// bounded; ErrBatchLookupUnsupported when the store has none.
func (b *BoundedStore) LookupEntriesBatch(ctx context.Context, subjects []string) (map[string]Lookup, error) {
	bl, ok := b.Store.(EntryBatchLookup)
	if !ok {
		return nil, ErrBatchLookupUnsupported
	}
	return bounded(ctx, b, func(ctx context.Context) (map[string]Lookup, error) { return bl.LookupEntriesBatch(ctx, subjects) })
}
