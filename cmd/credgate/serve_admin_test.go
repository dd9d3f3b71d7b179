package main

import (
	"net/http"
	"regexp"
	"testing"
)

var adminListening = regexp.MustCompile(`"msg":"credgate admin listener serving","addr":"([^"]+)"`)

// serve --admin-addr runs two listeners: partners on --addr, with no
// operations endpoint and no profiler; /metrics, /readyz, /healthz and
// pprof on the admin address.
func TestServeAdminListener(t *testing.T) {
	dataDir := t.TempDir()
	base, logs, stop := serveInProcess(t, dataDir, "--admin-addr", "127.0.0.1:0")
	defer stop()
	// Logged before the partner port's welcome, which serveInProcess waited for.
	m := adminListening.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("serve did not log its admin listener:\n%s", logs.String())
	}
	admin := "http://" + m[1]
	get := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		if code := get(admin + p); code != http.StatusOK {
			t.Errorf("admin GET %s: %d", p, code)
		}
		if code := get(base + p); code != http.StatusNotFound {
			t.Errorf("partner GET %s: %d, want 404", p, code)
		}
	}
	// The partner port still answers partners.
	_, tok := adminToken(t, base, dataDir)
	if code := getJSON(t, base, "/v1/catalog", tok, nil); code != http.StatusOK {
		t.Errorf("partner GET /v1/catalog: %d", code)
	}
	if code := get(admin + "/v1/catalog"); code != http.StatusNotFound {
		t.Errorf("admin GET /v1/catalog: %d, want 404", code)
	}
}
