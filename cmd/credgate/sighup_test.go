package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// SIGHUP, which operators send expecting a reload, ended serve at once,
// without the drain of SIGTERM. It is ignored, and said so.
func TestSIGHUPIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(buildBinary(t), "serve", "--addr", addr, "--data-dir", t.TempDir())
	cmd.Env = os.Environ()
	logs := new(testenv.SyncBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	healthy := func() bool {
		res, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	for deadline := time.Now().Add(30 * time.Second); !healthy(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "SIGHUP ignored: settings are read at start; restart to apply"); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended on SIGHUP: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line of the SIGHUP:\n%s", logs)
		}
	}
	if !healthy() {
		t.Fatalf("serve does not answer after SIGHUP:\n%s", logs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40 s of SIGTERM")
	}
}
