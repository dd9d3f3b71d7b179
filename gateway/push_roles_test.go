package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// An auditor is read-only: it may read its feed, webhook and watchlist
// size, but not subscribe to events, by a webhook (PUT /v1/webhook) or a
// watchlist (POST /v1/watchlist): 403 forbidden, nothing stored. Partners
// and administrators still may.
func TestAuditorCannotSubscribeToEvents(t *testing.T) {
	h := newPushHarness(t)
	created := h.createPartner(map[string]any{"name": "审计署", "role": "auditor"})
	aud := h.token(created["client_id"].(string), created["client_secret"].(string))
	subject := testenv.USCC(t, "91310000MA1FL0000")

	webhook, _ := json.Marshal(map[string]string{"url": "https://audit.example/hook"})
	for _, r := range []struct {
		method, path, contentType string
		body                      []byte
	}{
		{http.MethodPut, "/v1/webhook", "application/json", webhook},
		{http.MethodPost, "/v1/watchlist", "text/plain", []byte(subject + "\n")},
		{http.MethodPost, "/v1/watchlist?op=remove", "text/plain", []byte(subject + "\n")},
	} {
		problemCode(t, h.do(r.method, r.path, aud, r.contentType, r.body), http.StatusForbidden, "forbidden")
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/webhook", aud, nil), http.StatusNotFound, "not_found")
	if res := h.doJSON(http.MethodGet, "/v1/watchlist", aud, nil); res.Status != http.StatusOK || res.json(t)["size"] != float64(0) {
		t.Fatalf("auditor's watchlist: %d %s", res.Status, res.Body)
	}
	if res := h.doJSON(http.MethodGet, "/v1/events", aud, nil); res.Status != http.StatusOK {
		t.Fatalf("auditor's feed: %d %s", res.Status, res.Body)
	}

	// The roles that subscribe still do.
	_, partner := h.partner("银行", "government_procurement")
	for name, tok := range map[string]string{"partner": partner, "admin": h.adminTok} {
		if res := h.do(http.MethodPost, "/v1/watchlist", tok, "text/plain", []byte(subject+"\n")); res.Status != http.StatusOK {
			t.Errorf("%s's watchlist: %d %s", name, res.Status, res.Body)
		}
		if res := h.doJSON(http.MethodPut, "/v1/webhook", tok, map[string]string{"url": "https://" + name + ".example/hook"}); res.Status != http.StatusOK {
			t.Errorf("%s's webhook: %d %s", name, res.Status, res.Body)
		}
	}
}
