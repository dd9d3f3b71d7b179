package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// meetingStore holds every UpdatePartner until n of them have arrived, so
// that n revocations have all made their early count of administrators
// before any of them writes: the race of two replicas, every time.
type meetingStore struct {
	service.Store
	n       int
	mu      sync.Mutex
	arrived int
	met     chan struct{}
}

func (m *meetingStore) UpdatePartner(ctx context.Context, p service.Partner) error {
	m.mu.Lock()
	m.arrived++
	if m.arrived == m.n {
		close(m.met)
	}
	m.mu.Unlock()
	<-m.met
	return m.Store.UpdatePartner(ctx, p)
}

// Two administrators revoke each other at the same moment, each on its
// own replica: one revocation succeeds, the other is ErrLastAdmin (409
// last_admin) with its failure recorded, and one administrator remains.
func TestSimultaneousAdminRevocationsKeepOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	var ids [2]string
	for i := range ids {
		p, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "管理员", Role: service.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ClientID
	}
	meet := &meetingStore{Store: f.store, n: 2, met: make(chan struct{})}
	audit := service.NewAudit(f.spy, service.WithAuditClock(f.clock.Now))
	var replicas [2]*service.Partners
	for i := range replicas {
		replicas[i] = service.NewPartners(meet, f.cat, service.WithPartnersAudit(audit), service.WithPartnersClock(f.clock.Now),
			service.WithSecretCost(testenv.SecretCost()))
	}
	var wg sync.WaitGroup
	var errs [2]error
	for i := range replicas {
		wg.Go(func() {
			// Administrator i revokes the other.
			_, errs[i] = replicas[i].Revoke(service.WithActor(t.Context(), service.Actor{ClientID: ids[i], Role: service.RoleAdmin}), ids[1-i])
		})
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("revocations: %v and %v; want exactly one to succeed", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, service.ErrLastAdmin) {
			t.Fatalf("refused revocation: %v, want ErrLastAdmin", err)
		}
	}
	all, err := f.store.ListPartners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, p := range all {
		if p.Role == service.RoleAdmin && p.Status == service.PartnerActive {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active administrators, want 1", active)
	}
	var failed int
	for _, b := range f.spy.bodies(t) {
		if b.Act == service.ActFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d act_failed records, want 1 (the refused revocation)", failed)
	}
}

// Break glass: when every administrator is revoked (as the race above
// could leave a store before the fix), the bootstrap administrator
// configured under a client id not used before is created, active, and
// authenticates; a revoked id configured again is not brought back.
func TestBootstrapAdminAfterEveryAdminRevoked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	now := f.clock.Now()
	// Stored revoked: the state a lost race left, with no active one.
	gone := service.Partner{ID: "p-admin-gone", ClientID: "admin-gone", Name: "bootstrap administrator", Role: service.RoleAdmin,
		Status: service.PartnerRevoked, CreatedAt: now, UpdatedAt: now, RevokedAt: &now, Version: 2}
	if err := f.store.InsertPartner(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// The same id configured again changes nothing (and is not revived).
	created, err := f.partners.EnsureAdmin(ctx, "admin-gone", "second-admin-secret-012345678")
	if err != nil || created {
		t.Fatalf("EnsureAdmin(revoked id) = %v, %v; want false, nil", created, err)
	}
	if _, _, err := f.partners.Authenticate(ctx, "admin-gone", "second-admin-secret-012345678"); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("a revoked administrator authenticated: %v", err)
	}
	// A new id is the way back in.
	created, err = f.partners.EnsureAdmin(ctx, "admin-breakglass", "break-glass-secret-0123456789")
	if err != nil || !created {
		t.Fatalf("EnsureAdmin(new id) = %v, %v; want true, nil", created, err)
	}
	got, _, err := f.partners.Authenticate(ctx, "admin-breakglass", "break-glass-secret-0123456789")
	if err != nil || got.Role != service.RoleAdmin || got.Status != service.PartnerActive {
		t.Fatalf("break-glass administrator: %+v, %v", got, err)
	}
	// It is now the one active administrator, kept as such.
	if _, err := f.partners.Revoke(ctx, "admin-breakglass"); !errors.Is(err, service.ErrLastAdmin) {
		t.Fatalf("revoking the only active administrator: %v, want ErrLastAdmin", err)
	}
}
