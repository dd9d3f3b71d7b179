package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

const (
	testAdminID     = "admin"
	testAdminSecret = "crash-test-admin-secret-0123456789"
)

type proc struct {
	cmd  *exec.Cmd
	base string
	logs *strings.Builder
}

func startServer(t *testing.T, bin, dataDir string, env ...string) *proc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "CREDGATE_ADMIN_CLIENT_ID="+testAdminID, "CREDGATE_ADMIN_CLIENT_SECRET="+testAdminSecret)
	cmd.Env = append(cmd.Env, env...)
	logs := &strings.Builder{}
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: "http://" + addr, logs: logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(p.base + "/healthz"); err == nil {
			res.Body.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("server did not start:\n%s", logs.String())
	return nil
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func postJSON(client *http.Client, url, token string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doReq(client, req)
}

func doReq(client *http.Client, req *http.Request) (int, map[string]any, error) {
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return res.StatusCode, nil, fmt.Errorf("decode %s: %w", raw, err)
	}
	return res.StatusCode, m, nil
}

// TestSIGKILLLosesNoAnsweredCheck kills the server with SIGKILL under
// load, restarts it on the same data and asks for every check that had
// been answered: each must be there, with the same record hash.
func TestSIGKILLLosesNoAnsweredCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server")
	}
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { crashRun(t, bin, nil) })
	t.Run("postgres", func(t *testing.T) {
		crashRun(t, bin, []string{"CREDGATE_POSTGRES_URL=" + testenv.FreshDatabase(t, "credgate_crash")})
	})
	// With a second commit sent while the first is in flight, a kill may
	// fall between them: neither may lose an answered check.
	t.Run("postgres-two-commits-in-flight", func(t *testing.T) {
		crashRun(t, bin, []string{"CREDGATE_POSTGRES_URL=" + testenv.FreshDatabase(t, "credgate_crash"), "CREDGATE_COMMITS_IN_FLIGHT=2"})
	})
}

func crashRun(t *testing.T, bin string, env []string) {
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir, env...)
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	listed := testenv.USCC(t, "91110108MA01CRTH0")
	code, _, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", admin, map[string]any{
		"subject_id": listed, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "重大事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z",
	})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create entry: %d %v", code, err)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	type answered struct{ id, hash string }
	var mu sync.Mutex
	var got []answered
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, m, err := postJSON(client, srv.base+"/v1/checks", admin, map[string]any{
					"subject": map[string]string{"id": listed}, "action": "government_procurement",
					"reference": fmt.Sprintf("w%d-%d", w, i),
				})
				if err != nil || code != http.StatusOK {
					continue // the kill cuts requests off; only answers count
				}
				rc, _ := m["receipt"].(map[string]any)
				hash, _ := rc["record_hash"].(string)
				mu.Lock()
				got = append(got, answered{m["check_id"].(string), hash})
				mu.Unlock()
			}
		}()
	}
	// Kill under load: once many checks are answered (many more are then
	// in flight), or after 1.5 s whatever the count.
	loadUntil(1500*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 300 })
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(got) < 10 {
		t.Fatalf("only %d checks answered before the kill:\n%s", len(got), srv.logs.String())
	}

	srv2 := startServer(t, bin, dataDir, env...)
	admin = testenv.Token(t, srv2.base, testAdminID, testAdminSecret)
	for _, a := range got {
		req, _ := http.NewRequest(http.MethodGet, srv2.base+"/v1/checks/"+a.id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		code, m, err := doReq(client, req)
		if err != nil || code != http.StatusOK {
			t.Fatalf("answered check %s lost after SIGKILL: %d %v", a.id, code, err)
		}
		if h := m["receipt"].(map[string]any)["record_hash"]; h != a.hash {
			t.Fatalf("check %s: hash %v after restart, %s when answered", a.id, h, a.hash)
		}
	}
	t.Logf("%d answered checks, all present after SIGKILL and restart", len(got))
}

// TestSIGTERMDrains stops a loaded server with SIGTERM: requests already
// in flight are answered (no 5xx, no reset connection mid-answer), the
// process exits cleanly, and every answered check is there after restart.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and stops a server")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir)
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	subject := testenv.USCC(t, "91110108MA01TERM0")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var mu sync.Mutex
	var answered []string
	bad := map[int]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, m, err := postJSON(client, srv.base+"/v1/checks", admin, map[string]any{
					"subject": map[string]string{"id": subject}, "action": "bank_credit",
				})
				mu.Lock()
				switch {
				case err == nil && code == http.StatusOK:
					answered = append(answered, m["check_id"].(string))
				case err == nil:
					bad[code]++
				}
				mu.Unlock()
				if err != nil {
					return // the listener is closed: the server is going away
				}
			}
		}()
	}
	loadUntil(700*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(answered) >= 100 })
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v:\n%s", err, srv.logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20 s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("answers other than 200 during drain: %v", bad)
	}
	if !strings.Contains(srv.logs.String(), "draining") {
		t.Fatalf("no drain logged:\n%s", srv.logs.String())
	}
	srv2 := startServer(t, bin, dataDir)
	admin = testenv.Token(t, srv2.base, testAdminID, testAdminSecret)
	for _, id := range answered {
		req, _ := http.NewRequest(http.MethodGet, srv2.base+"/v1/checks/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		if code, _, err := doReq(client, req); err != nil || code != http.StatusOK {
			t.Fatalf("check %s answered before SIGTERM is missing: %d %v", id, code, err)
		}
	}
	t.Logf("%d checks answered around SIGTERM, all kept", len(answered))
}
