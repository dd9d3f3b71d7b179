package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// The README marks the few blocks it does not want run, with the reason,
// and the blocks that start (or restart) the server, which the test runs
// itself: one line, `bin/credgate serve [FLAGS]`, that it starts with those
// flags on its own port, after stopping the server already running.
const (
	markNotRun = "<!-- not run:"
	markServer = "<!-- server:"
)

// maxNotRun keeps skipped blocks the exception: every other block runs.
const maxNotRun = 3

// claims are outputs the README promises (as `# → …` comments) that the
// test insists on, so that deleting a comment cannot quietly drop a check.
var claims = []string{
	`"outcome": "restrict"`,                       // a listed company, checked before an award
	`"status": 400, "code": "invalid_subject_id"`, // a wrong check character is no "clear"
	`imported 2 entries`,                          // the CSV import, straight into the store
	`"role": "legal_representative"`,              // responsibility reaches persons
	`"measures":["suspended","suspended"]`,        // an objection suspends measures
	`"status": "under_objection"`,                 // the status as of a past moment
	`"reason": "applies only in 370100 济南市; the caller's region is 440304"`, // a local measure elsewhere
	`"status": 403, "code": "region_outside_jurisdiction"`,
	`"expires_in": 900`, // private_key_jwt, and the stated token lifetime
	`OK: check record`,  // an evidence receipt verifies offline
	`clean`,             // the region's catalogue lints clean
	`{"id":"zj-01-procurement-credit-review","status":"applied"`, // and serves its own measure
	`OK: feedback record`,                      // feedback is evidence, verified offline
	`"status": 409, "code": "feedback_exists"`, // corrections append, never overwrite
	`"with_feedback":1}`,                       // statistics by partner
	`1 without a check, 1 unexplained`,         // 应查必查 coverage
	`{"state":"fulfilled","overdue":false}`,    // a credit commitment kept
}

func TestREADME(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseBlocks(t, string(readme))
	checkClaims(t, blocks)
	needTools(t)
	seeds := findSeeds(t, root)

	// Both runs use the same path, so that the second build of
	// bin/credgate comes from the build cache.
	work := filepath.Join(t.TempDir(), "credgate")
	t.Run("sqlite", func(t *testing.T) {
		runREADME(t, root, work, seeds, blocks, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: the README runs on SQLite only")
		}
		url := testenv.FreshDatabase(t, "readme")
		runREADME(t, root, work, seeds, blocks, []string{"CREDGATE_POSTGRES_URL=" + url})
	})
}

// block is one ```sh block of the README.
type block struct {
	line   int    // of its opening fence, 1-based
	text   string // the commands
	mark   string // markNotRun, markServer or ""
	reason string
	args   []string // of a server block: the flags after "bin/credgate serve"
	expect []string // the `# → …` texts its output must contain
}

func (b block) String() string { return fmt.Sprintf("README.md:%d", b.line) }

var arrow = regexp.MustCompile(`#.*?→\s*(.+?)\s*$`)

// parseBlocks reads the README's sh blocks with their marks and claims.
func parseBlocks(t *testing.T, readme string) []block {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var out []block
	prev := "" // the last non-blank line before a fence
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "```") {
			if strings.TrimSpace(l) != "" {
				prev = strings.TrimSpace(l)
			}
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("README.md:%d: the code block is never closed", start+1)
		}
		if lang != "sh" {
			if strings.HasPrefix(prev, markNotRun) || strings.HasPrefix(prev, markServer) {
				t.Fatalf("README.md:%d: a run mark before a %q block; only sh blocks run", start+1, lang)
			}
			prev = ""
			continue
		}
		b := block{line: start + 1, text: strings.Join(body, "\n")}
		for _, m := range []string{markNotRun, markServer} {
			if strings.HasPrefix(prev, m) {
				b.mark = m
				b.reason = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(prev, m), "-->"))
				if b.reason == "" || !strings.HasSuffix(prev, "-->") {
					t.Fatalf("%s: %q must say why, and end with -->", b, prev)
				}
			}
		}
		for _, bl := range body {
			if m := arrow.FindStringSubmatch(bl); m != nil {
				b.expect = append(b.expect, m[1])
			}
		}
		if b.mark == markServer {
			b.args = serveArgs(t, b)
		}
		out = append(out, b)
		prev = ""
	}
	notRun, servers := 0, 0
	for _, b := range out {
		switch b.mark {
		case markNotRun:
			notRun++
		case markServer:
			servers++
		}
	}
	if servers == 0 || out[0].mark == markServer {
		t.Fatalf("README.md needs a block marked %q, after the one that builds bin/credgate, where the walk-through starts the server", markServer)
	}
	if notRun > maxNotRun {
		t.Fatalf("README.md has %d blocks marked %q; at most %d: a newcomer runs them all", notRun, markNotRun, maxNotRun)
	}
	if len(out)-notRun-servers < 5 {
		t.Fatalf("README.md has only %d runnable sh blocks", len(out)-notRun-servers)
	}
	return out
}

// serveArgs reads a server block: one command, bin/credgate serve and its
// flags (a trailing comment aside).
func serveArgs(t *testing.T, b block) []string {
	t.Helper()
	var cmds []string
	for _, l := range strings.Split(b.text, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			cmds = append(cmds, l)
		}
	}
	f := strings.Fields(strings.Join(cmds, " "))
	if len(cmds) != 1 || len(f) < 2 || f[0] != "bin/credgate" || f[1] != "serve" {
		t.Fatalf("%s: a server block holds one line, bin/credgate serve [FLAGS]; it holds %q", b, cmds)
	}
	for _, a := range f[2:] {
		if strings.ContainsAny(a, "$'\"`*?") || a == "--addr" || strings.HasPrefix(a, "--addr=") {
			t.Fatalf("%s: the test passes serve's flags as they are: %q needs a shell, or is the address the test sets", b, a)
		}
	}
	return f[2:]
}

// checkClaims makes sure the README still promises, in blocks that run,
// every output in claims.
func checkClaims(t *testing.T, blocks []block) {
	t.Helper()
	for _, c := range claims {
		found := false
		for _, b := range blocks {
			if b.mark != "" {
				continue
			}
			for _, e := range b.expect {
				if strings.Contains(squeeze(e), squeeze(c)) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no block that runs says `# → %s`: the README must show it", c)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// squeeze drops all white space, so that a claim matches pretty and
// compact JSON alike.
func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

// needTools skips (fails under CI=true) when a tool the README uses is
// missing.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "date", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "the README needs %s, which is not on PATH (.ci/run installs it)", tool)
		}
	}
	if err := exec.Command("date", "-u", "-d", "-1 day", "+%FT%TZ").Run(); err != nil {
		testenv.Need(t, "the README needs GNU date (date -d): %v", err)
	}
	if err := exec.Command("curl", "--fail-with-body", "--version").Run(); err != nil {
		testenv.Need(t, "the README needs curl 7.76 or later (--fail-with-body): %v", err)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// findSeeds finds the source texts that `catalog lint` reads: the README
// expects them in ../shared/seeds; any directory above the module with a
// shared/seeds of *.txt files will do.
func findSeeds(t *testing.T, root string) string {
	t.Helper()
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		seeds := filepath.Join(dir, "shared", "seeds")
		if m, _ := filepath.Glob(filepath.Join(seeds, "*.txt")); len(m) > 0 {
			return seeds
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	testenv.Need(t, "the README lints a catalogue against the source texts, and no shared/seeds/*.txt is above %s", root)
	return ""
}

// runREADME runs blocks in a fresh copy of the working tree at work, as a
// newcomer would in a fresh clone, with env added to the shell's and the
// server's environment.
func runREADME(t *testing.T, root, work, seeds string, blocks []block, env []string) {
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	before := copyTree(t, root, work)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	tmp := t.TempDir() // mktemp -d lands here, and is removed with it

	baseEnv := cleanEnv()
	sh := startShell(t, work, append(append(baseEnv, "BASE="+base, "SEEDS="+seeds, "TMPDIR="+tmp), env...))
	var srv *server
	for _, b := range blocks {
		switch b.mark {
		case markNotRun:
			t.Logf("%s: not run: %s", b, b.reason)
			continue
		case markServer:
			if srv != nil {
				srv.stop(t)
			}
			srv = startServer(t, work, port, b.args, append(baseEnv, env...))
			t.Logf("%s: the server is up at %s (serve %s)", b, base, strings.Join(b.args, " "))
			continue
		}
		timeout := 2 * time.Minute
		if strings.Contains(b.text, "go build") {
			timeout = 10 * time.Minute // a cold build on two busy cores
		}
		start := time.Now()
		out, err := sh.run(b.text, timeout)
		if err != nil {
			// The server's log follows, from its cleanup.
			t.Fatalf("%s: %v\n--- block:\n%s\n--- output:\n%s", b, err, b.text, out)
		}
		for _, e := range b.expect {
			if !strings.Contains(squeeze(out), squeeze(e)) {
				t.Fatalf("%s: the output lacks what the README says (→ %s)\n--- block:\n%s\n--- output:\n%s", b, e, b.text, out)
			}
		}
		t.Logf("%s: ok in %s\n%s", b, time.Since(start).Round(time.Millisecond), tail(out, 3000))
	}
	if srv == nil {
		t.Fatal("the README never reached its server block")
	}
	private, err := sh.run(`printf '%s\n' "$PRIVATE"`, 10*time.Second)
	if err != nil {
		t.Fatalf("reading $PRIVATE: %v", err)
	}
	sh.close()
	checkTree(t, root, work, before, strings.TrimSpace(private))
}

// copyTree copies the module's files (those git tracks or would track) to
// dst and returns their names.
func copyTree(t *testing.T, root, dst string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		for _, n := range strings.Split(string(out), "\x00") {
			if n != "" {
				names[n] = true
			}
		}
	} else {
		// No git: everything but the repository and what a run leaves.
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() && (d.Name() == ".git" || rel == "bin" || rel == "data") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				names[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for n := range names {
		src := filepath.Join(root, filepath.FromSlash(n))
		b, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			delete(names, n) // deleted, not yet committed
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if info.IsDir() {
			delete(names, n)
			continue
		}
		p := filepath.Join(dst, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// checkTree checks what the README left in the working tree: every new
// file git-ignored, and no secret outside data/ (the server's own) — the
// partners' secrets and keys went to $PRIVATE, outside the tree.
func checkTree(t *testing.T, root, work string, before map[string]bool, private string) {
	t.Helper()
	if private == "" || strings.HasPrefix(private, work+string(filepath.Separator)) {
		t.Fatalf("$PRIVATE is %q: the README must keep secrets outside the working tree", private)
	}
	secrets := map[string]bool{}
	admin, err := os.ReadFile(filepath.Join(work, "data", "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	collectSecrets(admin, secrets)
	err = filepath.WalkDir(private, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			collectSecrets(b, secrets)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) < 3 {
		t.Fatalf("found %d client secrets in data/ and $PRIVATE; the README's partners should have left theirs in $PRIVATE", len(secrets))
	}
	var created []string
	err = filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(work, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "data" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if before[rel] {
			return nil
		}
		created = append(created, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s, written by the README into the working tree, holds a client secret", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) == 0 {
		return
	}
	// Every file the README writes is ignored by the repository's .gitignore.
	cmd := exec.Command("git", append([]string{"check-ignore", "--no-index", "-v", "-n"}, created...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Logf("git check-ignore unavailable (%v): the README wrote %s", err, strings.Join(created, ", "))
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// -n lists unmatched paths too, as "::\tpath".
		if strings.HasPrefix(l, "::\t") {
			t.Errorf("the README writes %s, which .gitignore does not ignore", strings.TrimPrefix(l, "::\t"))
		}
	}
}

func collectSecrets(b []byte, into map[string]bool) {
	var v struct {
		ClientSecret string `json:"client_secret"`
	}
	if json.Unmarshal(b, &v) == nil && len(v.ClientSecret) >= 16 {
		into[v.ClientSecret] = true
	}
}

// cleanEnv is the test's environment without credgate's own settings, so
// that the README runs on its defaults.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CREDGATE_") || name == "BASE" || name == "SEEDS" || name == "PRIVATE" || name == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// shell is one bash session fed the blocks one by one.
type shell struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	done   chan struct{}
	marker string
	n      int
}

func startShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-euo", "pipefail")
	cmd.Dir = dir
	cmd.Env = env
	// A process group of its own, so that whatever the README starts in
	// the background stops with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &shell{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{}), marker: "readme-block-done-" + hex.EncodeToString(id[:])}
	go func() {
		defer close(s.lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.close)
	return s
}

// run feeds text to the shell and returns its output once it is done; an
// error when the shell exits (a command failed: set -e) or time runs out.
func (s *shell) run(text string, timeout time.Duration) (string, error) {
	s.n++
	end := fmt.Sprintf("%s-%d", s.marker, s.n)
	// The marker starts a line of its own even after output without a
	// final newline (curl's JSON).
	script := text + "\nprintf '\\n%s\\n' " + end + "\n"
	if _, err := io.WriteString(s.stdin, script); err != nil {
		return "", fmt.Errorf("the shell is gone: %w", err)
	}
	var out strings.Builder
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				<-s.done
				return out.String(), fmt.Errorf("the block failed (bash -euo pipefail exited: %v)", s.cmd.ProcessState)
			}
			if strings.HasSuffix(l, end) {
				return strings.TrimSuffix(out.String(), "\n"), nil
			}
			out.WriteString(l)
			out.WriteByte('\n')
		case <-timer.C:
			return out.String(), fmt.Errorf("the block did not finish within %s", timeout)
		}
	}
}

func (s *shell) close() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// server is `bin/credgate serve` as the README starts it, on port.
type server struct {
	cmd  *exec.Cmd
	log  *testenv.SyncBuffer
	done chan struct{}
}

func startServer(t *testing.T, dir string, port int, args, env []string) *server {
	t.Helper()
	bin := filepath.Join(dir, "bin", "credgate")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the README starts bin/credgate before building it: %v", err)
	}
	s := &server{log: &testenv.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port)}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	testenv.DieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("bin/credgate serve exited: %v\n%s", s.cmd.ProcessState, s.log.String())
		case <-ctx.Done():
			t.Fatalf("bin/credgate serve was not ready within a minute\n%s", s.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop stops the server as Ctrl-C would; its log follows when the test
// failed.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if t.Failed() {
		t.Logf("server log (tail):\n%s", tail(s.log.String(), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
