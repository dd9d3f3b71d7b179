package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/gateway"
)

// benchCredentials writes an administrator credential file, as serve
// writes one into its data dir, for bench --credentials.
func benchCredentials(t *testing.T, id, secret string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"client_id": id, "client_secret": secret})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), adminCredentialsFile)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The bench writes a partner and listed entries into the server it
// measures: into one not started with --bench-noop it refuses, before any
// write, unless --writes-test-data is given; the partner it made is
// revoked when it ends. The administrator's secret is no flag: it comes
// from the environment or a credentials file, as for partners.
func TestBenchWritesOnlyIntoATestServer(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	var writes atomic.Int64
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/admin/") {
				writes.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
	plain := benchServerWrapped(t, nil, count, id, secret) // a server as deployed
	creds := benchCredentials(t, id, secret)
	args := []string{"--credentials", creds, "--phases", "saturate", "--duration", "200ms", "--concurrency", "1", "--subjects", "10", "--warmup", "0"}

	var out, errOut bytes.Buffer
	err := benchCmd(t.Context(), append([]string{"--url", plain.URL}, args...), &out, &errOut)
	if err == nil {
		t.Fatalf("bench wrote into a server without --bench-noop:\n%s", out.String())
	}
	for _, want := range []string{"HTTP 404", "serve --bench-noop", "--writes-test-data", "a partner and 1 companies listed on " + benchList} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q: %v", want, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("the refused bench made %d admin writes", n)
	}

	// Asked to, it writes; the partner is revoked when it ends.
	admin, err := client.New(plain.URL, client.WithClientSecret(id, secret))
	if err != nil {
		t.Fatal(err)
	}
	revoked := func(t *testing.T, rep *benchReport, text string) {
		t.Helper()
		p, err := admin.Partner(t.Context(), rep.Partner)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != "revoked" || !strings.Contains(text, "partner "+rep.Partner+" revoked") {
			t.Errorf("partner %s is %s after the run:\n%s", rep.Partner, p.Status, text)
		}
	}
	text, rep := runBench(t.Context(), t, append([]string{"--url", plain.URL, "--writes-test-data", "--json"}, args...)...)
	if writes.Load() == 0 {
		t.Error("no admin writes with --writes-test-data")
	}
	revoked(t, rep, text)

	// A load-test server needs no flag; the secret from the environment.
	noop := benchServer(t, id, secret, gateway.WithNoopEndpoint())
	admin, err = client.New(noop.URL, client.WithClientSecret(id, secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDGATE_ADMIN_CLIENT_ID", id)
	t.Setenv("CREDGATE_ADMIN_CLIENT_SECRET", secret)
	text, rep = runBench(t.Context(), t, "--url", noop.URL, "--data-dir", t.TempDir(), "--phases", "saturate", "--duration", "200ms",
		"--concurrency", "1", "--subjects", "10", "--warmup", "0", "--json")
	revoked(t, rep, text)

	// --client-secret is gone: a usage error, before anything is sent.
	if code := run(context.Background(), []string{"bench", "--url", noop.URL, "--client-secret", secret}, &out, &errOut); code != 2 {
		t.Errorf("bench --client-secret: exit %d, want 2", code)
	}
}
