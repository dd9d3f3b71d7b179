package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
)

// status GETs path on h and returns the status code and body.
func status(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// With an admin listener, the operations endpoints and the profiler are
// served there and only there; without one, the operations endpoints stay
// on the partner port and the profiler is nowhere.
func TestAdminListenerTakesOperationsOffThePartnerPort(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ops := []string{"/healthz", "/readyz", "/metrics"}
	profiler := []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/symbol"}

	t.Run("separate", func(t *testing.T) {
		s := gateway.New(nil, nil, nil, access.NewTokens(key), gateway.WithAdminListener())
		partner, admin := s.Handler(), s.AdminHandler()
		for _, p := range append(ops, profiler...) {
			if code, body := status(t, partner, p); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
				t.Errorf("partner port GET %s: %d %.80s, want 404 not_found", p, code, body)
			}
			if code, body := status(t, admin, p); code != http.StatusOK {
				t.Errorf("admin port GET %s: %d %.200s", p, code, body)
			}
		}
		if _, body := status(t, admin, "/metrics"); !strings.Contains(body, "credgate_checks_total") && !strings.Contains(body, "go_goroutines") {
			t.Errorf("admin /metrics lacks credgate's metrics: %.200s", body)
		}
		if _, body := status(t, admin, "/debug/pprof/goroutine?debug=1"); !strings.Contains(body, "goroutine profile") {
			t.Errorf("admin pprof goroutine profile: %.200s", body)
		}
		if code, _ := status(t, admin, "/v1/catalog"); code != http.StatusNotFound {
			t.Errorf("admin port serves the API: GET /v1/catalog %d", code)
		}
	})
	t.Run("single port", func(t *testing.T) {
		partner := gateway.New(nil, nil, nil, access.NewTokens(key)).Handler()
		for _, p := range ops {
			if code, body := status(t, partner, p); code != http.StatusOK {
				t.Errorf("GET %s: %d %.200s", p, code, body)
			}
		}
		for _, p := range profiler {
			if code, _ := status(t, partner, p); code != http.StatusNotFound {
				t.Errorf("partner port serves the profiler: GET %s %d", p, code)
			}
		}
	})
}
