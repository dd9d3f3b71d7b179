package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditUnfinishedIsNotTampering: when the log cannot be read (nobody
// listening, a server failing), audit exits 5, not 1: a scheduled audit
// tells an outage from a log that failed verification without parsing
// text, and the state file is not written.
func TestAuditUnfinishedIsNotTampering(t *testing.T) {
	t.Parallel()
	_, _, vkey := offlineReceipt(t)
	state := filepath.Join(t.TempDir(), "audit.json")
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	for name, url := range map[string]string{"nobody listening": "http://127.0.0.1:1", "a failing server": failing.URL} {
		code, out := runCLI("audit", "--key", vkey, "--url", url, "--state", state, "--timeout", "5s")
		if code != exitAuditUnfinished || strings.Contains(out, "OK:") {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, exitAuditUnfinished, out)
		}
	}
	if code, out := runCLI("audit", "--help"); code != 0 || !strings.Contains(out, "5 the log could not be read") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}
