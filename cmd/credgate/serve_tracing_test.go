package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// collector is an OTLP/HTTP trace receiver: it keeps the bodies posted to
// /v1/traces (protobuf; the test looks only for span names in them).
type collector struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) all() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.bodies, nil)
}

// serve with --tracing-exporter otlp-http sends the check path's spans to
// the collector (flushed when the server stops), and none of them carries
// the subject checked.
func TestServeExportsTraces(t *testing.T) {
	col := &collector{}
	ts := httptest.NewServer(col)
	defer ts.Close()
	dataDir := t.TempDir()
	base, stop := serveUntilListening(t, dataDir, "--tracing-exporter", "otlp-http", "--tracing-endpoint", ts.URL)
	_, token := adminToken(t, base, dataDir)
	const subject = "91350100M000100Y43"
	body := `{"subject":{"id":"` + subject + `"},"action":"government_procurement"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/checks", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("check: %d", res.StatusCode)
	}
	stop() // flushes the batch of spans
	got := col.all()
	for _, name := range []string{"credgate.check", "POST /v1/checks"} {
		if !bytes.Contains(got, []byte(name)) {
			t.Errorf("no span %q exported (%d bytes received)", name, len(got))
		}
	}
	if bytes.Contains(got, []byte(subject)) {
		t.Error("an exported span carries the subject's id")
	}
}
