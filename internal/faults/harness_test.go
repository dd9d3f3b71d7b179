package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

const (
	adminID     = "faults-admin"
	adminSecret = "faults-admin-secret-0123456789abcdef"
	origin      = "credgate.test/faults"
)

// binary is the credgate binary the tests start, built once per run of
// this test binary.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// credgateBinary builds cmd/credgate the first time a test asks for it
// ($CREDGATE_FAULTS_BINARY instead, when set),
// as it is shipped: without the race detector, whose cost on every request
// would distort the loads and waits these tests measure (and whose link
// alone takes minutes on a busy machine).
func credgateBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the fault suite builds credgate and runs it against servers of its own")
	}
	binary.once.Do(func() {
		// A credgate built elsewhere (another revision, say, to see which
		// findings it still has) may be named instead.
		if bin := os.Getenv("CREDGATE_FAULTS_BINARY"); bin != "" {
			binary.path = bin
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			binary.err = fmt.Errorf("the go command is not in PATH: %w", err)
			return
		}
		if binary.dir, binary.err = os.MkdirTemp("", "credgate-faults-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "credgate")
		out, err := exec.Command(goCmd, "build", "-o", binary.path, "github.com/credgate/credgate/cmd/credgate").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// server is one `credgate serve` process.
type server struct {
	t       *testing.T
	bin     string
	dataDir string
	env     []string
	addr    string
	base    string
	logs    *testenv.SyncBuffer
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// newServer prepares a server on its own address and data dir with env
// (CREDGATE_*=…) on top of the suite's: an administrator, the suite's
// origin, a quota no test reaches unless it sets one, warnings only, and
// a store bound that a busy CI machine does not reach unless a test sets
// its own (the start reads the log through it: at 2 s, SQLite on a
// machine with a load average of 60 did not always answer in time).
func newServer(t *testing.T, env ...string) *server {
	t.Helper()
	s := &server{t: t, bin: credgateBinary(t), dataDir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), logs: &testenv.SyncBuffer{}}
	s.base = "http://" + s.addr
	s.env = append([]string{"CREDGATE_ADMIN_CLIENT_ID=" + adminID, "CREDGATE_ADMIN_CLIENT_SECRET=" + adminSecret,
		"CREDGATE_EVIDENCE_ORIGIN=" + origin, "CREDGATE_RATE_LIMIT=1000000-M", "CREDGATE_LOG_LEVEL=warn", "CREDGATE_STORE_TIMEOUT=10s"}, env...)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("credgate's log (last lines):\n%s", tail(s.logs.String(), 30))
		}
	})
	return s
}

// startServer starts a server (newServer's env) and waits until it answers.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	s := newServer(t, env...)
	s.start()
	return s
}

func (s *server) command() *exec.Cmd {
	cmd := exec.Command(s.bin, "serve", "--addr", s.addr, "--data-dir", s.dataDir)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	return cmd
}

// start starts the process (again, after kill) and waits for /healthz.
func (s *server) start() {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.command()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.t.Fatalf("credgate serve exited at start:\n%s", s.logs.String())
		default:
		}
		if res, err := http.Get(s.base + "/healthz"); err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("credgate serve did not answer within a minute:\n%s", s.logs.String())
}

// kill ends the process with SIGKILL: nothing is flushed, nothing drained.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// refused runs `credgate serve` with the server's settings plus env,
// which must refuse to start: it returns what it printed.
func (s *server) refused(env ...string) string {
	s.t.Helper()
	out := &testenv.SyncBuffer{}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(s.t))
	cmd := exec.Command(s.bin, "serve", "--addr", addr, "--data-dir", s.dataDir)
	cmd.Env = append(append(os.Environ(), s.env...), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			s.t.Fatalf("credgate serve exited 0 instead of refusing:\n%s", out.String())
		}
		return out.String()
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("credgate serve neither refused nor stopped within a minute:\n%s", out.String())
	}
	return ""
}

// reply is one HTTP exchange as a test sees it.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	took   time.Duration
	err    error
	// trace is the id of the request's trace, when its api is traced.
	trace string
}

// code is a problem's stable code ("" for anything else).
func (r reply) code() string { c, _ := r.body["code"].(string); return c }

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %s: %v", r.took.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d %s (%s)", r.status, bytes.TrimSpace(r.raw), r.took.Round(time.Millisecond))
}

// api talks to one server. Its client's timeout is far past any bound the
// tests assert, so that a hang is measured rather than cut short.
type api struct {
	base   string
	client *http.Client
	// traced sends every request with a traceparent of a new trace (see
	// spanLog).
	traced bool
}

func newAPI(base string) *api {
	return &api{base: base, client: &http.Client{Timeout: 90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}}
}

func (a *api) do(method, path, token, contentType string, body []byte, header ...string) reply {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	var trace string
	if a.traced {
		var tp string
		tp, trace = newTraceparent()
		req.Header.Set("Traceparent", tp)
	}
	start := time.Now()
	res, err := a.client.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start), trace: trace}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, header: res.Header, raw: raw, took: time.Since(start), err: err, trace: trace}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (a *api) postJSON(path, token string, body any) reply {
	b, err := json.Marshal(body)
	if err != nil {
		return reply{err: err}
	}
	return a.do(http.MethodPost, path, token, "application/json", b)
}

func (a *api) get(path, token string) reply { return a.do(http.MethodGet, path, token, "", nil) }

// tokenReply asks the token endpoint for a client's token.
func (a *api) tokenReply(id, secret string) reply {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	return a.do(http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded", []byte(form.Encode()))
}

func (a *api) token(t *testing.T, id, secret string) string {
	t.Helper()
	r := a.tokenReply(id, secret)
	tok, _ := r.body["access_token"].(string)
	if tok == "" {
		t.Fatalf("token for %s: %s", id, r)
	}
	return tok
}

func (a *api) adminToken(t *testing.T) string { t.Helper(); return a.token(t, adminID, adminSecret) }

// partner creates a partner allowed actions (fields adds to the request)
// and returns its token.
func (a *api) partner(t *testing.T, admin string, fields map[string]any, actions ...string) string {
	t.Helper()
	in := map[string]any{"name": "某市公共资源交易中心", "actions": actions}
	for k, v := range fields {
		in[k] = v
	}
	r := a.postJSON("/v1/admin/partners", admin, in)
	id, _ := r.body["client_id"].(string)
	secret, _ := r.body["client_secret"].(string)
	if r.status != http.StatusCreated || id == "" {
		t.Fatalf("create partner: %s", r)
	}
	return a.token(t, id, secret)
}

const action = "government_procurement"

func (a *api) check(token, subject string) reply {
	return a.postJSON("/v1/checks", token, map[string]any{"subject": map[string]string{"id": subject}, "action": action})
}

// list names subjects in entries, imported over the API so that the
// server's listed filter knows them at once: a first check of one must
// read its entries from the store, where a subject no entry names is
// answered without it.
func (a *api) list(t *testing.T, admin string, subjects []string) {
	t.Helper()
	if r := a.do(http.MethodPost, "/v1/admin/entries:import", admin, "application/x-ndjson", testenv.ListedNDJSON(subjects)); r.status != http.StatusCreated {
		t.Fatalf("import entries: %d %v", r.status, r.body["detail"])
	}
}

// mustCheck makes a check that must be answered, and returns its id.
func (a *api) mustCheck(t *testing.T, token, subject string) string {
	t.Helper()
	r := a.check(token, subject)
	id, _ := r.body["check_id"].(string)
	if r.status != http.StatusOK || id == "" {
		t.Fatalf("check %s: %s", subject, r)
	}
	return id
}

// verifiers are the log's keys as GET /v1/evidence/keys serves them.
func (a *api) verifiers(t *testing.T) []string {
	t.Helper()
	r := a.get("/v1/evidence/keys", "")
	keys, _ := r.body["keys"].([]any)
	var out []string
	for _, k := range keys {
		if m, ok := k.(map[string]any); ok {
			out = append(out, m["key"].(string))
		}
	}
	if r.status != http.StatusOK || len(out) == 0 {
		t.Fatalf("evidence keys: %s", r)
	}
	return out
}

// verifyReceipt fetches a check's full receipt and verifies it offline
// with the log's keys.
func (a *api) verifyReceipt(token, id string, vkeys []string) error {
	r := a.get("/v1/evidence/receipts/"+id, token)
	if r.status != http.StatusOK {
		return fmt.Errorf("receipt %s: %s", id, r)
	}
	rc, err := evidence.ParseReceipt(r.raw)
	if err != nil {
		return err
	}
	vs, err := evidence.Verifiers(vkeys...)
	if err != nil {
		return err
	}
	_, err = evidence.VerifyReceipt(rc, vs)
	return err
}

// subject returns a valid unified social credit code for (series, i):
// distinct series never meet, and the same pair gives the same code.
func subject(t testing.TB, series, i int) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	var serial [6]byte
	for k := len(serial) - 1; k >= 0; k-- {
		serial[k] = alphabet[i%len(alphabet)]
		i /= len(alphabet)
	}
	prefix := fmt.Sprintf("91440300MF%c", alphabet[series%len(alphabet)]) + string(serial[:])
	for _, c := range alphabet {
		if id, err := policy.ParseUSCC(prefix + string(c)); err == nil {
			return id.Value
		}
	}
	t.Fatalf("no check character completes %s", prefix)
	return ""
}

// answer is one check of a load: what was asked and what came back.
type answer struct {
	subject string
	cached  bool
	sent    time.Time
	reply
}

// load sends checks at a steady rate, each in its own request, over
// cached subjects (checked once before, so in the cache tier) and, when
// uncached is set, a new subject every uncached-th check; it records every
// answer.
type load struct {
	api      *api
	token    string
	cached   []string
	uncached func(i int) string
	every    int

	mu      sync.Mutex
	answers []answer
	skipped int
	stop    chan struct{}
	done    chan struct{}
}

// maxInFlight bounds the load's open requests (and sockets): past it a
// tick is counted as skipped instead of sent.
const maxInFlight = 1500

func startLoad(a *api, token string, perSecond int, cached []string, uncached func(i int) string, every int) *load {
	l := &load{api: a, token: token, cached: cached, uncached: uncached, every: every,
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.run(time.Second / time.Duration(perSecond))
	return l
}

func (l *load) run(interval time.Duration) {
	defer close(l.done)
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			wg.Wait()
			return
		case <-tick.C:
		}
		a := answer{subject: l.cached[i%len(l.cached)], cached: true}
		if l.uncached != nil && l.every > 0 && i%l.every == l.every-1 {
			a.subject, a.cached = l.uncached(i), false
		}
		select {
		case sem <- struct{}{}:
		default:
			l.mu.Lock()
			l.skipped++
			l.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			a.sent = time.Now()
			a.reply = l.api.check(l.token, a.subject)
			l.mu.Lock()
			l.answers = append(l.answers, a)
			l.mu.Unlock()
		})
	}
}

// finish stops sending, waits for every open request and returns every
// answer, in the order they were sent.
func (l *load) finish() ([]answer, int) {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.SortFunc(l.answers, func(a, b answer) int { return a.sent.Compare(b.sent) })
	return l.answers, l.skipped
}

// figures summarises answers: how many, how many failed (not 200), the
// longest wait, and the count of each status and problem code.
type figures struct {
	requests, failed int
	maxWait          time.Duration
	byCode           map[string]int
}

func summarise(as []answer) figures {
	f := figures{byCode: map[string]int{}}
	for _, a := range as {
		f.requests++
		f.maxWait = max(f.maxWait, a.took)
		key := fmt.Sprint(a.status)
		switch {
		case a.err != nil:
			key = "error"
		case a.code() != "":
			key += " " + a.code()
		}
		if a.err != nil || a.status != http.StatusOK {
			f.failed++
		}
		f.byCode[key]++
	}
	return f
}

func (f figures) String() string {
	keys := make([]string, 0, len(f.byCode))
	for k := range f.byCode {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, f.byCode[k])
	}
	return fmt.Sprintf("requests %d, failed %d, max wait %s (%s)", f.requests, f.failed, f.maxWait.Round(time.Millisecond), strings.Join(parts, ", "))
}

// within keeps the answers sent in [from, to).
func within(as []answer, from, to time.Time) []answer {
	var out []answer
	for _, a := range as {
		if !a.sent.Before(from) && a.sent.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// eventually retries f until it holds or a deadline passes.
func eventually(t *testing.T, what string, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %s", what, err, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
