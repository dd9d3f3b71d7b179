package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
)

// The admin port served the process's arguments at /debug/pprof/cmdline,
// and with them any secret given as a flag (--token-key, --postgres-url
// with its password): whoever may read the metrics could read those.
func TestAdminPortServesNoCommandLine(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	admin := gateway.New(nil, nil, nil, access.NewTokens(key), gateway.WithAdminListener()).AdminHandler()
	for _, p := range []string{"/debug/pprof/cmdline", "/debug/pprof/cmdline?x=1"} {
		code, body := status(t, admin, p)
		if code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
		if strings.Contains(body, os.Args[0]) {
			t.Errorf("GET %s shows the command line: %.200s", p, body)
		}
	}
	// The profiles stay.
	if code, _ := status(t, admin, "/debug/pprof/heap?debug=1"); code != http.StatusOK {
		t.Errorf("GET /debug/pprof/heap: %d", code)
	}
}
