package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// serve with --tracing-exporter otlp-http sends the check path's spans to
// the collector (flushed when the server stops), and none of them carries
// the subject checked.
func TestServeExportsTraces(t *testing.T) {
	col := testenv.NewSpanReceiver(t)
	dataDir := t.TempDir()
	base, stop := serveUntilListening(t, dataDir, "--tracing-exporter", "otlp-http", "--tracing-endpoint", col.URL())
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
	got := col.Raw()
	for _, name := range []string{"credgate.check", "POST /v1/checks"} {
		if !bytes.Contains(got, []byte(name)) {
			t.Errorf("no span %q exported (%d bytes received)", name, len(got))
		}
	}
	if bytes.Contains(got, []byte(subject)) {
		t.Error("an exported span carries the subject's id")
	}
}
