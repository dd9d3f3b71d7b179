package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// benchServer runs the gateway over a SQLite store in a temp dir behind a
// real HTTP server, with a per-partner rate limit.
func benchServer(t *testing.T, adminID, adminSecret string, opts ...gateway.Option) *httptest.Server {
	t.Helper()
	return benchServerWatched(t, nil, adminID, adminSecret, opts...)
}

// benchServerWatched is benchServer with connState (if not nil) told of
// every connection's state from the start.
func benchServerWatched(t *testing.T, connState func(net.Conn, http.ConnState), adminID, adminSecret string, opts ...gateway.Option) *httptest.Server {
	t.Helper()
	return benchServerWrapped(t, connState, nil, adminID, adminSecret, opts...)
}

// benchServerWrapped is benchServerWatched with the gateway's handler
// passed through wrap (if not nil).
func benchServerWrapped(t *testing.T, connState func(net.Conn, http.ConnState), wrap func(http.Handler) http.Handler, adminID, adminSecret string, opts ...gateway.Option) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	partners := service.NewPartners(st, cat)
	if _, err := partners.EnsureAdmin(ctx, adminID, adminSecret); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	// A per-partner quota far below what the bench sends, as serve always
	// has one (gateway.DefaultRateLimit): the bench must lift it for its
	// partner or see 429s.
	limits, err := gateway.NewRateLimiter("60-M")
	if err != nil {
		t.Fatal(err)
	}
	// The evidence log and receipts, as serve wires them: the receipts
	// phase fetches a receipt for each of its checks.
	evlog := evidence.NewLog(st, testenv.Signer(t, "credgate.bench/evidence"))
	if err := evlog.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(service.NewChecker(cat, st, app, st, service.WithReceiptBuilder(evlog)), service.NewEntries(st, cat), partners, access.NewTokens(key),
		append([]gateway.Option{gateway.WithReadiness("sqlite", st), gateway.WithRateLimiter(limits), gateway.WithEvidence(evlog, service.NewReceipts(st, evlog))}, opts...)...)
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = connState
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// runBench runs credgate bench with args (which end in --json) and
// returns its output and the JSON report on its last line, which it
// checks against the report's schema.
func runBench(ctx context.Context, t *testing.T, args ...string) (string, *benchReport) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := benchCmd(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	var rep benchReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, text)
	}
	checkBenchReportSchema(t, []byte(lines[len(lines)-1]))
	return text, &rep
}

func TestBenchCommand(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	ts := benchServer(t, id, secret, gateway.WithNoopEndpoint())
	args := []string{"--url", ts.URL, "--credentials", benchCredentials(t, id, secret),
		"--duration", "1s", "--concurrency", "4", "--rate", "50", "--subjects", "20",
		// The schedule is checked whole below: no slot may be given up on a
		// machine busy with other tests.
		"--conn-wait", "5s", "--warmup", "200ms", "--json"}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	text, rep := runBench(ctx, t, args...)
	t.Logf("bench took %s:\n%s", time.Since(start).Round(time.Millisecond), text)

	for _, want := range []string{"GOMAXPROCS", "NumCPU", "server      " + ts.URL,
		"phase saturate:", "phase noop:", "phase rate:", "2 listed on safety_production_blacklist"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, "skipped") {
		t.Error("a phase was skipped")
	}
	errLines := regexp.MustCompile(`(?m)^  errors +(\d+)`).FindAllStringSubmatch(text, -1)
	// warmup, saturate, noop, rate, receipts-load, receipts, overload
	if len(errLines) != 7 {
		t.Fatalf("%d errors lines, want 7", len(errLines))
	}
	// The overload phase offers more than the server takes: its refusals
	// (503 overloaded) are the point of it.
	for _, m := range errLines[:6] {
		if m[1] != "0" {
			t.Errorf("errors %s, want 0", m[1])
		}
	}
	if !regexp.MustCompile(`(?m)^checks/noop ratio: \d+(\.\d+)?%`).MatchString(text) {
		t.Error("no checks/noop ratio line")
	}

	// The JSON line agrees: every phase ran, without errors, and checks of
	// listed and unlisted subjects both came back.
	if len(rep.Phases) != 6 || rep.RatioPct == nil {
		t.Fatalf("JSON report: %d phases, ratio %v", len(rep.Phases), rep.RatioPct)
	}
	for _, p := range rep.Phases {
		if p.Requests == 0 || p.Throughput <= 0 || (p.Errors != 0 && p.Name != "overload") || p.Errors != p.ErrorsBy["HTTP 503"] {
			t.Errorf("phase %s: %d requests, %d errors, %.1f req/s", p.Name, p.Requests, p.Errors, p.Throughput)
		}
		if p.Name != "noop" && p.Name != "receipts" && (p.Outcomes["clear"] == 0 || p.Outcomes["clear"] == p.Requests) {
			t.Errorf("phase %s outcomes %v: want both clear and restricted answers", p.Name, p.Outcomes)
		}
	}
	// The server's /metrics is on --url here: every phase has the
	// server's side, and the checks that arrived include those answered.
	for _, p := range rep.Phases {
		if a := p.Server; a == nil || a.WallS <= 0 || a.CPUS <= 0 || a.Arrived < a.Answered {
			t.Errorf("phase %s: server %+v", p.Name, a)
		}
	}
	if ov := rep.Phases[5]; ov.Server == nil || ov.Server.Arrived == 0 || ov.Server.ArrivedX <= 0 || ov.RSSAfterMB <= 0 || ov.GeneratorCores <= 0 {
		t.Errorf("overload: server %+v, rss %g MB, generator %g cores", ov.Server, ov.RSSAfterMB, ov.GeneratorCores)
	}
	// Its answers, apart by connection, are all of them: here the server
	// keeps connections, so they come on kept ones.
	if ov := rep.Phases[5]; ov.AnsweredKept == 0 || ov.AnsweredKept+ov.AnsweredNew != int64(ov.Samples) || ov.P99KeptMs <= 0 {
		t.Errorf("overload: answered %d on kept connections (p99 %g ms) and %d on new, of %d samples", ov.AnsweredKept, ov.P99KeptMs, ov.AnsweredNew, ov.Samples)
	}
	if rate := rep.Phases[2]; rate.Scheduled != 50 || rate.Requests != 50 {
		t.Errorf("rate phase: %d scheduled, %d sent, want 50", rate.Scheduled, rate.Requests)
	}

	// A second run against the same store reuses the subjects listed by the
	// first instead of listing them again.
	var out, errOut bytes.Buffer
	args = append(args[:len(args)-1], "--phases", "rate", "--duration", "200ms")
	if err := benchCmd(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("second bench: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "(0 imported now, 2 already listed)") || !strings.Contains(out.String(), "errors      0") {
		t.Errorf("second run:\n%s", out.String())
	}
}

// TestBenchRounds: with --rounds the saturate and noop phases run in turn,
// each marked with its round; the ratio is that of the means, and each
// round's ratio is reported beside it.
func TestBenchRounds(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	ts := benchServer(t, id, secret, gateway.WithNoopEndpoint())
	base := []string{"--url", ts.URL, "--credentials", benchCredentials(t, id, secret),
		"--duration", "200ms", "--concurrency", "2", "--subjects", "5", "--warmup", "0"}
	text, rep := runBench(t.Context(), t, append(base, "--phases", "saturate,noop", "--rounds", "3", "--json")...)
	if len(rep.Phases) != 6 || len(rep.RoundRatiosPct) != 3 || rep.RatioPct == nil {
		t.Fatalf("%d phases, round ratios %v, ratio %v; want 6, 3 and one\n%s", len(rep.Phases), rep.RoundRatiosPct, rep.RatioPct, text)
	}
	var sat, noop float64
	for i, p := range rep.Phases {
		want := []string{"saturate", "noop"}[i%2]
		if p.Name != want || p.Round != i/2+1 || p.Throughput <= 0 || p.Errors != 0 {
			t.Fatalf("phase %d: %s round %d, %.1f req/s, %d errors; want %s round %d", i, p.Name, p.Round, p.Throughput, p.Errors, want, i/2+1)
		}
		if p.Name == "saturate" {
			sat += p.Throughput
		} else {
			noop += p.Throughput
			if got, want := rep.RoundRatiosPct[i/2], 100*rep.Phases[i-1].Throughput/p.Throughput; math.Abs(got-want) > 1e-9 {
				t.Errorf("round %d ratio %g, want %g", i/2+1, got, want)
			}
		}
	}
	if want := 100 * sat / noop; math.Abs(*rep.RatioPct-want) > 1e-9 {
		t.Errorf("ratio %g, want the means' %g", *rep.RatioPct, want)
	}
	if !strings.Contains(text, "phase noop (round 3):") || !strings.Contains(text, "the means of 3 rounds; per round") {
		t.Errorf("output:\n%s", text)
	}

	for _, args := range [][]string{{"--rounds", "2", "--phases", "saturate"}, {"--rounds", "0"}, {"--rounds", "51"}} {
		if err := benchCmd(t.Context(), append(base, args...), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--rounds") {
			t.Errorf("bench %v: %v, want a --rounds error", args, err)
		}
	}
}

func TestBenchNoopMissing(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	ts := benchServer(t, id, secret) // without the no-op endpoint
	var out, errOut bytes.Buffer
	args := []string{"--url", ts.URL, "--credentials", benchCredentials(t, id, secret), "--writes-test-data",
		"--duration", "200ms", "--concurrency", "2", "--subjects", "5", "--phases", "noop,saturate", "--warmup", "0"}
	if err := benchCmd(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut.String())
	}
	text := out.String()
	if !strings.Contains(text, "--bench-noop") || !strings.Contains(text, "checks/noop ratio: n/a") || strings.Contains(text, "phase rate") || strings.Contains(text, "phase warmup") {
		t.Errorf("output:\n%s", text)
	}
	// With --rounds, the rounds end at the skipped phase.
	out.Reset()
	if err := benchCmd(context.Background(), append(args, "--rounds", "3"), &out, &errOut); err != nil {
		t.Fatalf("bench --rounds: %v\n%s", err, errOut.String())
	}
	text = out.String()
	if !strings.Contains(text, "checks/noop ratio: n/a (noop phase skipped)") || strings.Count(text, "phase saturate (round") != 1 || strings.Contains(text, "(round 2)") {
		t.Errorf("output with --rounds:\n%s", text)
	}
}

func TestBenchSubjectsAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 30, 31, 999, 123456, benchMaxSubjects - 1} {
		s, err := benchSubject(i)
		if err != nil {
			t.Fatal(err)
		}
		id, err := policy.ParseSubjectID(s)
		if err != nil || id.Kind != policy.KindOrganization || id.Value != s {
			t.Fatalf("subject %d = %s: %v %v", i, s, id, err)
		}
		if seen[s] {
			t.Fatalf("subject %d repeats %s", i, s)
		}
		seen[s] = true
	}
	if a, _ := benchSubject(42); a != mustSubject(t, 42) {
		t.Fatal("subjects are not deterministic")
	}
}

func mustSubject(t *testing.T, i int) string {
	t.Helper()
	s, err := benchSubject(i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBenchOpenLoopConnectionsBounded: an open loop never holds more
// connections to the server than --connections, and every slot is either
// sent or counted as not sent: none vanishes, none is counted answered
// without an answer.
func TestBenchOpenLoopConnectionsBounded(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	var mu sync.Mutex
	open, most := 0, 0
	ts := benchServerWatched(t, func(_ net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch st {
		case http.StateNew:
			open++
			most = max(most, open)
		case http.StateClosed, http.StateHijacked:
			open--
		}
	}, id, secret)
	_, rep := runBench(context.Background(), t, "--url", ts.URL, "--credentials", benchCredentials(t, id, secret), "--writes-test-data", "--phases", "rate",
		"--duration", "500ms", "--concurrency", "1", "--connections", "3", "--rate", "400", "--subjects", "20", "--warmup", "200ms", "--json")
	r := rep.Phases[0]
	if r.Workers != 3 || r.Requests == 0 || r.Requests+r.NoConnection+r.Unsent != r.Scheduled || r.Throughput*r.ElapsedS > float64(r.Requests)+0.5 {
		t.Errorf("rate phase: %d workers, %d scheduled, %d sent, %d without a connection, %d unsent, %.1f/s answered",
			r.Workers, r.Scheduled, r.Requests, r.NoConnection, r.Unsent, r.Throughput)
	}
	mu.Lock()
	defer mu.Unlock()
	// The workers' three, and one of the bench's own for its token and
	// the server's /metrics (here on the same server).
	if most > 3+1 {
		t.Errorf("%d connections open at once, want at most 3 (--connections) and the bench's own", most)
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "1,0": "0,1", "0-2,2": "0,1,2", " 3 , 1-1": "1,3"} {
		got, err := parseCPUList(in)
		if err != nil || formatCPUList(got) != want {
			t.Errorf("%q: %v %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "2-1", "-1", "0,", "1024"} {
		if got, err := parseCPUList(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}

// TestBenchWarmupCountedApart: the server's count of checks is the warm-up's
// plus the phase's (each with one connection-opening request per worker),
// the rate phase sends exactly its own schedule, and the warm-up, at the
// same rate, its own: a warm-up request counted in a phase, or none sent,
// breaks one of them.
func TestBenchWarmupCountedApart(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	var checks atomic.Int64
	ts := benchServerWrapped(t, nil, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/checks" {
				checks.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}, id, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"rate", []string{"--phases", "rate", "--rate", "40", "--duration", "500ms", "--warmup", "250ms"}},
		{"saturate", []string{"--phases", "saturate", "--concurrency", "3", "--duration", "200ms", "--warmup", "200ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--url", ts.URL, "--credentials", benchCredentials(t, id, secret), "--writes-test-data",
				"--subjects", "20", "--conn-wait", "5s", "--json"}, tc.args...)
			before := checks.Load()
			text, rep := runBench(ctx, t, args...)
			served := checks.Load() - before
			wu := rep.Warmup
			if wu == nil || len(rep.Phases) != 1 {
				t.Fatalf("warm-up %v, %d phases; want both\n%s", wu, len(rep.Phases), text)
			}
			p := rep.Phases[0]
			if wu.Requests == 0 || wu.Errors != 0 || p.Errors != 0 || wu.Outcomes["clear"] == 0 {
				t.Errorf("warm-up %d requests, %d errors, outcomes %v; phase %d errors", wu.Requests, wu.Errors, wu.Outcomes, p.Errors)
			}
			if want := int64(wu.Workers) + wu.Requests + int64(p.Workers) + p.Requests; served != want {
				t.Errorf("server saw %d checks, want %d: warm-up %d (+%d to open connections), phase %d (+%d)",
					served, want, wu.Requests, wu.Workers, p.Requests, p.Workers)
			}
			// The server counted the phase's checks and none of the
			// warm-up's: at most one answer per connection may not be
			// counted yet when /metrics is read (the histogram is
			// observed after the answer is written).
			if a := p.Server; a == nil || a.Arrived > p.Requests || a.Arrived < p.Requests-int64(p.Workers) || a.Answered != a.Arrived {
				t.Errorf("server %+v; the phase sent %d checks on %d connections\n%s", a, p.Requests, p.Workers, text)
			}
			if tc.name == "rate" && (p.Scheduled != 20 || p.Requests != 20 || wu.Scheduled != 10 || wu.Requests != 10) {
				t.Errorf("rate: phase %d scheduled %d sent, want 20; warm-up %d scheduled %d sent, want 10",
					p.Scheduled, p.Requests, wu.Scheduled, wu.Requests)
			}
			if !strings.Contains(text, "phase warmup:") {
				t.Errorf("output lacks the warm-up:\n%s", text)
			}
		})
	}
}

// writeCounter counts the writes on a connection.
type writeCounter struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countedTarget is the bench's target for rawURL, counting the
// connections it opens and the writes on them.
func countedTarget(t *testing.T, rawURL string) (target *benchTarget, dials, writes *atomic.Int64) {
	t.Helper()
	tg, err := newBenchTarget(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	dials, writes = new(atomic.Int64), new(atomic.Int64)
	var d net.Dialer
	tg.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dials.Add(1)
		return writeCounter{Conn: c, writes: writes}, nil
	}
	return &tg, dials, writes
}

// TestWorkerConnOneWriteKeepAlive: a worker sends each request, headers
// and body, in one write, on one kept-alive connection, to --url's path
// prefix. Two writes would cost the generator a second system call per
// request, and cross loopback as two segments, on the cores it shares with
// the server it measures.
func TestWorkerConnOneWriteKeepAlive(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+string(b))
		mu.Unlock()
		w.Write([]byte(`{"outcome":"clear"}`))
	}))
	t.Cleanup(ts.Close)
	target, dials, writes := countedTarget(t, ts.URL+"/api/")
	var c workerConn
	defer c.close()
	var buf bytes.Buffer
	body := `{"subject":{"id":"91110000MA01234567"},"action":"tendering"}`
	const n = 3
	for range n {
		status, err := c.exchange(context.Background(), target, "/v1/checks", "Bearer tok", []byte(body), &buf, benchMaxBody)
		if err != nil || status != http.StatusOK || buf.String() != `{"outcome":"clear"}` {
			t.Fatalf("exchange: %d %q %v", status, buf.String(), err)
		}
	}
	want := "POST /api/v1/checks Bearer tok application/json " + body
	for _, got := range seen {
		if got != want {
			t.Errorf("the server saw %q, want %q", got, want)
		}
	}
	if len(seen) != n || writes.Load() != n || dials.Load() != 1 {
		t.Errorf("%d requests seen, %d writes, %d connections; want %d, %d, 1", len(seen), writes.Load(), dials.Load(), n, n)
	}
}

// TestWorkerConnRedials: a connection the server closes, or whose answer
// was too long to read whole, is not used again; the next request dials,
// and says so (dialled), which a request on the kept connection does not.
func TestWorkerConnRedials(t *testing.T) {
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Connection", "close")
			w.Write([]byte("closing"))
		case 2:
			w.Write(bytes.Repeat([]byte("x"), 100))
		case 3:
			w.Write([]byte("ok"))
		default:
			w.Write(bytes.Repeat([]byte("y"), 64))
		}
	}))
	t.Cleanup(ts.Close)
	target, dials, _ := countedTarget(t, ts.URL)
	var c workerConn
	defer c.close()
	var buf bytes.Buffer
	send := func() (int, error) {
		return c.exchange(context.Background(), target, "/", "Bearer tok", []byte("{}"), &buf, 64)
	}
	if st, err := send(); err != nil || st != http.StatusOK || buf.String() != "closing" {
		t.Fatalf("first: %d %q %v", st, buf.String(), err)
	}
	if _, err := send(); !errors.Is(err, errAnswerTooLong) {
		t.Fatalf("second, 100 bytes read with a limit of 64: %v, want errAnswerTooLong", err)
	}
	if st, err := send(); err != nil || st != http.StatusOK || buf.String() != "ok" || !c.dialled {
		t.Fatalf("third: %d %q %v, dialled %v", st, buf.String(), err, c.dialled)
	}
	if st, err := send(); err != nil || st != http.StatusOK || buf.Len() != 64 || c.dialled {
		t.Fatalf("fourth, an answer of exactly the limit: %d, %d bytes, %v, dialled %v", st, buf.Len(), err, c.dialled)
	}
	if dials.Load() != 3 {
		t.Errorf("%d connections for a closed one, a too-long answer and two more requests, want 3", dials.Load())
	}
}

// TestWorkerConnContextEnds: the end of the request's context unblocks a
// worker waiting for an answer that does not come, as http.Client does.
func TestWorkerConnContextEnds(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	target, _, _ := countedTarget(t, ts.URL)
	var c workerConn
	defer c.close()
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := c.exchange(ctx, target, "/", "Bearer tok", []byte("{}"), &buf, 64)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an exchange whose context ended without an answer succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the exchange was still waiting 10 s after its context ended")
	}
}

// TestWorkerConnTLS: an https --url is spoken over TLS, verified against
// the roots the target trusts, with the URL's host as the server name.
func TestWorkerConnTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Host + " " + r.URL.Path))
	}))
	t.Cleanup(ts.Close)
	target, dials, _ := countedTarget(t, ts.URL)
	if target.tls == nil {
		t.Fatalf("target for %s has no TLS settings", ts.URL)
	}
	target.tls.RootCAs = ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	var c workerConn
	defer c.close()
	var buf bytes.Buffer
	for range 2 {
		st, err := c.exchange(context.Background(), target, "/v1/checks", "Bearer tok", []byte("{}"), &buf, 64)
		if err != nil || st != http.StatusOK || buf.String() != strings.TrimPrefix(ts.URL, "https://")+" /v1/checks" {
			t.Fatalf("exchange over TLS: %d %q %v", st, buf.String(), err)
		}
	}
	if dials.Load() != 1 {
		t.Errorf("%d connections for two requests, want 1", dials.Load())
	}

	// A server the target does not trust is refused.
	untrusted, _, _ := countedTarget(t, ts.URL)
	var c2 workerConn
	defer c2.close()
	if _, err := c2.exchange(context.Background(), untrusted, "/", "Bearer tok", []byte("{}"), &buf, 64); err == nil {
		t.Error("an exchange with a server whose certificate no root signs succeeded")
	}
}

// TestBenchOverloadRetries: with --retry-after, a caller refused 503
// overloaded sends its check again after the Retry-After it was given,
// up to the limit, and the phase accounts for every refusal: sent again,
// still waiting when the schedule ended, or given up. A wrapper refuses
// every other check as load shedding does (problem code overloaded,
// Retry-After: 1), so some callers are answered on their retry, a
// second after their first send, and some are refused again and give up.
func TestBenchOverloadRetries(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	var checks atomic.Int64
	refuse := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/checks" && checks.Add(1)%2 == 0 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"type":"about:blank","title":"Overloaded","status":503,"code":"overloaded"}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	ts := benchServerWrapped(t, nil, refuse, id, secret)
	run := func(retries string) *phaseResult {
		t.Helper()
		text, rep := runBench(context.Background(), t, "--url", ts.URL, "--credentials", benchCredentials(t, id, secret), "--writes-test-data", "--phases", "overload",
			"--capacity", "20", "--overload", "1", "--duration", "2500ms", "--connections", "4", "--subjects", "20",
			"--conn-wait", "5s", "--warmup", "0", "--retry-after", retries, "--json")
		if retries != "0" && !strings.Contains(text, "  retries     refused callers send again after Retry-After, up to "+retries+" times") {
			t.Errorf("no retries line:\n%s", text)
		}
		return rep.Phases[0]
	}

	r := run("1")
	refused := r.ErrorsBy["HTTP 503"]
	if r.RetryAfterMax != 1 || refused == 0 || r.RetriesSent == 0 || r.AnsweredRetried == 0 || r.GaveUp == 0 {
		t.Fatalf("overload with --retry-after 1: %d refused, %d sent again, %d answered so, %d gave up (%+v)",
			refused, r.RetriesSent, r.AnsweredRetried, r.GaveUp, r)
	}
	if refused != r.RetriesSent+r.RetriesWaiting+r.GaveUp {
		t.Errorf("%d refusals, but %d sent again + %d waiting at the end + %d gave up", refused, r.RetriesSent, r.RetriesWaiting, r.GaveUp)
	}
	// A first send that is answered is not a retry's: the schedule's
	// slots are the first sends.
	if first := r.Requests - r.RetriesSent; first+r.NoConnection+r.Unsent != r.Scheduled {
		t.Errorf("%d first sends, %d without a connection, %d unsent, of %d scheduled", first, r.NoConnection, r.Unsent, r.Scheduled)
	}
	if r.P99RetriedMs < 1000 || r.AnsweredKept+r.AnsweredNew+r.AnsweredRetried != int64(r.Samples) {
		t.Errorf("answered after a retry: %d, p99 %g ms from the first send (want ≥ 1000: Retry-After 1); %d kept + %d new + %d retried of %d samples",
			r.AnsweredRetried, r.P99RetriedMs, r.AnsweredKept, r.AnsweredNew, r.AnsweredRetried, r.Samples)
	}

	// Without --retry-after a refused caller gives up at once, uncounted.
	r = run("0")
	if r.ErrorsBy["HTTP 503"] == 0 || r.RetriesSent != 0 || r.AnsweredRetried != 0 || r.GaveUp != 0 || r.RetryAfterMax != 0 {
		t.Errorf("overload without retries: %+v", r)
	}
}
