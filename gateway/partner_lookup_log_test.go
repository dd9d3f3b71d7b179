package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// failingPartners is a store whose partner lookups fail, while fail is
// set, with the real store's own error for a database that does not answer
// in time.
type failingPartners struct {
	service.Store
	fail atomic.Bool
}

func (f *failingPartners) PartnerByClientID(ctx context.Context, id string) (service.Partner, error) {
	if f.fail.Load() {
		past, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		ctx = past
	}
	return f.Store.PartnerByClientID(ctx, id)
}

// When the partner lookup fails, the error logged with the 5xx does not
// name the client id: it may be a secret pasted into the wrong field.
func TestStoreErrorDoesNotLogClientID(t *testing.T) {
	var logs testenv.SyncBuffer
	var fp *failingPartners
	h := newHarness(t, withGateway(gateway.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))), func(c *harnessConfig) {
		c.wrap = func(st service.Store) service.Store {
			fp = &failingPartners{Store: st}
			return service.NewBoundedStore(fp)
		}
	})
	fp.fail.Store(true)
	pasted := "LEAKEDSECRET_" + randHex()
	res := h.tokenForm("192.0.2.60:1", secretForm(pasted, "x-0123456789abcdef"))
	if res.Status < 500 {
		t.Fatalf("token with the store failing: %d %s", res.Status, res.Body)
	}
	out := logs.String()
	if !strings.Contains(out, "request failed") {
		t.Fatalf("the failure was not logged:\n%s", out)
	}
	if strings.Contains(out, pasted) {
		t.Errorf("the client id as typed is in the log:\n%s", out)
	}
	if strings.Contains(string(res.Body), pasted) {
		t.Errorf("the client id as typed is in the answer: %s", res.Body)
	}
}
