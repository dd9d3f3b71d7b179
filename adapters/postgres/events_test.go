package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func TestPushConformance(t *testing.T) {
	testenv.Postgres(t)
	storetest.RunPush(t, func(t *testing.T) storetest.PushStore { return openStore(t).(*postgres.Store) })
}

// TestReplicasClaimDisjointDeliveries: replicas (stores with pools of
// their own) claiming due deliveries at once each get different ones, and
// together all of them (SKIP LOCKED and the lease).
func TestReplicasClaimDisjointDeliveries(t *testing.T) {
	t.Parallel()
	_, stores := replicas(t, 3)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := stores[0].SetWebhook(ctx, service.Webhook{Partner: "bank", URL: "https://bank.example/", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	evs := make([]service.StoredEvent, n)
	for i := range evs {
		evs[i] = service.StoredEvent{ID: fmt.Sprintf("ev%03d", i), Partner: "bank", Kind: service.EventListed, CreatedAt: now, Body: []byte(`{}`)}
	}
	if err := stores[0].PublishEvents(ctx, nil, evs); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for _, s := range stores {
		for range 3 {
			wg.Go(func() {
				for {
					ds, err := s.ClaimDeliveries(ctx, now, time.Minute, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						seen[d.Event.ID]++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d deliveries claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("%s claimed %d times", id, c)
		}
	}
}
