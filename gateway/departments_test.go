package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// newDepartmentsHarness is the push harness with departments'
// subscriptions, its push store decorated by wrap (nil: as is).
func newDepartmentsHarness(t *testing.T, wrap func(service.PushStore) service.PushStore) *pushHarness {
	ph := &pushHarness{}
	ph.harness = newHarness(t, func(hc *harnessConfig) {
		hc.services = func(raw service.Store, cat *policy.Catalog, audit *service.Audit) []gateway.Option {
			ps := raw.(service.PushStore)
			if wrap != nil {
				ps = wrap(ps)
			}
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			ph.events = service.NewEvents(ps, raw, raw, cat, service.WithEventsAudit(audit))
			ph.deliverer = service.NewDeliverer(ps, service.NewWebhookSigner(key), webhook.NewSender(), service.WithDeliveryAudit(audit))
			return []gateway.Option{
				gateway.WithDepartments(service.NewDepartments(ps, raw, cat, service.WithDepartmentsAudit(audit))),
				gateway.WithPush(ph.events, service.NewWatchlists(ps, service.WithWatchlistsAudit(audit)), ph.deliverer),
			}
		}
	})
	return ph
}

func feedOf(t *testing.T, h *pushHarness, tok string) []service.Event {
	t.Helper()
	res := h.doJSON(http.MethodGet, "/v1/events", tok, nil)
	var page struct{ Events []service.Event }
	if err := json.Unmarshal(res.Body, &page); err != nil || res.Status != http.StatusOK {
		t.Fatalf("feed: %d %s", res.Status, res.Body)
	}
	return page.Events
}

// A department subscribed to 国家发展改革委 is told when a subject it never
// checked is black-listed, naming that authority's measures (for the
// actions they bind) and no other's; a department of an authority without
// measures on that list is told nothing. Unknown authorities, unknown
// partners and administrators are refused with their problems, and
// nothing is changed by a refused request.
func TestDepartmentSubscriptions(t *testing.T) {
	h := newDepartmentsHarness(t, nil)
	const ndrc, urban = "国家发展改革委", "城市管理部门"
	deptID, deptTok := h.partner("某省发展改革委", "project_approval")
	otherID, otherTok := h.partner("某市城市管理局", "administrative_licensing")
	path := "/v1/admin/partners/" + deptID + "/authorities"

	if res := h.doJSON(http.MethodGet, path, h.adminTok, nil); res.Status != http.StatusOK || res.json(t)["authorities"] == nil {
		t.Fatalf("get before subscribing: %d %s", res.Status, res.Body)
	}
	pr := problemCode(t, h.doJSON(http.MethodPut, path, h.adminTok, map[string]any{"authorities": []string{ndrc, "发展改革委"}}),
		http.StatusUnprocessableEntity, "unknown_authority")
	if pr["field"] != "authorities" {
		t.Errorf("unknown authority problem: %v", pr)
	}
	problemCode(t, h.doJSON(http.MethodPut, path, h.adminTok, map[string]any{}), http.StatusUnprocessableEntity, "invalid_subscription")
	problemCode(t, h.doJSON(http.MethodPut, "/v1/admin/partners/cg_nobody/authorities", h.adminTok,
		map[string]any{"authorities": []string{ndrc}}), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodPut, "/v1/admin/partners/"+adminID+"/authorities", h.adminTok,
		map[string]any{"authorities": []string{ndrc}}), http.StatusUnprocessableEntity, "invalid_subscription")
	problemCode(t, h.doJSON(http.MethodPut, path, deptTok, map[string]any{"authorities": []string{ndrc}}), http.StatusForbidden, "forbidden")

	res := h.doJSON(http.MethodPut, path, h.adminTok, map[string]any{"authorities": []string{ndrc, ndrc}})
	if res.Status != http.StatusOK {
		t.Fatalf("subscribe: %d %s", res.Status, res.Body)
	}
	var sub service.DepartmentSubscription
	_ = json.Unmarshal(res.Body, &sub)
	if !slices.Equal(sub.Authorities, []string{ndrc}) || sub.Partner != deptID || sub.UpdatedAt.IsZero() {
		t.Fatalf("subscription = %+v", sub)
	}
	if res := h.doJSON(http.MethodPut, "/v1/admin/partners/"+otherID+"/authorities", h.adminTok,
		map[string]any{"authorities": []string{urban}}); res.Status != http.StatusOK {
		t.Fatalf("subscribe the other: %d %s", res.Status, res.Body)
	}

	subject := testenv.USCC(t, "91110108MA01DEPT1")
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(subject)); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	h.fanOut()
	evs := feedOf(t, h, deptTok)
	if len(evs) != 1 {
		t.Fatalf("department's events = %+v", evs)
	}
	ev := evs[0]
	if ev.Kind != service.EventListed || ev.Subject.ID != subject || !slices.Equal(ev.Subscription, []string{service.SubscribedAuthority}) ||
		!slices.Equal(ev.Authorities, []string{ndrc}) {
		t.Fatalf("department's event = %+v", ev)
	}
	var named []string
	for _, mc := range ev.Changes {
		if len(mc.InForce) == 0 || len(mc.OutOfForce) != 0 {
			t.Errorf("change %+v: want measures newly in force only", mc)
		}
		for _, m := range mc.InForce {
			if m.Authority != ndrc {
				t.Errorf("measure %s of %s named to a department of %s", m.ID, m.Authority, ndrc)
			}
			named = append(named, m.ID)
		}
	}
	for _, want := range []string{"sp-02-major-projects", "sp-02-subsidies", "sp-05-concession"} {
		if !slices.Contains(named, want) {
			t.Errorf("measures named %v, want %s among them", named, want)
		}
	}
	if evs := feedOf(t, h, otherTok); len(evs) != 0 {
		t.Fatalf("a department of %s was told: %+v", urban, evs)
	}

	// Auditors read subscriptions; an empty list ends one.
	if res := h.doJSON(http.MethodPut, path, h.adminTok, map[string]any{"authorities": []string{}}); res.Status != http.StatusOK ||
		len(res.json(t)["authorities"].([]any)) != 0 {
		t.Fatalf("unsubscribe: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(testenv.USCC(t, "91110108MA01DEPT2"))); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	h.fanOut()
	if evs := feedOf(t, h, deptTok); len(evs) != 1 {
		t.Fatalf("events after unsubscribing = %+v", evs)
	}
}

// frozenFeed is a push store whose event reads hang, as a frozen
// database's do, until their context ends.
type frozenFeed struct {
	service.PushStore
	frozen atomic.Bool
}

func (f *frozenFeed) Events(ctx context.Context, partner string, after int64, limit int) ([]service.StoredEvent, error) {
	if f.frozen.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.PushStore.Events(ctx, partner, after, limit)
}

func (f *frozenFeed) PendingChanges(ctx context.Context, limit int) ([]service.OutboxChange, error) {
	if f.frozen.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.PushStore.PendingChanges(ctx, limit)
}

// A feed read (a plain one and a long-poll) against a store that stopped
// answering ends within store.timeout with 503 store_unavailable, like a
// check's reads, and so does a fan-out pass; when the store answers again,
// so does the feed. Without the bound both would wait until the client
// gives up.
func TestEventFeedFrozenStoreFailsWithinBound(t *testing.T) {
	const bound = 200 * time.Millisecond
	var fz *frozenFeed
	h := newDepartmentsHarness(t, func(ps service.PushStore) service.PushStore {
		fz = &frozenFeed{PushStore: ps}
		return service.NewBoundedPushStore(fz, service.WithStoreTimeout(bound))
	})
	_, tok := h.partner("银行", "government_procurement")
	fz.frozen.Store(true)
	for _, path := range []string{"/v1/events", "/v1/events?wait=20"} {
		problemCode(t, h.doJSON(http.MethodGet, path, tok, nil), http.StatusServiceUnavailable, "store_unavailable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.events.FanOut(ctx); ctx.Err() != nil || !errors.Is(err, service.ErrStoreUnavailable) {
		t.Fatalf("fan-out against a frozen store: %v (caller's context: %v)", err, ctx.Err())
	}
	fz.frozen.Store(false)
	if res := h.doJSON(http.MethodGet, "/v1/events", tok, nil); res.Status != http.StatusOK {
		t.Fatalf("feed after the store is back: %d %s", res.Status, res.Body)
	}
}
