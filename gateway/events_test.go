package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// pushHarness is the harness with events, watchlists and webhooks, whose
// fan-out and deliverer the test drives.
type pushHarness struct {
	*harness
	events    *service.Events
	deliverer *service.Deliverer
}

func newPushHarness(t *testing.T) *pushHarness {
	ph := &pushHarness{}
	ph.harness = newHarness(t, func(hc *harnessConfig) {
		hc.services = func(raw service.Store, cat *policy.Catalog, audit *service.Audit) []gateway.Option {
			ps := raw.(service.PushStore)
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			ph.events = service.NewEvents(ps, raw, raw, cat, service.WithEventsAudit(audit))
			// The receivers are httptest servers on the loopback address,
			// which the operator's allow-list (events.webhook_allow) names.
			allow, err := webhook.ParseAllow([]string{"127.0.0.0/8"})
			if err != nil {
				t.Fatal(err)
			}
			ph.deliverer = service.NewDeliverer(ps, service.NewWebhookSigner(key), webhook.NewSender(webhook.WithAllow(allow)), service.WithDeliveryAudit(audit),
				service.WithDeliveryBackoff(time.Millisecond, time.Millisecond), service.WithDeliveryAttempts(2))
			return []gateway.Option{gateway.WithPush(ph.events, service.NewWatchlists(ps, service.WithWatchlistsAudit(audit)), ph.deliverer)}
		}
	})
	return ph
}

func (h *pushHarness) fanOut() {
	h.t.Helper()
	for {
		n, err := h.events.FanOut(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// Every push endpoint, through the gateway and against openapi.yaml: a
// partner checks a subject and watches another; both are listed; the feed
// (and a long-poll) returns their events; the webhook, set and read back,
// receives them; a dead delivery is listed and replayed by the
// administrator; bad input is refused with its problem code.
func TestPushEndpoints(t *testing.T) {
	h := newPushHarness(t)
	checked := testenv.USCC(t, "91110108MA01ABCD1")
	watched := testenv.USCC(t, "91310000MA1FL0000")
	clientID, tok := h.partner("银行", "government_procurement")

	res := h.do(http.MethodGet, gateway.WebhookKeysPath, "", "", nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"crv":"Ed25519"`) {
		t.Fatalf("keys: %d %s", res.Status, res.Body)
	}

	h.check(tok, checked, "government_procurement")
	res = h.do(http.MethodPost, "/v1/watchlist", tok, "text/plain", []byte("subject\n"+watched+"\n"))
	if res.Status != http.StatusOK || res.json(t)["size"] != float64(1) {
		t.Fatalf("watchlist upload: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.do(http.MethodPost, "/v1/watchlist", tok, "text/plain", []byte(watched+"\nnope\n")), http.StatusUnprocessableEntity, "watchlist_rejected")
	problemCode(t, h.do(http.MethodPost, "/v1/watchlist?op=drop", tok, "text/plain", []byte(watched)), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.do(http.MethodPost, "/v1/watchlist", tok, "application/json", []byte(`"x"`)), http.StatusUnsupportedMediaType, "unsupported_media_type")
	if res = h.doJSON(http.MethodGet, "/v1/watchlist", tok, nil); res.Status != http.StatusOK || res.json(t)["size"] != float64(1) {
		t.Fatalf("watchlist size: %d %s", res.Status, res.Body)
	}

	var (
		mu       sync.Mutex
		received []string
		down     = true
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		received = append(received, r.Header.Get(service.HeaderWebhookID)+" "+string(b))
	}))
	defer recv.Close()
	problemCode(t, h.doJSON(http.MethodGet, "/v1/webhook", tok, nil), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodPut, "/v1/webhook", tok, map[string]string{"url": "https://user:pw@bank.example/"}), http.StatusBadRequest, "invalid_webhook")
	if res = h.doJSON(http.MethodPut, "/v1/webhook", tok, map[string]string{"url": recv.URL + "/events"}); res.Status != http.StatusOK {
		t.Fatalf("put webhook: %d %s", res.Status, res.Body)
	}
	if res = h.doJSON(http.MethodGet, "/v1/webhook", tok, nil); res.Status != http.StatusOK || res.json(t)["url"] != recv.URL+"/events" {
		t.Fatalf("get webhook: %d %s", res.Status, res.Body)
	}

	// A long-poll waiting while both subjects are listed.
	polled := make(chan response, 1)
	go func() { polled <- h.doJSON(http.MethodGet, "/v1/events?wait=10", tok, nil) }()
	for _, s := range []string{checked, watched} {
		if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(s)); res.Status != http.StatusCreated {
			t.Fatalf("create entry: %d %s", res.Status, res.Body)
		}
	}
	h.fanOut()
	select {
	case res = <-polled:
		var page struct{ Events []service.Event }
		if err := json.Unmarshal(res.Body, &page); err != nil || res.Status != http.StatusOK || len(page.Events) == 0 {
			t.Fatalf("long-poll: %d %s", res.Status, res.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not return")
	}
	res = h.doJSON(http.MethodGet, "/v1/events", tok, nil)
	var page struct {
		Events []service.Event
		Next   string
	}
	if err := json.Unmarshal(res.Body, &page); err != nil || len(page.Events) != 2 {
		t.Fatalf("feed: %d %s", res.Status, res.Body)
	}
	if page.Events[0].Subject.ID != checked || page.Events[1].Subject.ID != watched || page.Next != page.Events[1].Cursor {
		t.Fatalf("feed order: %s", res.Body)
	}
	if len(page.Events[0].Changes) != 1 || len(page.Events[0].Changes[0].InForce) == 0 {
		t.Fatalf("the event names no new measure: %s", res.Body)
	}
	res = h.doJSON(http.MethodGet, "/v1/events?after="+page.Events[0].Cursor+"&limit=5", tok, nil)
	if !strings.Contains(string(res.Body), page.Events[1].ID) || strings.Contains(string(res.Body), page.Events[0].ID) {
		t.Fatalf("after the first cursor: %s", res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/events?after=abc", tok, nil), http.StatusBadRequest, "invalid_cursor")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/events?wait=99", tok, nil), http.StatusBadRequest, "invalid_query")
	// Another partner sees none of them.
	_, other := h.partner("平台", "government_procurement")
	if res = h.doJSON(http.MethodGet, "/v1/events", other, nil); !strings.Contains(string(res.Body), `"events":[]`) {
		t.Fatalf("another partner's feed: %s", res.Body)
	}

	// The receiver is down: two attempts, then dead.
	for range 5 {
		if _, err := h.deliverer.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res = h.doJSON(http.MethodGet, "/v1/webhook/deliveries?state=dead", tok, nil)
	if res.Status != http.StatusOK || strings.Count(string(res.Body), `"state":"dead"`) != 2 {
		t.Fatalf("dead deliveries: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/webhook/deliveries?state=lost", tok, nil), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/deliveries", tok, nil), http.StatusForbidden, "forbidden")
	if res = h.doJSON(http.MethodGet, "/v1/admin/deliveries?partner="+clientID+"&state=dead&limit=1", h.adminTok, nil); res.Status != http.StatusOK || res.json(t)["next"] == nil {
		t.Fatalf("admin deliveries: %d %s", res.Status, res.Body)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/deliveries/replay", h.adminTok, map[string]any{}), http.StatusBadRequest, "invalid_webhook")
	res = h.doJSON(http.MethodPost, "/v1/admin/deliveries/replay", h.adminTok, map[string]any{"partner": clientID})
	if res.Status != http.StatusOK || strings.Count(string(res.Body), "evt_") != 2 {
		t.Fatalf("replay: %d %s", res.Status, res.Body)
	}
	if _, err := h.deliverer.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(received) != 2 || !strings.HasPrefix(received[0], page.Events[0].ID+" ") && !strings.HasPrefix(received[1], page.Events[0].ID+" ") {
		t.Fatalf("received %q", received)
	}
	mu.Unlock()
	if res = h.doJSON(http.MethodDelete, "/v1/webhook", tok, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete webhook: %d %s", res.Status, res.Body)
	}
	if res = h.do(http.MethodPost, "/v1/watchlist?op=remove", tok, "text/csv", []byte(watched+",loan-1\n")); res.Status != http.StatusOK || res.json(t)["size"] != float64(0) {
		t.Fatalf("watchlist removal: %d %s", res.Status, res.Body)
	}
}

// Without push configured the routes answer 503 push_unavailable.
func TestPushUnavailable(t *testing.T) {
	h := newHarness(t)
	_, tok := h.partner("银行", "government_procurement")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/events", tok, nil), http.StatusServiceUnavailable, "push_unavailable")
}
