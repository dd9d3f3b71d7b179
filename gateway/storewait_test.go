package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// freezable is a store whose reads hang, as a frozen database's do, until
// their context ends.
type freezable struct {
	service.Store
	frozen atomic.Bool
}

func (f *freezable) wait(ctx context.Context) error {
	if !f.frozen.Load() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *freezable) PartnerByClientID(ctx context.Context, id string) (service.Partner, error) {
	if err := f.wait(ctx); err != nil {
		return service.Partner{}, err
	}
	return f.Store.PartnerByClientID(ctx, id)
}

func (f *freezable) LookupEntries(ctx context.Context, subject string) (service.Lookup, error) {
	if err := f.wait(ctx); err != nil {
		return service.Lookup{}, err
	}
	return f.Store.LookupEntries(ctx, subject)
}

func (f *freezable) VerifierKeys(ctx context.Context) ([]evidence.StoredKey, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	return f.Store.VerifierKeys(ctx)
}

func (f *freezable) LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error) {
	if err := f.wait(ctx); err != nil {
		return evidence.StoredCheckpoint{}, err
	}
	return f.Store.LatestCheckpoint(ctx)
}

func (f *freezable) ListEntries(ctx context.Context, flt service.EntryFilter) ([]policy.Entry, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	return f.Store.ListEntries(ctx, flt)
}

// A database that stops answering fails every request that waits on it
// within store.timeout, with 503 store_unavailable (data_unavailable for a
// check), never a hang and never 500: the token endpoint, authenticated
// calls whose partner must be re-read, checks, and the public evidence
// keys and checkpoint. When it answers again, so does credgate.
func TestFrozenStoreFailsWithinBound(t *testing.T) {
	const bound = 200 * time.Millisecond
	var fz *freezable
	h := newHarness(t, func(c *harnessConfig) {
		c.wrap = func(st service.Store) service.Store {
			fz = &freezable{Store: st}
			return service.NewBoundedStore(fz, service.WithStoreTimeout(bound))
		}
	})
	fz.frozen.Store(true)

	cases := []struct {
		name, method, path, token, code string
		body                            any
	}{
		{"token", http.MethodPost, "/v1/oauth/token", "", "store_unavailable", nil},
		{"partner re-read", http.MethodGet, "/v1/catalog", h.adminTok, "store_unavailable", nil},
		{"keys", http.MethodGet, "/v1/evidence/keys", "", "store_unavailable", nil},
		{"checkpoint", http.MethodGet, "/v1/evidence/checkpoint", "", "store_unavailable", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			var res response
			if tc.name == "token" {
				res = h.do(tc.method, tc.path, "", "application/x-www-form-urlencoded",
					[]byte("grant_type=client_credentials&client_id="+adminID+"&client_secret="+adminSecret))
			} else {
				res = h.doJSON(tc.method, tc.path, tc.token, tc.body)
			}
			took := time.Since(start)
			if res.Status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", res.Status, res.Body)
			}
			if code := res.json(t)["code"]; code != tc.code {
				t.Errorf("code %v, want %s", code, tc.code)
			}
			if took > bound+time.Second {
				t.Errorf("answered after %s, bound %s", took, bound)
			}
		})
	}

	// A check: its partner is now cached as unreadable (nothing cached),
	// so thaw for the partner, freeze the entries only.
	fz.frozen.Store(false)
	if res := h.doJSON(http.MethodGet, "/v1/catalog", h.adminTok, nil); res.Status != http.StatusOK {
		t.Fatalf("after thaw: %d %s", res.Status, res.Body)
	}
	fz.frozen.Store(true)
	start := time.Now()
	res := h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{
		"subject": map[string]string{"id": "914403001922038216"}, "action": "government_procurement"})
	if res.Status != http.StatusServiceUnavailable || res.json(t)["code"] != "data_unavailable" {
		t.Fatalf("check on a frozen store: %d %s", res.Status, res.Body)
	}
	if took := time.Since(start); took > bound+time.Second {
		t.Errorf("check answered after %s, bound %s", took, bound)
	}

	fz.frozen.Store(false)
	res = h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{
		"subject": map[string]string{"id": "914403001922038216"}, "action": "government_procurement"})
	if res.Status != http.StatusOK {
		t.Fatalf("check after thaw: %d %s", res.Status, res.Body)
	}
	var keys map[string]any
	if res := h.doJSON(http.MethodGet, "/v1/evidence/keys", "", nil); res.Status != http.StatusOK || json.Unmarshal(res.Body, &keys) != nil {
		t.Fatalf("keys after thaw: %d %s", res.Status, res.Body)
	}
}
