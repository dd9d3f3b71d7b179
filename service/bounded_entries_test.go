package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// frozenEntryStore is a store whose single-entry duplicate check and Ping
// behave as on a frozen database (they wait until their context ends) or
// a stopped one (refused), while a load's own duplicate check answers,
// noting whether it was given a deadline.
type frozenEntryStore struct {
	service.Store
	down error // nil: frozen; else what the database answers
	ping bool  // Ping answers (the database is up for the load's start)

	mu            sync.Mutex
	loadDeadlines []bool // per load check (id set): whether ctx had a deadline
}

func (f *frozenEntryStore) away(ctx context.Context, what string) error {
	if f.down != nil {
		return fmt.Errorf("%s: %w", what, f.down)
	}
	<-ctx.Done()
	return fmt.Errorf("%s: %w", what, ctx.Err())
}

func (f *frozenEntryStore) StoredDuplicates(ctx context.Context, id string, held []policy.Entry, limit int) ([]service.StoredDuplicate, error) {
	if id == "" {
		return nil, f.away(ctx, "stored duplicates")
	}
	_, ok := ctx.Deadline()
	f.mu.Lock()
	f.loadDeadlines = append(f.loadDeadlines, ok)
	f.mu.Unlock()
	return f.Store.StoredDuplicates(ctx, id, held, limit)
}

func (f *frozenEntryStore) Ping(ctx context.Context) error {
	if f.ping {
		return f.Store.Ping(ctx)
	}
	return f.away(ctx, "ping")
}

// TestBoundedEntryWritesFailWithinBound: creating an entry first reads
// whether the same entry is stored already, and an import first reaches
// the database to begin its load. On a frozen database both waited
// without limit (the read was exempt from the bound, as a load's is); on
// a stopped one the create was an unexplained error (500). Both are
// ErrStoreUnavailable (503 store_unavailable) now, and nothing is stored.
// A load's own duplicate check is still not bounded: it waits for the
// loads before it.
func TestBoundedEntryWritesFailWithinBound(t *testing.T) {
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	subject := testenv.USCC(t, "91110000MA00BNDE0")
	in := service.EntryInput{
		Subject: subject, List: "court_dishonest_debtor", OriginatingDepartment: "某人民法院",
		Reason: "有履行能力而拒不履行", LegalBasis: "《民事诉讼法》",
		DecidedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PublishedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		down error
	}{{"frozen", nil}, {"stopped", refused}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &frozenEntryStore{Store: st, down: tc.down}
			entries := service.NewEntries(service.NewBoundedStore(fs, service.WithStoreTimeout(50*time.Millisecond)), cat,
				service.WithEntriesAudit(service.NewAudit(app)))
			// The caller's own deadline only keeps a regression from
			// hanging the run: it is not the store's bound, and an error
			// of it is not ErrStoreUnavailable.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := entries.Create(ctx, in); !errors.Is(err, service.ErrStoreUnavailable) {
				t.Errorf("create: %v, want ErrStoreUnavailable", err)
			}
			_, err := entries.ImportFile(ctx, bytes.NewReader(testenv.ListedNDJSON([]string{subject})), service.FormatNDJSON, nil)
			if !errors.Is(err, service.ErrStoreUnavailable) {
				t.Errorf("import: %v, want ErrStoreUnavailable", err)
			}
			stored, err := st.EntriesAffecting(context.Background(), subject)
			if err != nil || len(stored) != 0 {
				t.Fatalf("stored: %d entries, %v", len(stored), err)
			}
		})
	}

	// The database answering, an import goes through, and its load's
	// duplicate check had no deadline of the store's.
	fs := &frozenEntryStore{Store: st, ping: true}
	entries := service.NewEntries(service.NewBoundedStore(fs, service.WithStoreTimeout(50*time.Millisecond)), cat,
		service.WithEntriesAudit(service.NewAudit(app)))
	res, err := entries.ImportFile(context.Background(), bytes.NewReader(testenv.ListedNDJSON([]string{subject})), service.FormatNDJSON, nil)
	if err != nil || res.Count != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	if len(fs.loadDeadlines) == 0 {
		t.Fatal("the load's duplicate check did not reach the store")
	}
	for _, bounded := range fs.loadDeadlines {
		if bounded {
			t.Error("a load's duplicate check was given the store's deadline: it must be free to wait for the loads before it")
		}
	}
}
