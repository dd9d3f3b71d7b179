package main

import (
	"bytes"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// TestStoreFrozenAndStoppedEntryWrites: an administrator's create of an
// entry first reads whether the same entry is stored already, and an
// import first reaches the database to begin its load. With PostgreSQL
// frozen (SIGSTOP) both waited without limit; with it stopped the create
// answered 500. Both answer 503 store_unavailable now, and again 201 once
// the database is back.
//
// The spool is on, as by default: its partner grace keeps the
// administrator's cached state trusted while the store is away, so that
// every request reaches the entry service rather than stopping at the
// re-read of its partner (TestStoreFrozenAndStopped covers that one).
func TestStoreFrozenAndStoppedEntryWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	const bound = time.Second
	pg := testenv.StartPostgres(t)
	dataDir := t.TempDir()
	base, logs, stop := serveInProcess(t, dataDir, "--postgres-url", pg.URL(), "--store-timeout", bound.String())
	defer stop()
	_, token := adminToken(t, base, dataDir)
	// A request that hangs fails the test (the client gives up), not the run.
	client := &http.Client{Timeout: 2*bound + 10*time.Second}
	n := 0
	subject := func() string {
		n++
		s, err := benchSubject(700_000 + n)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	create := func() (int, map[string]any, error) {
		return postJSON(client, base+"/v1/admin/entries", token, map[string]any{
			"subject_id": subject(), "list": "court_dishonest_debtor", "originating_department": "杭州市中级人民法院",
			"reason": "拒不履行", "legal_basis": "《民事诉讼法》第二百六十二条",
			"decided_at": "2026-07-01T00:00:00+08:00", "published_at": "2026-07-03T00:00:00+08:00"})
	}
	importOne := func() (int, map[string]any, error) {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/entries:import", bytes.NewReader(testenv.ListedNDJSON([]string{subject()})))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		return doReq(client, req)
	}
	probes := []probe{
		{"create entry", create, []string{"store_unavailable"}},
		{"import", importOne, []string{"store_unavailable"}},
	}
	answersAgain := func(phase string) {
		t.Helper()
		waitAnswered(t, phase, probes, http.StatusCreated, 30*time.Second, logs.String)
	}
	answersAgain("before the outage")

	// Each probe a few times: never a hang, never a 500, never stored.
	during := func(phase string) {
		t.Helper()
		for range 3 {
			for _, p := range probes {
				code, body, err := p.do()
				if err != nil {
					t.Fatalf("%s: %s: %v\n%s", phase, p.name, err, logs.String())
				}
				c, _ := body["code"].(string)
				if code != http.StatusServiceUnavailable || !contains(p.codes, c) {
					t.Errorf("%s: %s answered %d %v, want 503 %v", phase, p.name, code, body, p.codes)
				}
			}
		}
	}

	defer pg.Signal(syscall.SIGCONT) // a failure while frozen must not leave it so
	pg.Signal(syscall.SIGSTOP)
	during("frozen")
	pg.Signal(syscall.SIGCONT)
	answersAgain("after SIGCONT")

	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	during("stopped")
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	answersAgain("after restart")
	if t.Failed() {
		t.Log(logs.String())
	}
}
