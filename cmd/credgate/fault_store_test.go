package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// probe is one request of the fault test and what it may answer while the
// database is away.
type probe struct {
	name string
	do   func() (int, map[string]any, error)
	// codes the probe may answer with during the outage (503 problems).
	codes []string
}

// waitAnswered waits until every probe answers status, within; past it the
// test fails naming the phase, the probe, its answer and the server's log.
func waitAnswered(t *testing.T, phase string, probes []probe, status int, within time.Duration, log func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, p := range probes {
		for {
			code, body, err := p.do()
			if err == nil && code == status {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s still answers %d %v %v\n%s", phase, p.name, code, body, err, log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// PostgreSQL frozen (SIGSTOP) and then stopped: every request that needs
// the database answers 503 with a documented code within store.timeout
// plus a second — the token endpoint, uncached checks of listed subjects, authenticated
// calls whose partner must be re-read, the public evidence keys and
// checkpoint — never 500 and never a hang; after SIGCONT everything
// answers again with no operator action.
func TestStoreFrozenAndStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	const bound = time.Second
	pg := testenv.StartPostgres(t)
	dataDir := t.TempDir()
	// Without the spool, whose partner grace would answer the catalogue
	// probe from the cache (spool_fault_test.go runs with it).
	base, logs, stop := serveInProcess(t, dataDir, "--postgres-url", pg.URL(), "--store-timeout", bound.String(), "--spool=false")
	defer stop()
	var cred struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	b, err := os.ReadFile(filepath.Join(dataDir, adminCredentialsFile))
	if err != nil || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("admin credentials: %v", err)
	}
	token := testenv.Token(t, base, cred.ClientID, cred.ClientSecret)
	client := &http.Client{Timeout: bound + 5*time.Second} // a hang fails the test, not the run
	// Subjects named by entries but never checked: a check must read
	// their entries from the store. (A subject no entry names is answered
	// by the listed filter without the store, and its check then waits
	// for the evidence commit, which this run does not spool.)
	var listed []string
	for i := range 500 {
		subject, err := benchSubject(500_000 + i)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, subject)
	}
	imp, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/entries:import", bytes.NewReader(testenv.ListedNDJSON(listed)))
	imp.Header.Set("Authorization", "Bearer "+token)
	imp.Header.Set("Content-Type", "application/x-ndjson")
	if code, body, err := doReq(client, imp); err != nil || code != http.StatusCreated {
		t.Fatalf("import the listed subjects: %d %v %v", code, body["detail"], err)
	}
	// Round the list: a subject that comes round again was either
	// refused (not cached) or answered when the store was up (cached: its
	// check then fails on the evidence commit, or is answered).
	next, nextListed := 0, 0
	check := func() (int, map[string]any, error) {
		nextListed++
		return postJSON(client, base+"/v1/checks", token, map[string]any{
			"subject": map[string]string{"id": listed[nextListed%len(listed)]}, "action": "government_procurement"})
	}
	get := func(path string) func() (int, map[string]any, error) {
		return func() (int, map[string]any, error) {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			return doReq(client, req)
		}
	}
	tokenReq := func() (int, map[string]any, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}}
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return doReq(client, req)
	}
	// A check answered before the outage, read back during it (its
	// record and receipt come from the store).
	code, answer, err := check()
	checkID, _ := answer["check_id"].(string)
	if err != nil || code != http.StatusOK || checkID == "" {
		t.Fatalf("check: %d %v %v", code, answer, err)
	}
	probes := []probe{
		{"stored check", get("/v1/checks/" + checkID), []string{"store_unavailable"}},
		{"uncached status", func() (int, map[string]any, error) {
			next++
			subject, err := benchSubject(next) // a status read goes to the store, listed or not
			if err != nil {
				return 0, nil, err
			}
			return get("/v1/subjects/" + subject + "/status")()
		}, []string{"data_unavailable", "store_unavailable"}},
		{"token", tokenReq, []string{"store_unavailable"}},
		{"uncached listed check", check, []string{"data_unavailable", "store_unavailable", "evidence_unavailable"}},
		// The administrator's partner row is re-read every 5 s.
		{"catalog", get("/v1/catalog"), []string{"store_unavailable"}},
		{"evidence keys", get("/v1/evidence/keys"), []string{"store_unavailable"}},
		{"checkpoint", get("/v1/evidence/checkpoint"), []string{"store_unavailable"}},
	}
	answersAgain := func(phase string) {
		t.Helper()
		waitAnswered(t, phase, probes, http.StatusOK, 20*time.Second, logs.String)
	}
	answersAgain("before the outage")

	// During an outage every probe, run until the partner cache has
	// expired, answers a documented 503 within the bound plus a second.
	during := func(phase string, lasting time.Duration) {
		t.Helper()
		end := time.Now().Add(lasting)
		seen := map[string]int{}
		for time.Now().Before(end) {
			for _, p := range probes {
				start := time.Now()
				code, body, err := p.do()
				took := time.Since(start)
				if err != nil {
					t.Fatalf("%s: %s: %v (waited %s)", phase, p.name, err, took.Round(time.Millisecond))
				}
				if took > bound+time.Second {
					t.Errorf("%s: %s answered after %s (bound %s)", phase, p.name, took.Round(time.Millisecond), bound)
				}
				if code == http.StatusOK {
					continue // answered from what this replica holds (a cached partner)
				}
				c, _ := body["code"].(string)
				if code != http.StatusServiceUnavailable || !contains(p.codes, c) {
					t.Errorf("%s: %s answered %d %v, want 503 %v", phase, p.name, code, body, p.codes)
					continue
				}
				seen[p.name]++
			}
		}
		for _, p := range probes {
			if seen[p.name] == 0 {
				t.Errorf("%s: %s never failed: was the database away?", phase, p.name)
			}
		}
	}

	pg.Signal(syscall.SIGSTOP)
	during("frozen", bound+6*time.Second) // past the 5 s partner cache
	pg.Signal(syscall.SIGCONT)
	answersAgain("after SIGCONT")

	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	during("stopped", 6*time.Second)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	answersAgain("after restart")
	if t.Failed() {
		t.Log(logs.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
