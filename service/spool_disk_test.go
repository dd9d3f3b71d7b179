package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// faultySpool is a real spool whose marks fail with err while it is set,
// as on a full or failing disk.
type faultySpool struct {
	*evidence.Spool
	err atomic.Pointer[error]
}

func (f *faultySpool) MarkIntegrated(pos uint64) error {
	if err := f.err.Load(); err != nil {
		return fmt.Errorf("mark spool integrated: %w", *err)
	}
	return f.Spool.MarkIntegrated(pos)
}

// A spool the integrator cannot mark — its disk full, failing, read-only —
// is stuck, and the replica unready, however long it has been at it: the
// local disk's errors are not the database being away. It was reported
// "integrating", ready, while the errors climbed, because a bare errno
// passed for a network error.
func TestSpoolStuckOnItsOwnDisk(t *testing.T) {
	for name, cause := range map[string]error{
		"full":      &os.PathError{Op: "write", Path: "spool/integrated", Err: syscall.ENOSPC},
		"failing":   &os.PathError{Op: "sync", Path: "spool/integrated", Err: syscall.EIO},
		"read-only": &os.PathError{Op: "open", Path: "spool/integrated", Err: syscall.EROFS},
		"denied":    &os.PathError{Op: "open", Path: "spool/integrated", Err: syscall.EACCES},
	} {
		t.Run(name, func(t *testing.T) {
			w := newSpoolWorld(t)
			sp := &faultySpool{Spool: w.spool}
			log := service.NewSpoolingLog(w.app, sp, w.signer, w.store, service.WithSpoolBound(time.Second))
			w.sink.down.Store(true)
			rec := evidence.Record{ID: "chk-disk-" + name, Kind: evidence.KindCheck, Partner: "p1", At: time.Now().UTC(), Body: []byte(`{}`)}
			if out, err := log.Append(t.Context(), rec); err != nil || out[0].Promise == nil {
				t.Fatalf("spool with the log down: %+v %v", out, err)
			}
			w.sink.down.Store(false)
			sp.err.Store(&cause)
			for range 3 {
				if _, err := log.IntegrateOnce(t.Context()); !errors.Is(err, cause) {
					t.Fatalf("integration: %v, want %v", err, cause)
				}
			}
			if st := log.SpoolStatus(); st.State != service.SpoolStuck || st.Pending != 1 || st.Error == "" {
				t.Errorf("status with marks failing: %+v, want stuck", st)
			}
			if err := log.Ready(t.Context()); !errors.Is(err, service.ErrSpoolStuck) {
				t.Errorf("ready with marks failing: %v, want ErrSpoolStuck", err)
			}

			// The disk mended, the next attempt integrates and clears it.
			sp.err.Store(nil)
			if n, err := log.IntegrateOnce(t.Context()); err != nil || n != 1 {
				t.Fatalf("integration after the disk is mended: %d %v", n, err)
			}
			if st := log.SpoolStatus(); st.State != service.SpoolEmpty {
				t.Errorf("status after: %+v", st)
			}
		})
	}
}

// Unreachable takes network errors for an absent database, and nothing
// else: a local disk's errno is not one, though syscall.Errno has the
// methods of a net.Error.
func TestUnreachableIsTheNetworkOnly(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{&net.DNSError{Err: "no such host", Name: "db", IsNotFound: true}, true},
		{fmt.Errorf("conn: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("write: %w", syscall.EPIPE), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{fmt.Errorf("ping: %w", service.ErrStoreUnavailable), true},
		{sqlStateError("08006"), true},
		{&os.PathError{Op: "write", Path: "spool/integrated.tmp1", Err: syscall.ENOSPC}, false},
		{&os.PathError{Op: "read", Path: "spool/spool.log", Err: syscall.EIO}, false},
		{&os.PathError{Op: "open", Path: "spool/spool.log", Err: syscall.EROFS}, false},
		{&os.PathError{Op: "open", Path: "spool/spool.lock", Err: syscall.EACCES}, false},
		{fmt.Errorf("write: %w", syscall.EAGAIN), false},
		{syscall.ENOSPC, false},
		{sqlStateError("23505"), false},
		{context.Canceled, false},
	} {
		if got := service.Unreachable(tc.err); got != tc.want {
			t.Errorf("Unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
