package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// spoolChecks checks subjects (cached before the database went away) and
// returns how many were answered with a promise: spooled.
func spoolChecks(t *testing.T, base, token string, subjects []string) int {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	spooled := 0
	for _, s := range subjects {
		code, m, err := postJSON(client, base+"/v1/checks", token, map[string]any{
			"subject": map[string]string{"id": s}, "action": "government_procurement"})
		if err != nil || code != http.StatusOK {
			t.Fatalf("check %s: %d %v %v", s, code, m, err)
		}
		if rc, _ := m["receipt"].(map[string]any); rc["promise"] != nil {
			spooled++
		}
	}
	return spooled
}

// A replica stopped (SIGTERM: serve's context ends) with records in its
// spool integrates them before it exits when the database is there again,
// and, when it is not, says at ERROR how many records it leaves and where
// they are. Before, the integrator was cancelled at once: a pod whose
// spool was on an emptyDir lost the only evidence of answered checks, and
// the log said nothing of it.
func TestShutdownIntegratesTheSpool(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	pg := testenv.StartPostgres(t)
	dataDir := t.TempDir()
	spool := filepath.Join(dataDir, "spool")
	var subjects []string
	for i := range 20 {
		s, err := benchSubject(700_000 + i)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, s)
	}
	start := func() (string, *testenv.SyncBuffer, func(), string) {
		base, logs, stop := serveInProcess(t, dataDir, "--postgres-url", pg.URL(), "--store-timeout", "500ms", "--shutdown-timeout", "3s")
		_, token := adminToken(t, base, dataDir)
		if n := spoolChecks(t, base, token, subjects); n != 0 { // cached, and committed
			t.Fatalf("%d checks spooled with the database up", n)
		}
		return base, logs, stop, token
	}

	// The database back before the signal: the spool is integrated
	// before serve returns.
	base, logs, stop, token := start()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	spooled := spoolChecks(t, base, token, subjects)
	if spooled == 0 {
		t.Fatal("nothing spooled with the database stopped")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	stop()
	st, err := evidence.ReadSpoolStats(spool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 {
		t.Fatalf("%d of %d spooled records pending after the shutdown with the database up\n%s", st.Pending, spooled, logs.String())
	}
	if strings.Contains(logs.String(), "not integrated at shutdown") {
		t.Errorf("an error logged for an integrated spool:\n%s", logs.String())
	}

	// The database still away: the shutdown gives up when its time is
	// out, and says so, with the count and the directory.
	base, logs, stop, token = start()
	if err := pg.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	spooled = spoolChecks(t, base, token, subjects)
	signalled := time.Now()
	stop()
	took := time.Since(signalled)
	st, err = evidence.ReadSpoolStats(spool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != spooled || spooled == 0 {
		t.Fatalf("%d pending after the shutdown with the database away, %d spooled", st.Pending, spooled)
	}
	line := regexp.MustCompile(`(?m)^.*"level":"ERROR".*evidence spool not integrated at shutdown.*$`).FindString(logs.String())
	if line == "" || !strings.Contains(line, fmt.Sprintf(`"pending":%d`, spooled)) || !strings.Contains(line, spool) ||
		!strings.Contains(line, "credgate spool integrate --dir "+spool) {
		t.Errorf("no ERROR naming %d pending records and %s:\n%s", spooled, spool, logs.String())
	}
	// The shutdown's time (3 s) runs from the signal; the rest of the
	// shutdown is quick.
	if took > 10*time.Second {
		t.Errorf("the shutdown took %s, with shutdown_timeout 3s", took)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
}
