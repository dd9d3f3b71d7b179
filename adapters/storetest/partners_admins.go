package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// RunPartnerAdmins runs the conformance tests of the one rule a store
// keeps about partners beyond optimistic updates: an update never leaves
// no active administrator (service.ErrLastAdmin), even when two of them
// are revoked at once. An adapter's tests call it like Run.
func RunPartnerAdmins(t *testing.T, open func(t *testing.T) service.Store) {
	runEach(t, open, "", []named[service.Store]{
		{"Partners/LastAdminKept", testLastAdminKept},
		{"Partners/ConcurrentAdminRevocations", testConcurrentAdminRevocations},
	})
}

func admin(id string) service.Partner {
	p := partner(id, "client-"+id)
	p.Role, p.Actions = service.RoleAdmin, nil
	return p
}

// revoked is p as a revocation at d writes it.
func revoked(p service.Partner, d time.Duration) service.Partner {
	p.Status, p.RevokedAt, p.UpdatedAt = service.PartnerRevoked, ptr(at(d)), at(d)
	p.Version++
	return p
}

func testLastAdminKept(t *testing.T, s service.Store) {
	ctx := t.Context()
	a, gone, p := admin("a1"), revoked(admin("a0"), time.Hour), partner("p1", "client-p1")
	for _, q := range []service.Partner{a, gone, p} {
		if err := s.InsertPartner(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// A revoked administrator does not count: a1 is the last active one.
	if err := s.UpdatePartner(ctx, revoked(a, time.Hour)); !errors.Is(err, service.ErrLastAdmin) {
		t.Fatalf("revoking the last active administrator: err = %v, want ErrLastAdmin", err)
	}
	if got, err := s.PartnerByClientID(ctx, a.ClientID); err != nil || got.Status != service.PartnerActive || got.Version != a.Version {
		t.Fatalf("after the refusal: %+v, %v; want it unchanged", got, err)
	}
	// Other updates of the last administrator, and of other partners, go on.
	renamed := a
	renamed.Name, renamed.Version = "系统管理员", a.Version+1
	if err := s.UpdatePartner(ctx, renamed); err != nil {
		t.Fatalf("renaming the last administrator: %v", err)
	}
	if err := s.UpdatePartner(ctx, revoked(p, time.Hour)); err != nil {
		t.Fatalf("revoking a partner: %v", err)
	}
	// With a second one, either may go, but not both.
	b := admin("b1")
	if err := s.InsertPartner(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdatePartner(ctx, revoked(renamed, 2*time.Hour)); err != nil {
		t.Fatalf("revoking one of two administrators: %v", err)
	}
	if err := s.UpdatePartner(ctx, revoked(b, 2*time.Hour)); !errors.Is(err, service.ErrLastAdmin) {
		t.Fatalf("revoking the other: err = %v, want ErrLastAdmin", err)
	}
}

// testConcurrentAdminRevocations: two administrators revoke each other at
// the same moment, again and again; each time exactly one revocation
// succeeds and the other is ErrLastAdmin. A guard that counts in one
// statement and updates in another, without excluding the other
// transaction, lets both through.
func testConcurrentAdminRevocations(t *testing.T, s service.Store) {
	ctx := t.Context()
	var survivor *service.Partner
	for round := range 12 {
		pair := [2]service.Partner{admin(fmt.Sprintf("r%02da", round)), admin(fmt.Sprintf("r%02db", round))}
		for _, q := range pair {
			if err := s.InsertPartner(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		// Only this round's two are active from here on.
		if survivor != nil {
			if err := s.UpdatePartner(ctx, revoked(*survivor, time.Hour)); err != nil {
				t.Fatalf("round %d: revoking the last round's survivor: %v", round, err)
			}
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var errs [2]error
		for i := range pair {
			wg.Go(func() {
				<-start
				errs[i] = s.UpdatePartner(ctx, revoked(pair[i], time.Hour))
			})
		}
		close(start)
		wg.Wait()
		var won []int
		for i, err := range errs {
			switch {
			case err == nil:
				won = append(won, i)
			case !errors.Is(err, service.ErrLastAdmin):
				t.Fatalf("round %d: revoking %s: %v", round, pair[i].ID, err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d of two simultaneous revocations succeeded (errors %v), want exactly 1", round, len(won), errs)
		}
		all, err := s.ListPartners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, q := range all {
			if q.Role == service.RoleAdmin && q.Status == service.PartnerActive {
				active++
				survivor = &q
			}
		}
		if active != 1 || survivor.ID != pair[1-won[0]].ID {
			t.Fatalf("round %d: %d active administrators (last %+v), want only %s", round, active, survivor, pair[1-won[0]].ID)
		}
	}
}
