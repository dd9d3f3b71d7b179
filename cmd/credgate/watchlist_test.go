package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

// usccWith completes a 17-character USCC prefix with its check character
// (GB 32100: weights 3^i mod 31).
func usccWith(prefix string) string {
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	weights := [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
	sum := 0
	for i := range 17 {
		sum += strings.IndexByte(alphabet, prefix[i]) * weights[i]
	}
	return prefix + string(alphabet[(31-sum%31)%31])
}

// writeLoanBook writes n distinct valid USCCs, one per line.
func writeLoanBook(t *testing.T, path string, n int) []string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	sample := make([]string, 0, 3)
	for i := range n {
		id := usccWith(fmt.Sprintf("91110108MA%07d", i))
		if i == 0 || i == n/2 || i == n-1 {
			if _, err := policy.ParseUSCC(id); err != nil {
				t.Fatalf("generated %s: %v", id, err)
			}
			sample = append(sample, id)
		}
		w.WriteString(id)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return sample
}

// rssKiB is a process's resident set size.
func rssKiB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestWatchlistMillion uploads a 1,000,000-subject watchlist through the
// CLI (its progress bar on standard error), lists one watched subject and
// waits for the event; it logs the cost per watched subject (server
// memory, storage) recorded in docs/PERFORMANCE.md. CREDGATE_WATCHLIST_N
// changes the size.
func TestWatchlistMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads a million subjects")
	}
	longTest(t)
	n := 1_000_000
	if v := os.Getenv("CREDGATE_WATCHLIST_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { watchlistRun(t, bin, n, nil, "") })
	t.Run("postgres", func(t *testing.T) {
		url := testenv.FreshDatabase(t, "credgate_watch")
		watchlistRun(t, bin, n, []string{"CREDGATE_POSTGRES_URL=" + url}, url)
	})
}

func watchlistRun(t *testing.T, bin string, n int, env []string, pgURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	srv := startServer(t, bin, dataDir, append(env, pushEnv...)...)
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	code, p, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/partners", admin,
		map[string]any{"name": "某银行", "actions": []string{"government_procurement"}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create partner: %d %v %v", code, p, err)
	}
	creds := filepath.Join(dir, "bank.json")
	b, _ := json.Marshal(map[string]string{"client_id": p["client_id"].(string), "client_secret": p["client_secret"].(string)})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	book := filepath.Join(dir, "loans.txt")
	sample := writeLoanBook(t, book, n)

	storage := func() int64 {
		if pgURL == "" {
			return dirBytes(t, dataDir)
		}
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var size int64
		if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('watchlist')`).Scan(&size); err != nil {
			t.Fatal(err)
		}
		return size
	}
	// The partner checks a subject first, so that the server is warm.
	bank, err := client.New(srv.base, client.WithClientSecret(p["client_id"].(string), p["client_secret"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bank.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: testenv.USCC(t, "91110108MA01WARM0")}, Action: "government_procurement"}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	rssBefore, diskBefore := rssKiB(t, srv.cmd.Process.Pid), storage()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if rc := run(ctx, []string{"watchlist", "upload", "--url", srv.base, "--credentials", creds, book}, &stdout, &stderr); rc != 0 {
		t.Fatalf("watchlist upload: exit %d\n%s\n%s", rc, stdout.String(), stderr.String())
	}
	took := time.Since(start)
	if want := fmt.Sprintf("%d subjects read, %d added, watchlist now %d", n, n, n); !strings.Contains(stdout.String(), want) {
		t.Fatalf("upload said %q, want %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no progress bar reaching 100%% on standard error: %q", stderr.String())
	}
	time.Sleep(time.Second) // the SQLite WAL checkpoints
	rssAfter, diskAfter := rssKiB(t, srv.cmd.Process.Pid), storage()
	t.Logf("uploaded %d subjects in %s (%.0f subjects/s); server RSS %d -> %d KiB (%.1f B/subject); storage %d -> %d B (%.1f B/subject)",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), rssBefore, rssAfter,
		float64(rssAfter-rssBefore)*1024/float64(n), diskBefore, diskAfter, float64(diskAfter-diskBefore)/float64(n))

	// A listing of one watched subject: its event in the long-poll feed
	// (the latency is logged for docs/PERFORMANCE.md, not asserted).
	after := ""
	if page, err := bank.Events(ctx, "", 500, 0); err == nil {
		after = page.Next
	}
	got := make(chan client.EventPage, 1)
	go func() {
		page, err := bank.Events(ctx, after, 10, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- page
	}()
	time.Sleep(200 * time.Millisecond)
	code, m, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", admin, map[string]any{
		"subject_id": sample[1], "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "重大事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z",
	})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create entry: %d %v %v", code, m, err)
	}
	listed := time.Now()
	page := <-got
	latency := time.Since(listed)
	if len(page.Events) != 1 || page.Events[0].Subject.ID != sample[1] || page.Events[0].Subscription[0] != "watchlist" {
		t.Fatalf("events = %+v", page)
	}
	t.Logf("listing of a watched subject to its event in the long-poll feed: %s", latency.Round(time.Millisecond))
}
