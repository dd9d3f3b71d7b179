package main

import (
	"io"
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
	admin := adminURL(t, logs.String())
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
	// The appender's histograms are there, with the start's own record
	// (the catalogue loaded) committed.
	body := getBody(t, admin+"/metrics")
	for _, name := range []string{"credgate_evidence_commit_seconds", "credgate_evidence_commit_start_lag_seconds", "credgate_evidence_batch_records",
		"credgate_evidence_queue_wait_seconds", "credgate_evidence_append_seconds"} {
		if !regexp.MustCompile(`(?m)^` + name + `_count [1-9]`).Match(body) {
			t.Errorf("/metrics has no observation of %s", name)
		}
	}
	// serve's limit on the partner port's connections reports there too
	// (gateway.Server.LimitConnections), not only in its log.
	for _, line := range []string{`credgate_connections_max [1-9]`, `credgate_connections_open [0-9]`, `credgate_connections_refused_total 0`} {
		if !regexp.MustCompile(`(?m)^` + line).Match(body) {
			t.Errorf("/metrics has no line %q", line)
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

// adminURL is the admin listener's URL from serve's logs (logged before
// the partner port's welcome, which serveInProcess waits for).
func adminURL(t *testing.T, logs string) string {
	t.Helper()
	m := adminListening.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("serve did not log its admin listener:\n%s", logs)
	}
	return "http://" + m[1]
}

// getBody is the body of a GET of url, whatever its status.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
