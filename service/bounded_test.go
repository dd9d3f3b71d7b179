package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// hangingStore answers PartnerByClientID with err, or hangs until its
// context ends when err is nil.
type hangingStore struct {
	service.Store
	err error
}

func (h hangingStore) PartnerByClientID(ctx context.Context, _ string) (service.Partner, error) {
	if h.err != nil {
		return service.Partner{}, h.err
	}
	<-ctx.Done()
	return service.Partner{}, fmt.Errorf("read partner: %w", ctx.Err())
}

type sqlStateError string

func (e sqlStateError) Error() string    { return "server error " + string(e) }
func (e sqlStateError) SQLState() string { return string(e) }

func TestBoundedStoreFailsWithinBound(t *testing.T) {
	st := service.NewBoundedStore(hangingStore{}, service.WithStoreTimeout(50*time.Millisecond))
	start := time.Now()
	_, err := st.PartnerByClientID(context.Background(), "p")
	if !errors.Is(err, service.ErrStoreUnavailable) {
		t.Fatalf("err = %v, want ErrStoreUnavailable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s", took)
	}
	// The caller's own cancellation is not the store's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.PartnerByClientID(ctx, "p"); errors.Is(err, service.ErrStoreUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
}

func TestBoundedStoreClassifiesErrors(t *testing.T) {
	for _, tc := range []struct {
		err         error
		unavailable bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("conn: %w", syscall.ECONNRESET), true},
		{sqlStateError("57P01"), true}, // admin shutdown
		{sqlStateError("57P03"), true}, // cannot connect now
		{sqlStateError("08006"), true}, // connection failure
		{sqlStateError("23505"), false},
		{fmt.Errorf("partner: %w", service.ErrNotFound), false},
		{errors.New("decode partner: bad json"), false},
	} {
		st := service.NewBoundedStore(hangingStore{err: tc.err})
		_, err := st.PartnerByClientID(context.Background(), "p")
		if got := errors.Is(err, service.ErrStoreUnavailable); got != tc.unavailable {
			t.Errorf("%v: unavailable = %v, want %v", tc.err, got, tc.unavailable)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: the cause is lost: %v", tc.err, err)
		}
	}
}
