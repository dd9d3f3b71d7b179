package console_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// storeDownForDuplicates is a store whose read of a single entry's stored
// duplicates finds the database stopped.
type storeDownForDuplicates struct{ service.Store }

func (s storeDownForDuplicates) StoredDuplicates(ctx context.Context, id string, held []policy.Entry, limit int) ([]service.StoredDuplicate, error) {
	if id != "" {
		return s.Store.StoredDuplicates(ctx, id, held, limit)
	}
	return nil, fmt.Errorf("stored duplicates: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

// TestCreateEntryStoreDown: the console's create goes through the same
// Entries.Create as the API's: with the database away when it reads
// whether the entry is stored already, the page says 503
// store_unavailable (it was a 500), the form is kept and nothing is
// recorded.
func TestCreateEntryStoreDown(t *testing.T) {
	h := newHarnessOver(t, func(d *console.Deps, base harnessBase) {
		d.Entries = service.NewEntries(service.NewBoundedStore(storeDownForDuplicates{base.st}), base.cat,
			service.WithEntriesAudit(base.audit))
	})
	b, token := h.signedIn(adminID, adminSecret)
	before := h.actCount(service.ActEntryCreated)
	p := b.post("/console/entries", url.Values{"csrf": {token}, "subject_id": {testenv.USCC(t, "91110000MA00BNDE0")}, "list": {"court_dishonest_debtor"},
		"originating_department": {"某人民法院"}, "reason": {"有履行能力而拒不履行"}, "legal_basis": {"《民事诉讼法》"},
		"decided_at": {"2026-01-01T09:00"}, "published_at": {"2026-01-02T09:00"}})
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "store_unavailable") {
		t.Fatalf("create with the store down: %d\n%s", p.status, p.body)
	}
	if !strings.Contains(p.body, `value="某人民法院"`) {
		t.Fatal("the refused form is not refilled")
	}
	if h.actCount(service.ActEntryCreated) != before {
		t.Fatal("a refused create was recorded")
	}
}
