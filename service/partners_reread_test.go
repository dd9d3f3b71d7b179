package service_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// frozenPartners is a partner store that can freeze: while frozen a read
// waits until thawed (or its context ends) and then fails as a
// BoundedStore's read past its timeout does.
type frozenPartners struct {
	service.PartnerStore
	reads   atomic.Int64
	mu      sync.Mutex
	thaw    chan struct{} // nil: not frozen
	fail    error         // the error of a read while away (nil: answers)
	revoked bool
}

func (s *frozenPartners) PartnerByClientID(ctx context.Context, id string) (service.Partner, error) {
	s.reads.Add(1)
	s.mu.Lock()
	thaw := s.thaw
	s.mu.Unlock()
	if thaw != nil {
		select {
		case <-thaw:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	fail, revoked := s.fail, s.revoked
	s.mu.Unlock()
	if fail != nil {
		return service.Partner{}, fail
	}
	p := service.Partner{ClientID: id, Role: service.RolePartner, Status: service.PartnerActive}
	if revoked {
		p.Status = service.PartnerRevoked
	}
	return p, nil
}

// freeze makes reads wait for the returned thaw and then fail with fail
// (or what set says by then).
func (s *frozenPartners) freeze(fail error) (thaw func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.thaw, s.fail = ch, fail
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.thaw = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *frozenPartners) set(fail error, revoked bool) {
	s.mu.Lock()
	s.fail, s.revoked = fail, revoked
	s.mu.Unlock()
}

func newFrozenPartners(t *testing.T, grace time.Duration) (*frozenPartners, *service.Partners, *testenv.Clock) {
	t.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	st := &frozenPartners{}
	clock := testenv.NewClock(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	ps := service.NewPartners(st, cat, service.WithPartnersClock(clock.Now),
		service.WithPartnerCacheTTL(5*time.Second), service.WithPartnerOutageGrace(grace))
	if _, err := ps.Active(t.Context(), "p1"); err != nil {
		t.Fatal(err)
	}
	return st, ps, clock
}

// activeAtOnce calls Active and fails the test if it does not answer
// within a second (the store being frozen, waiting on it would not).
func activeAtOnce(t *testing.T, ps *service.Partners, id string) (service.Partner, error) {
	t.Helper()
	type result struct {
		p   service.Partner
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := ps.Active(context.Background(), id)
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-time.After(time.Second):
		t.Fatalf("Active(%s) waited on the frozen store", id)
		return service.Partner{}, nil
	}
}

// TestPartnerRereadIsShared: the requests that find a partner's entry
// expired together make one store read between them, not one each (with
// PostgreSQL frozen, 126 requests were found each waiting out its own).
func TestPartnerRereadIsShared(t *testing.T) {
	t.Parallel()
	st, ps, clock := newFrozenPartners(t, 0)
	thaw := st.freeze(nil) // the read waits, then answers
	defer thaw()
	clock.Add(5*time.Second + time.Millisecond)

	const callers = 50
	var started sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		started.Add(1)
		go func() {
			started.Done()
			_, err := ps.Active(t.Context(), "p1")
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond) // let them reach the store
	thaw()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("Active after the shared read: %v", err)
		}
	}
	if got := st.reads.Load(); got != 2 {
		t.Fatalf("%d concurrent callers on an expired entry made %d store reads, want 1", callers, got-1)
	}
}

// TestPartnerRereadWithinGrace: with the store frozen, a partner's
// cached state within the outage grace is answered at once while one
// read waits on the store; once the store answers again a revocation
// takes effect; past the grace a frozen store is ErrStoreUnavailable.
func TestPartnerRereadWithinGrace(t *testing.T) {
	t.Parallel()
	st, ps, clock := newFrozenPartners(t, time.Minute)
	thaw := st.freeze(service.ErrStoreUnavailable)
	defer thaw()
	clock.Add(5*time.Second + time.Millisecond)

	// The first caller past the TTL reads the store (it was last seen
	// up, and a revocation must not wait out the grace when it is)...
	first := make(chan error, 1)
	go func() {
		_, err := ps.Active(t.Context(), "p1")
		first <- err
	}()
	for st.reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	// ... the others answer from the cache at once, without reading.
	for range 20 {
		if _, err := activeAtOnce(t, ps, "p1"); err != nil {
			t.Fatalf("within the grace, a read in flight: %v", err)
		}
	}
	if got := st.reads.Load(); got != 2 {
		t.Fatalf("callers during a read in flight made %d more reads", got-2)
	}
	thaw()
	if err := <-first; err != nil {
		t.Fatalf("the reading caller, store away within the grace: %v", err)
	}

	// The store was away at the last read: past the next TTL every
	// caller answers at once, and one read refreshes in the background.
	thaw = st.freeze(service.ErrStoreUnavailable)
	defer thaw()
	clock.Add(5*time.Second + time.Millisecond)
	for range 20 {
		if _, err := activeAtOnce(t, ps, "p1"); err != nil {
			t.Fatalf("within the grace, store away at the last read: %v", err)
		}
	}
	// The background read starts when its goroutine is scheduled, maybe
	// after the callers above: wait for it, then see it is the only one.
	for deadline := time.Now().Add(5 * time.Second); st.reads.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := st.reads.Load(); got != 3 {
		t.Fatalf("callers with the store away made %d reads, want 1", got-2)
	}

	// The store comes back with the partner revoked (through another
	// replica): the read in flight learns it, and from then on the
	// partner is refused.
	st.set(nil, true)
	thaw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := activeAtOnce(t, ps, "p1")
		if errors.Is(err, service.ErrInvalidClient) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("revoked partner after the store answered: %v", err)
		}
		time.Sleep(time.Millisecond)
	}

	// Past the grace, the frozen store's error, after one read.
	st.set(nil, false)
	clock.Add(5*time.Second + time.Millisecond)
	if _, err := ps.Active(t.Context(), "p1"); err != nil {
		t.Fatal(err)
	}
	st.set(service.ErrStoreUnavailable, false)
	clock.Add(5*time.Second + time.Minute + time.Millisecond)
	if _, err := ps.Active(t.Context(), "p1"); !errors.Is(err, service.ErrStoreUnavailable) {
		t.Fatalf("past the grace: %v, want ErrStoreUnavailable", err)
	}
}

// TestPartnerRereadOutlivesItsCaller: the caller that started a shared
// read may give up; the read goes on for the others and is cached.
func TestPartnerRereadOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	st, ps, clock := newFrozenPartners(t, 0)
	thaw := st.freeze(nil)
	defer thaw()
	clock.Add(5*time.Second + time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := ps.Active(ctx, "p1")
		done <- err
	}()
	for st.reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that gave up: %v, want context.Canceled", err)
	}
	thaw()
	if _, err := ps.Active(t.Context(), "p1"); err != nil {
		t.Fatal(err)
	}
	if got := st.reads.Load(); got != 2 {
		t.Fatalf("the read its first caller left was not shared: %d reads", got-1)
	}
}
