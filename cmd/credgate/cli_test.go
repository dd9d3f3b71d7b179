package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/policy"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Help that was asked for is an answer: standard output, exit 0, for
// credgate itself and every command.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"help", "serve"}, {"serve", "--help"}, {"serve", "-h"}, {"import", "--help"}, {"import", "help"},
		{"bench", "--help"}, {"partners", "--help"}, {"partners", "help"}, {"partners", "create", "--help"},
		{"verify", "--help"}, {"audit", "--help"}, {"catalog", "--help"}, {"catalog", "lint", "--help"},
		{"catalog", "export", "--help"}, {"config", "--help"}, {"keygen", "--help"}, {"migrate", "--help"},
		{"serve", "--addr", "127.0.0.1:0", "--help"}, // wherever it stands
	} {
		code, out, errOut := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, "Usage") || errOut != "" {
			t.Errorf("credgate %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	// A command's help lists its flags with their variables.
	_, out, _ := runCmd(t, "serve", "--help")
	for _, w := range []string{"-max-staleness", "CREDGATE_MAX_STALENESS", "-config", "docs/CONFIGURATION.md"} {
		if !strings.Contains(out, w) {
			t.Errorf("serve --help lacks %q", w)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	code, out, errOut := runCmd(t, "serev")
	if code != 2 || out != "" || !strings.Contains(errOut, `unknown command "serev"`) || !strings.Contains(errOut, "credgate serve") {
		t.Fatalf("unknown command: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t); code != 2 || !strings.Contains(errOut, "Usage") {
		t.Fatalf("no command: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "serve", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Fatalf("bad flag: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "serve", "extra"); code != 2 || !strings.Contains(errOut, "no arguments") {
		t.Fatalf("argument: exit %d: %s", code, errOut)
	}
	// The commands that take no arguments and no flags of their own; a
	// data dir of the test's, should one of them run after all.
	t.Setenv("CREDGATE_DATA_DIR", t.TempDir())
	for _, cmd := range []string{"config", "keygen", "migrate"} {
		if code, _, errOut := runCmd(t, cmd, "extra"); code != 2 || !strings.Contains(errOut, "Usage: credgate "+cmd) {
			t.Errorf("%s with an argument: exit %d: %s", cmd, code, errOut)
		}
		if code, _, errOut := runCmd(t, cmd, "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
			t.Errorf("%s with a bad flag: exit %d: %s", cmd, code, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"version", "--version", "-version"} {
		code, out, _ := runCmd(t, arg)
		if code != 0 || !strings.HasPrefix(out, "credgate ") || !strings.Contains(out, modulePath) || !strings.Contains(out, "catalogue "+cat.Revision()) {
			t.Errorf("%s: exit %d: %q", arg, code, out)
		}
	}
}

// The version names the commit a binary was built from, and says when
// it was built from uncommitted changes or without VCS information.
func TestVersionNamesRevision(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T08:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	out := formatVersion(info)
	for _, w := range []string{"credgate v1.4.0\n", "module    " + modulePath, "revision  0123456789abcdef0123456789abcdef01234567+dirty (2026-12-01T08:00:00Z)", "catalogue cat-"} {
		if !strings.Contains(out, w) {
			t.Errorf("version lacks %q:\n%s", w, out)
		}
	}
	if out := formatVersion(nil); !strings.Contains(out, "credgate (devel)") || !strings.Contains(out, "built without VCS information") {
		t.Errorf("no build information:\n%s", out)
	}
}

// A bad value stops serve before anything is written, naming the setting,
// where it came from and what is accepted: CREDGATE_MAX_STALENESS used to
// be ignored when it did not parse.
func TestServeRefusesBadSettings(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CREDGATE_MAX_STALENESS", "30")
	code, _, errOut := runCmd(t, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(errOut, "cache.max_staleness") || !strings.Contains(errOut, "environment CREDGATE_MAX_STALENESS") ||
		!strings.Contains(errOut, "such as 500ms, 30s") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Setenv("CREDGATE_MAX_STALENESS", "")
	file := filepath.Join(t.TempDir(), "credgate.yaml")
	if err := os.WriteFile(file, []byte("server:\n  shutdown_timeout: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "serve", "--config", file, "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(errOut, "server.shutdown_timeout: file "+file+` = "soon"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the data dir was created: %v", err)
	}
}

// A start that fails writes nothing: with its port taken, serve exits
// non-zero and a fresh data dir holds nothing new — no keys, no
// administrator credential, no database.
func TestFailedStartWritesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	fresh := filepath.Join(t.TempDir(), "data")
	empty := t.TempDir()
	for _, dataDir := range []string{fresh, empty} {
		code, out, errOut := runCmd(t, "serve", "--addr", taken.Addr().String(), "--data-dir", dataDir, "--evidence-origin", testOrigin)
		if code == 0 || !strings.Contains(errOut, "server.addr (flag --addr)") || !strings.Contains(errOut, "--addr or CREDGATE_ADDR") ||
			strings.Contains(out, "listening") {
			t.Fatalf("port taken: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a fresh data dir was created: %v", err)
	}
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Fatalf("an empty data dir got %v (%v)", entries, err)
	}
	// A damaged key left by an earlier start is refused before the store
	// is opened and before anything is generated beside it.
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, tokenKeyFile), []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "serve", "--addr", "127.0.0.1:0", "--data-dir", damaged, "--evidence-origin", testOrigin)
	if code != 1 || !strings.Contains(errOut, tokenKeyFile) {
		t.Fatalf("damaged token key: exit %d: %s", code, errOut)
	}
	if entries, err := os.ReadDir(damaged); err != nil || len(entries) != 1 {
		t.Fatalf("the data dir with a damaged key got %v (%v)", entries, err)
	}
}

// credgate config shows each setting's value and origin, secrets hidden.
func TestConfigCommand(t *testing.T) {
	t.Setenv("CREDGATE_CACHE_RECONCILE", "5s")
	t.Setenv("CREDGATE_TOKEN_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	code, out, errOut := runCmd(t, "config", "--max-staleness", "1m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"cache.max_staleness", "1m", "flag --max-staleness", "environment CREDGATE_CACHE_RECONCILE", "server.addr", ":8080", "default"} {
		if !strings.Contains(out, w) {
			t.Errorf("config output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "AAAAAAAA") || !strings.Contains(out, "(set)") {
		t.Errorf("config shows a secret:\n%s", out)
	}
	if code, _, errOut := runCmd(t, "config", "--cache-reconcile", "1m"); code != 1 || !strings.Contains(errOut, "less than half of cache.max_staleness") {
		t.Fatalf("config with a bad combination: exit %d: %s", code, errOut)
	}
}

// A client command that cannot connect says which URL it tried and how
// to name another.
func TestClientNamesTheURLItCannotReach(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("CREDGATE_ADMIN_CLIENT_ID", "admin")
	t.Setenv("CREDGATE_ADMIN_CLIENT_SECRET", "secret")
	t.Setenv("CREDGATE_URL", base)
	code, _, errOut := runCmd(t, "partners", "list")
	if code != 1 || !strings.Contains(errOut, "cannot reach credgate at "+base) || !strings.Contains(errOut, "is `credgate serve` running") ||
		!strings.Contains(errOut, "--url or CREDGATE_URL") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// audit reads the same setting: it has no --url of its own.
	_, vkey, err := note.GenerateKey(rand.Reader, "credgate.test/log")
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "audit", "--key", vkey, "--state", filepath.Join(t.TempDir(), "state.json"))
	if code != exitAuditUnfinished || !strings.Contains(errOut, "cannot reach credgate at "+base) {
		t.Fatalf("audit: exit %d: %s", code, errOut)
	}
	// A bad CREDGATE_URL is refused before any request.
	t.Setenv("CREDGATE_URL", "localhost:8080")
	if code, _, errOut := runCmd(t, "partners", "list"); code != 1 || !strings.Contains(errOut, "client.url: environment CREDGATE_URL") {
		t.Fatalf("bad CREDGATE_URL: exit %d: %s", code, errOut)
	}
}
