package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// ErrStoreUnavailable: the store could not be reached, or did not answer
// within its bound. Nothing was read; retrying is safe.
var ErrStoreUnavailable = errors.New("store unavailable")

// DefaultStoreTimeout bounds each store read on a request path.
const DefaultStoreTimeout = 2 * time.Second

// BoundedStore decorates a Store so that no request waits on the database
// without limit: every read a request makes (entry lookups behind the
// cache, the partner re-read of authentication, receipts' records and
// tree nodes, checkpoints, keys, lifecycle and act reads, Ping) gets a
// deadline, and a database that is down or does not answer in time is
// ErrStoreUnavailable rather than an unexplained error. Writes are not
// bounded here: the evidence commit has its own bound (evidence.Appender),
// and an administrator's import may legitimately take longer (only its
// first contact with the database is bounded: BeginEntryLoad).
type BoundedStore struct {
	Store
	timeout time.Duration
}

// BoundedStoreOption configures a BoundedStore.
type BoundedStoreOption func(*BoundedStore)

// WithStoreTimeout sets the bound of each read (default
// DefaultStoreTimeout); zero or less keeps the default.
func WithStoreTimeout(d time.Duration) BoundedStoreOption {
	return func(b *BoundedStore) {
		if d > 0 {
			b.timeout = d
		}
	}
}

// NewBoundedStore returns st with its reads bounded.
func NewBoundedStore(st Store, opts ...BoundedStoreOption) *BoundedStore {
	b := &BoundedStore{Store: st, timeout: DefaultStoreTimeout}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Timeout is the bound of each read.
func (b *BoundedStore) Timeout() time.Duration { return b.timeout }

// bounded runs read with the store's deadline and classifies its error.
func bounded[T any](ctx context.Context, b *BoundedStore, read func(context.Context) (T, error)) (T, error) {
	rctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	v, err := read(rctx)
	if err != nil {
		return v, storeError(ctx, err, b.timeout)
	}
	return v, nil
}

// storeError wraps err with ErrStoreUnavailable when it says the database
// is unreachable or did not answer within the bound (and the caller had
// not given up first: its own cancellation stays what it is). Other
// errors (not found, conflicts, corrupt data) pass unchanged.
func storeError(ctx context.Context, err error, bound time.Duration) error {
	if ctx.Err() != nil || errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: no answer within %s: %w", ErrStoreUnavailable, bound, err)
	}
	if Unreachable(err) {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return err
}

// Unreachable reports whether err says the database cannot be reached or
// is going away: a network error (of a dial, a read or a write: the net
// package's own, or a DNS failure), a connection refused, reset or cut
// short, or PostgreSQL's connection-exception and shutdown states
// (SQLSTATE class 08; 57P01–57P05: shut down, crashed, cannot connect
// now, database dropped, session timed out; 53300 too many connections;
// 55000 the database not accepting connections). It
// recognises them without importing a driver. ErrStoreUnavailable (a
// BoundedStore's verdict) is unreachable too.
//
// A bare errno is not a network error: syscall.Errno has Timeout and
// Temporary, so it satisfies net.Error, but ENOSPC, EIO, EROFS or EACCES
// of a local file are faults waiting will not cure, and taking them for
// an absent database hid a spool that could not be integrated behind
// "integrating" (service/spool.go, transient).
func Unreachable(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, ErrStoreUnavailable), errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrDeadlineExceeded), // a connection's deadline
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOENT) && strings.Contains(err.Error(), ".s.PGSQL"):
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		s := st.SQLState()
		// 55000 is what a server closed to connections for maintenance
		// (ALTER DATABASE … ALLOW_CONNECTIONS false) answers every new
		// one; credgate's own statements raise it in no other case.
		return strings.HasPrefix(s, "08") || strings.HasPrefix(s, "57P") || s == "53300" || s == "55000"
	}
	return false
}

// LookupEntries is EntryLookup.LookupEntries, bounded.
func (b *BoundedStore) LookupEntries(ctx context.Context, subject string) (Lookup, error) {
	return bounded(ctx, b, func(ctx context.Context) (Lookup, error) { return b.Store.LookupEntries(ctx, subject) })
}

// EntriesAffecting is EntryStore.EntriesAffecting, bounded.
func (b *BoundedStore) EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]policy.Entry, error) { return b.Store.EntriesAffecting(ctx, subject) })
}

// GetEntry is EntryStore.GetEntry, bounded.
func (b *BoundedStore) GetEntry(ctx context.Context, id string) (policy.Entry, error) {
	return bounded(ctx, b, func(ctx context.Context) (policy.Entry, error) { return b.Store.GetEntry(ctx, id) })
}

// ListEntries is EntryStore.ListEntries, bounded.
func (b *BoundedStore) ListEntries(ctx context.Context, f EntryFilter) ([]policy.Entry, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]policy.Entry, error) { return b.Store.ListEntries(ctx, f) })
}

// PartnerByClientID is PartnerStore.PartnerByClientID, bounded.
func (b *BoundedStore) PartnerByClientID(ctx context.Context, clientID string) (Partner, error) {
	return bounded(ctx, b, func(ctx context.Context) (Partner, error) { return b.Store.PartnerByClientID(ctx, clientID) })
}

// ListPartners is PartnerStore.ListPartners, bounded.
func (b *BoundedStore) ListPartners(ctx context.Context) ([]Partner, error) {
	return bounded(ctx, b, b.Store.ListPartners)
}

// Record is EvidenceStore.Record, bounded.
func (b *BoundedStore) Record(ctx context.Context, id string) (evidence.Record, error) {
	return bounded(ctx, b, func(ctx context.Context) (evidence.Record, error) { return b.Store.Record(ctx, id) })
}

// RecordsBetween is TreeStore.RecordsBetween, bounded.
func (b *BoundedStore) RecordsBetween(ctx context.Context, from, to uint64) ([]evidence.Record, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]evidence.Record, error) { return b.Store.RecordsBetween(ctx, from, to) })
}

// TreeHead is TreeStore.TreeHead, bounded.
func (b *BoundedStore) TreeHead(ctx context.Context) (evidence.Head, error) {
	return bounded(ctx, b, b.Store.TreeHead)
}

// TreeNodes is TreeStore.TreeNodes, bounded.
func (b *BoundedStore) TreeNodes(ctx context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	return bounded(ctx, b, func(ctx context.Context) ([][evidence.HashSize]byte, error) { return b.Store.TreeNodes(ctx, ids) })
}

// LatestCheckpoint is TreeStore.LatestCheckpoint, bounded.
func (b *BoundedStore) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	return bounded(ctx, b, b.Store.LatestCheckpoint)
}

// Checkpoints is TreeStore.Checkpoints, bounded.
func (b *BoundedStore) Checkpoints(ctx context.Context, below uint64, limit int) ([]evidence.StoredCheckpoint, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]evidence.StoredCheckpoint, error) {
		return b.Store.Checkpoints(ctx, below, limit)
	})
}

// VerifierKeys is TreeStore.VerifierKeys, bounded.
func (b *BoundedStore) VerifierKeys(ctx context.Context) ([]evidence.StoredKey, error) {
	return bounded(ctx, b, b.Store.VerifierKeys)
}

// EntryByProceeding is LifecycleStore.EntryByProceeding, bounded.
func (b *BoundedStore) EntryByProceeding(ctx context.Context, id string) (policy.Entry, error) {
	return bounded(ctx, b, func(ctx context.Context) (policy.Entry, error) { return b.Store.EntryByProceeding(ctx, id) })
}

// OpenProceedings is LifecycleStore.OpenProceedings, bounded.
func (b *BoundedStore) OpenProceedings(ctx context.Context, f ProceedingFilter) ([]Proceeding, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]Proceeding, error) { return b.Store.OpenProceedings(ctx, f) })
}

// ViolationRecords is LifecycleStore.ViolationRecords, bounded.
func (b *BoundedStore) ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]policy.ViolationRecord, error) {
		return b.Store.ViolationRecords(ctx, subject, knownAt)
	})
}

// EntriesAffectingAsOf is LifecycleStore.EntriesAffectingAsOf, bounded.
func (b *BoundedStore) EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]policy.Entry, error) {
		return b.Store.EntriesAffectingAsOf(ctx, subject, knownAt)
	})
}

// RecordsOfKind is ActReader.RecordsOfKind, bounded.
func (b *BoundedStore) RecordsOfKind(ctx context.Context, kind evidence.Kind, after int64, limit int) ([]evidence.Record, error) {
	return bounded(ctx, b, func(ctx context.Context) ([]evidence.Record, error) {
		return b.Store.RecordsOfKind(ctx, kind, after, limit)
	})
}

// StoredDuplicates is EntryLoader.StoredDuplicates. With id "" it is the
// read a single entry's create makes before it stores the entry (is the
// same decision stored already?), and it is bounded like any other read of
// a request: on a frozen database the create hung without limit. A load's
// check (id set) is not: it waits, as it must, for the loads before it to
// commit or be discarded.
func (b *BoundedStore) StoredDuplicates(ctx context.Context, id string, held []policy.Entry, limit int) ([]StoredDuplicate, error) {
	if id != "" {
		return b.Store.StoredDuplicates(ctx, id, held, limit)
	}
	return bounded(ctx, b, func(ctx context.Context) ([]StoredDuplicate, error) {
		return b.Store.StoredDuplicates(ctx, id, held, limit)
	})
}

// BeginEntryLoad is EntryLoader.BeginEntryLoad, its first contact with the
// database bounded: a Ping within the bound, then the load's start, which
// is not (it clears what abandoned loads left, which may be much). An
// import may take long, but one begun on a database that does not answer
// waited without limit before it had done anything; it is
// ErrStoreUnavailable now, as any read.
func (b *BoundedStore) BeginEntryLoad(ctx context.Context, id string, now time.Time) error {
	if err := b.Ping(ctx); err != nil {
		return fmt.Errorf("begin entry load: %w", err)
	}
	if err := b.Store.BeginEntryLoad(ctx, id, now); err != nil {
		return storeError(ctx, err, b.timeout)
	}
	return nil
}

// Ping is Store.Ping, bounded.
func (b *BoundedStore) Ping(ctx context.Context) error {
	_, err := bounded(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, b.Store.Ping(ctx) })
	return err
}
