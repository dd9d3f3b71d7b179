package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
)

// The bench drives a running server over HTTP, the way a partner system
// would: it sets up a partner and black-list entries through the admin API,
// then runs its phases, each worker on a keep-alive connection of its own
// (bench_conn.go):
//
//	saturate  closed loop: --concurrency workers send POST /v1/checks
//	          back to back; the server's ceiling for checks.
//	noop      the same workers and bodies against POST /bench/noop (served
//	          with serve --bench-noop): the ceiling of HTTP, routing and JSON
//	          alone, so that checks can be judged against it.
//	rate      open loop at --rate checks/s; latency is measured from each
//	          request's intended send time, so a stalled server is charged
//	          for the requests it delayed (no coordinated omission).
//
// Before them a warm-up of --warmup sends checks the way the first phase
// does (its workers, or the rate phase's rate) and is reported apart: a
// fresh database's first writes, the pool filling and cold caches would
// otherwise make the first phase's tail.
//
// Every check answer is verified: listed subjects must not be "clear", and
// unlisted ones must be.
//
// Each phase also reports both sides of the CPU, since on one machine the
// generator and the server share it: the generator's own CPU
// (generator_cpu_us_per_request, generator_cores) and, from the server's
// /metrics (--metrics-url) read before the phase's first request and
// after its last answer, "server" (bench_metrics.go): wall_s between the
// readings, cpu_s the server process used in it, cores (cpu_s/wall_s),
// cpu_us_per_answered (cpu_s over the 2xx answers, refusals' cost
// included), arrived (the requests on the phase's route the server
// finished, any status), answered (2xx), refused (load shedding's 503s),
// arrived_rps (per second of wall_s) and, for the overload phase,
// arrived_x_capacity. Open loops add rate_rps and sent_rps, the schedule
// and what the generator sent, per second of --duration: scheduled, sent
// and arrived side by side say whether the offered load reached the
// server. Without a readable /metrics "server" is left out.

// Bench limits.
const (
	benchList          = "safety_production_blacklist"
	benchMaxSamples    = 5_000_000 // latency samples kept per phase
	benchMaxSubjects   = 1_000_000
	benchMaxWorkers    = 10_000
	benchImportChunk   = 50_000 // entries per import request (the server takes 100 000)
	benchLateThreshold = time.Millisecond
	benchGrace         = 10 * time.Second // in-flight requests may finish this long after a phase
	benchSendSlack     = time.Second      // the rate phase sends slots at most this long after its end
	// benchConnWait is --conn-wait's default: an open loop's slot not sent
	// within this of its time found no free connection (or no CPU) and is
	// not sent at all.
	benchConnWait = 10 * time.Millisecond
	// benchMaxOpenConns bounds an open loop's connections when
	// --connections is 0 (auto).
	benchMaxOpenConns = 1024
	// benchMaxConnWait bounds --conn-wait: a request that late measures the
	// generator's backlog, not the server.
	benchMaxConnWait  = 10 * time.Second
	benchMaxBody      = 1 << 20
	benchPartnerQuota = "1000000000-M"  // the bench partner's rate_limit: in effect none
	benchWarmup       = 2 * time.Second // --warmup's default
	benchMaxWarmup    = 10 * time.Minute
	// benchMaxRounds bounds --rounds.
	benchMaxRounds = 50
	// benchMaxRetryAfter bounds --retry-after.
	benchMaxRetryAfter = 10
)

var benchPhaseNames = []string{"saturate", "noop", "rate", "receipts", "overload"}

const benchUsage = `Usage: credgate bench [flags]

Load-tests a running server over HTTP: saturate and noop run closed loops of
--concurrency workers, rate runs an open loop at --rate checks/s.

It writes into the server it measures, with the administrator's credential,
and what it writes stays there:
  - round(--subjects × --listed) synthetic companies (unified social credit
    codes 91110108MB…) listed on ` + benchList + ` (reused by later
    runs), each an entry with its evidence record and a listed event that
    partners and departments subscribed to the list receive;
  - a partner, "credgate bench <time>", revoked when the run ends;
  - every check it sends, with its evidence record.
So it runs only against a load-test server — one started with
serve --bench-noop, which answers POST /bench/noop, as no production server
does — unless --writes-test-data is given. The administrator's secret comes
from --credentials FILE, CREDGATE_ADMIN_CLIENT_SECRET or
DATA-DIR/` + adminCredentialsFile + `, never from the command line.

Flags:
`

type benchConfig struct {
	url          string
	metricsURL   string // the server's /metrics (--metrics-url; default --url's)
	clientID     string
	clientSecret string // from the environment or a credentials file, never a flag
	credentials  string // --credentials FILE
	dataDir      string
	// writesTestData: write the bench's partner and entries into a server
	// that does not serve /bench/noop (--writes-test-data).
	writesTestData bool
	duration       time.Duration
	warmup         time.Duration // 0: none
	concurrency    int
	// rounds is how many times the saturate and noop phases run, in
	// turn (--rounds).
	rounds   int
	rate     float64
	subjects int
	listed   float64
	action   string
	phases   map[string]bool
	json     bool
	// connections bounds the open loops' connections (0: auto, openConns);
	// connWait is how late a slot may still be sent.
	connections int
	connWait    time.Duration
	// cpus pins the load generator to these CPUs (--cpu; empty: unpinned).
	cpus []int
	// receipts, receiptLoad, overload, capacity and retryAfter:
	// bench_phases.go.
	receipts    int
	receiptLoad float64
	overload    float64
	capacity    float64
	retryAfter  int
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	var phases string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// --url, --data-dir, --config and the environment.
	settings := config.NewLoader(clientSettings)
	settings.Register(fs)
	fs.StringVar(&cfg.clientID, "client-id", "", "administrator client id (env CREDGATE_ADMIN_CLIENT_ID; default: from the credentials file)")
	fs.StringVar(&cfg.credentials, "credentials", "", "administrator credential `FILE`, JSON {client_id, client_secret} (default DATA-DIR/"+adminCredentialsFile+"); the secret comes from it or CREDGATE_ADMIN_CLIENT_SECRET, never from the command line")
	fs.BoolVar(&cfg.writesTestData, "writes-test-data", false, "write the bench's partner and listed entries into a server that was not started with serve --bench-noop (see above)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each phase")
	fs.DurationVar(&cfg.warmup, "warmup", benchWarmup, "before the phases, send checks for this long as the first phase would (its workers, or the rate phase's rate), verified but counted in no phase; reported apart as \"warmup\" (0: none)")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "workers of the saturate and noop phases")
	fs.IntVar(&cfg.rounds, "rounds", 1, "run the saturate and noop phases in turn this many times (saturate, noop, saturate, …), so that the machine's drift during the run weighs on both alike; the ratio is then that of the phases' mean throughputs, each round's beside it")
	fs.Float64Var(&cfg.rate, "rate", 1000, "checks per second of the rate phase")
	fs.IntVar(&cfg.subjects, "subjects", 1000, "distinct subjects checked in rotation")
	fs.Float64Var(&cfg.listed, "listed", 0.1, "fraction of the subjects put on "+benchList)
	fs.StringVar(&cfg.action, "action", "government_procurement", "business action checked")
	fs.StringVar(&phases, "phases", strings.Join(benchPhaseNames, ","), "phases to run, comma separated, from "+strings.Join(benchPhaseNames, ",")+" (always run in that order)")
	fs.IntVar(&cfg.connections, "connections", 0, "connections (and workers) of each open loop phase; a slot none is free for within --conn-wait is not sent and counted apart (0: rate × 0.1 s, at least --concurrency, at most "+strconv.Itoa(benchMaxOpenConns)+"; the overload phase "+strconv.Itoa(benchMaxOpenConns)+", above what the server admits at once)")
	fs.DurationVar(&cfg.connWait, "conn-wait", benchConnWait, "an open loop's request that no connection could send within this of its time is not sent, and counted apart from those answered")
	var cpus string
	fs.StringVar(&cpus, "cpu", "", "pin the load generator to these CPUs, e.g. 0 or 0,2-3 (Linux; GOMAXPROCS follows); pin the server with taskset -c to others")
	fs.StringVar(&cfg.metricsURL, "metrics-url", "", "the server's Prometheus /metrics, read before and after each phase for the server's CPU, the requests that reached it and its memory (default: --url's /metrics; with serve --admin-addr, that address's /metrics)")
	fs.BoolVar(&cfg.json, "json", false, "also print the results as one line of JSON at the end (its JSON Schema: docs/perf/bench/report.schema.json)")
	cfg.registerPhaseFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	set, err := settings.Load()
	if err != nil {
		return err
	}
	cfg.url, cfg.dataDir = set.Client.URL, set.Store.DataDir
	if cfg.clientID == "" {
		cfg.clientID = set.Access.AdminClientID
	}
	cfg.clientSecret = set.Access.AdminClientSecret
	if err := cfg.validate(phases); err != nil {
		return err
	}
	if cpus != "" {
		if cfg.cpus, err = parseCPUList(cpus); err != nil {
			return fmt.Errorf("--cpu: %w", err)
		}
		// Before the phases start their goroutines' threads.
		if err := pinCPUs(cfg.cpus); err != nil {
			return fmt.Errorf("--cpu: %w", err)
		}
		runtime.GOMAXPROCS(len(cfg.cpus))
	}
	if cfg.clientID == "" || cfg.clientSecret == "" {
		if err := cfg.readCredentials(); err != nil {
			return err
		}
	}

	b, err := newBench(cfg)
	if err != nil {
		return err
	}
	defer b.client.CloseIdleConnections()
	defer b.closeConns()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	rep := benchReport{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), URL: cfg.url, Action: cfg.action,
		Subjects: cfg.subjects, Concurrency: cfg.concurrency, DurationS: cfg.duration.Seconds(), Rate: cfg.rate,
	}
	fmt.Fprintf(stdout, "credgate bench\n")
	fmt.Fprintf(stdout, "  go          %s %s/%s\n", rep.GoVersion, rep.OS, rep.Arch)
	shared := ""
	if benchLoopback(cfg.url) {
		shared = "; the server runs on this machine too and shares its CPUs with the load generator"
	}
	fmt.Fprintf(stdout, "  GOMAXPROCS  %d (NumCPU %d%s)\n", rep.GOMAXPROCS, rep.NumCPU, shared)
	if rep.CPUs = cfg.cpus; len(rep.CPUs) > 0 {
		fmt.Fprintf(stdout, "  pinned      load generator on CPU %s (--cpu); the server's pinning is its own (taskset -c), and a database or Redis on this machine runs wherever the kernel puts it\n", formatCPUList(rep.CPUs))
	}
	fmt.Fprintf(stdout, "  server      %s\n", cfg.url)
	rep.MetricsURL = cfg.metricsURL
	if _, err := b.scrape(ctx); err != nil {
		fmt.Fprintf(stdout, "  metrics     %s not read (%v): the phases go without the server's CPU, arrivals and memory\n", cfg.metricsURL, err)
	} else {
		fmt.Fprintf(stdout, "  metrics     %s, read before and after each phase\n", cfg.metricsURL)
	}
	fmt.Fprintf(stdout, "  action      %s\n", cfg.action)
	fmt.Fprintf(stdout, "  phases      %s, %s each after a warm-up of %s; concurrency %d; rate %g/s\n", strings.Join(cfg.phaseList(), ","), cfg.duration, cfg.warmup, cfg.concurrency, cfg.rate)

	if !cfg.writesTestData {
		if err := b.requireTestServer(ctx); err != nil {
			return err
		}
	}
	setupStart := time.Now()
	st, err := b.setup(ctx)
	// The bench's partner is revoked when the run ends, however it ends:
	// a credential nobody holds should not stay active.
	revoked := false
	revoke := func() {
		if st.partner == "" || revoked {
			return
		}
		revoked = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := b.admin.RevokePartner(rctx, st.partner); err != nil {
			fmt.Fprintf(stderr, "credgate bench: the bench's partner %s is still active (%v): revoke it with credgate partners revoke %s\n", st.partner, err, st.partner)
			return
		}
		fmt.Fprintf(stdout, "\npartner %s revoked\n", st.partner)
	}
	defer revoke()
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	rep.Listed = st.listed
	rep.Partner = st.partner
	fmt.Fprintf(stdout, "  subjects    %d, %d listed on %s (%d imported now, %d already listed)\n",
		cfg.subjects, st.listed, benchList, st.imported, st.listed-st.imported)
	fmt.Fprintf(stdout, "  partner     %s (setup took %s)\n", st.partner, time.Since(setupStart).Round(time.Millisecond))

	if cfg.warmup > 0 {
		rep.WarmupS = cfg.warmup.Seconds()
		rep.Warmup = b.warmupPhase(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintln(stdout)
		rep.Warmup.print(stdout)
	}

	results := map[string]*phaseResult{}
	var rounds []benchRound
	for _, name := range cfg.phaseList() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var r *phaseResult
		switch name {
		case "saturate":
			if cfg.rounds > 1 {
				// Both phases, in turn; the noop phase is done with them.
				if rounds, err = b.alternate(ctx, &rep, stdout); err != nil {
					return err
				}
				results["saturate"], results["noop"] = meanOfRounds(rounds)
				continue
			}
			r = b.closedLoop(ctx, "saturate", "/v1/checks", true, cfg.duration)
		case "noop":
			if cfg.rounds > 1 {
				continue
			}
			r = b.closedLoop(ctx, "noop", "/bench/noop", false, cfg.duration)
		case "rate":
			r = b.openLoop(ctx)
		case "receipts":
			var load *phaseResult
			r, load = b.receiptsPhase(ctx)
			if load != nil {
				rep.Phases = append(rep.Phases, load)
				fmt.Fprintln(stdout)
				load.print(stdout)
			}
		case "overload":
			r = b.overloadPhase(ctx, results["saturate"])
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		results[name] = r
		rep.Phases = append(rep.Phases, r)
		fmt.Fprintln(stdout)
		r.print(stdout)
	}

	revoke()
	fmt.Fprintln(stdout)
	sat, noop := results["saturate"], results["noop"]
	switch {
	case sat == nil || noop == nil:
		fmt.Fprintln(stdout, "checks/noop ratio: n/a (needs both the saturate and noop phases)")
	case noop.Skipped != "":
		fmt.Fprintln(stdout, "checks/noop ratio: n/a (noop phase skipped)")
	case noop.Throughput <= 0:
		fmt.Fprintln(stdout, "checks/noop ratio: n/a (no successful no-op requests)")
	case len(rounds) > 1:
		ratio := 100 * sat.Throughput / noop.Throughput
		rep.RatioPct = &ratio
		for _, r := range rounds {
			rep.RoundRatiosPct = append(rep.RoundRatiosPct, r.ratioPct())
		}
		sorted := slices.Sorted(slices.Values(rep.RoundRatiosPct))
		fmt.Fprintf(stdout, "checks/noop ratio: %.1f%% (%.0f / %.0f req/s, the means of %d rounds; per round %.1f–%.1f%%, median %.1f%%)\n",
			ratio, sat.Throughput, noop.Throughput, len(rounds), sorted[0], sorted[len(sorted)-1], median(sorted))
	default:
		ratio := 100 * sat.Throughput / noop.Throughput
		rep.RatioPct = &ratio
		fmt.Fprintf(stdout, "checks/noop ratio: %.1f%% (%.0f / %.0f req/s)\n", ratio, sat.Throughput, noop.Throughput)
	}
	if cfg.json {
		line, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", line)
	}
	return nil
}

func (c *benchConfig) validate(phases string) error {
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http://host:port", c.url)
	}
	c.url = strings.TrimRight(c.url, "/")
	if c.metricsURL == "" {
		c.metricsURL = c.url + "/metrics"
	} else if u, err := url.Parse(c.metricsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--metrics-url %q: want http://host:port/metrics", c.metricsURL)
	}
	switch {
	case c.duration <= 0:
		return errors.New("--duration must be positive")
	case c.warmup < 0 || c.warmup > benchMaxWarmup:
		return fmt.Errorf("--warmup must be in [0, %s]", benchMaxWarmup)
	case c.concurrency < 1 || c.concurrency > benchMaxWorkers:
		return fmt.Errorf("--concurrency must be 1..%d", benchMaxWorkers)
	case c.rounds < 1 || c.rounds > benchMaxRounds:
		return fmt.Errorf("--rounds must be 1..%d", benchMaxRounds)
	case !(c.rate > 0) || c.rate > 1e6:
		return errors.New("--rate must be in (0, 1000000]")
	case c.connections < 0 || c.connections > benchMaxWorkers:
		return fmt.Errorf("--connections must be 0..%d", benchMaxWorkers)
	case c.connWait <= 0 || c.connWait > benchMaxConnWait:
		return fmt.Errorf("--conn-wait must be in (0, %s]", benchMaxConnWait)
	case c.subjects < 1 || c.subjects > benchMaxSubjects:
		return fmt.Errorf("--subjects must be 1..%d", benchMaxSubjects)
	case !(c.listed >= 0 && c.listed <= 1):
		return errors.New("--listed must be a fraction in [0, 1]")
	case c.action == "":
		return errors.New("--action is required")
	}
	c.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(benchPhaseNames, p) {
			return fmt.Errorf("--phases: unknown phase %q (known: %s)", p, strings.Join(benchPhaseNames, ","))
		}
		c.phases[p] = true
	}
	if len(c.phases) == 0 {
		return errors.New("--phases: no phase selected")
	}
	if c.rounds > 1 && !(c.phases["saturate"] && c.phases["noop"]) {
		return errors.New("--rounds: needs both the saturate and noop phases")
	}
	return c.validatePhaseFlags()
}

// benchLoopback reports whether the server URL names this machine.
func benchLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *benchConfig) phaseList() []string {
	var out []string
	for _, p := range benchPhaseNames {
		if c.phases[p] {
			out = append(out, p)
		}
	}
	return out
}

// readCredentials fills in the administrator credential from --credentials
// or the file the server wrote to its data dir on first start, as the
// partners command does.
func (c *benchConfig) readCredentials() error {
	id, secret, err := adminCredential(c.clientID, c.clientSecret, c.credentials, c.dataDir)
	if err != nil {
		return err
	}
	c.clientID, c.clientSecret = id, secret
	return nil
}

type bench struct {
	cfg benchConfig
	// client is the tuned keep-alive HTTP client under both API clients,
	// the receipts phase and the server's /metrics.
	client *http.Client
	// target is where the checks and no-op phases' workers send their
	// pre-encoded bodies, each on a connection of its own (workerConn),
	// with the partner client's token; they only look for the outcome in
	// the answer: decoding every answer whole would load the generator,
	// which shares the CPUs with the server it measures.
	target benchTarget
	// idle holds the workers' connections between phases, so that a
	// phase reuses those of the phase before it, as a pool would, and the
	// generator holds no more than the largest phase's workers.
	idleMu sync.Mutex
	idle   []*workerConn

	subjects []string
	bodies   [][]byte
	listed   []bool

	// partner checks as the bench's partner: its token is cached and
	// replaced before it expires, so phases longer than a token lives keep
	// working.
	partner *client.Client
	// admin sets the run up and revokes its partner at the end.
	admin *client.Client
}

// requireTestServer refuses, before anything is written, a server that
// does not answer POST /bench/noop: one not started with serve
// --bench-noop, which no production server is (--writes-test-data lifts
// it).
func (b *bench) requireTestServer(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.url+"/bench/noop", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return unreachable(b.cfg.url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, benchMaxBody))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return fmt.Errorf("%s answers POST /bench/noop with HTTP %d: it was not started with serve --bench-noop, so it is not taken for a load-test server; "+
		"the bench would write into it a partner and %d companies listed on %s, with their evidence records and listed events, which stay. "+
		"Run the bench against a server started with --bench-noop, or give --writes-test-data to write into this one",
		b.cfg.url, resp.StatusCode, int(math.Round(b.cfg.listed*float64(b.cfg.subjects))), benchList)
}

// openConns is how many workers, and connections, an open loop at rate
// uses: --connections, or else enough that the schedule holds while
// requests take up to 100 ms, at least --concurrency and at most
// benchMaxOpenConns.
func (c *benchConfig) openConns(rate float64) int {
	if c.connections > 0 {
		return c.connections
	}
	n := int(math.Ceil(rate * 0.1))
	return min(max(n, c.concurrency, 4), max(benchMaxOpenConns, c.concurrency))
}

func newBench(cfg benchConfig) (*bench, error) {
	// The client carries setup, tokens, /metrics and the receipt callers
	// (the phases' workers have connections of their own, workerConn). It
	// is bounded by the largest phase's workers: a receipt caller never
	// waits inside it for a connection.
	conns := max(cfg.concurrency, cfg.openConns(cfg.rate), cfg.phaseConns())
	tr := &http.Transport{
		MaxConnsPerHost:       conns,
		Proxy:                 nil, // loopback: never through a proxy from the environment
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns + 16,
		MaxIdleConnsPerHost:   conns + 16,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	target, err := newBenchTarget(cfg.url)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	return &bench{cfg: cfg, client: &http.Client{Transport: tr}, target: target}, nil
}

// benchSubject returns subject i: a valid unified social credit code whose
// check character policy.ParseUSCC supplies. Its division code is Beijing's
// and its organisation code has letters, so it can never read as a resident
// ID; the same i always gives the same code.
func benchSubject(i int) (string, error) {
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	var serial [7]byte
	for k := len(serial) - 1; k >= 0; k-- {
		serial[k] = alphabet[i%len(alphabet)]
		i /= len(alphabet)
	}
	prefix := "91110108MB" + string(serial[:])
	for _, c := range alphabet {
		if id, err := policy.ParseUSCC(prefix + string(c)); err == nil {
			return id.Value, nil
		}
	}
	return "", fmt.Errorf("no check character completes %s", prefix)
}

type setupResult struct {
	partner  string
	listed   int
	imported int
}

func (b *bench) setup(ctx context.Context) (setupResult, error) {
	var res setupResult
	n := b.cfg.subjects
	nListed := int(math.Round(b.cfg.listed * float64(n)))
	b.subjects = make([]string, n)
	b.bodies = make([][]byte, n)
	b.listed = make([]bool, n)
	index := make(map[string]int, n)
	for i := range n {
		s, err := benchSubject(i)
		if err != nil {
			return res, err
		}
		b.subjects[i] = s
		index[s] = i
		// Spread the listed subjects evenly over the rotation.
		b.listed[i] = i*nListed/n != (i+1)*nListed/n
		body, err := json.Marshal(map[string]any{
			"subject": map[string]string{"id": s}, "action": b.cfg.action, "reference": "credgate-bench",
		})
		if err != nil {
			return res, err
		}
		b.bodies[i] = body
	}

	// Setup requests may be large (imports of 50 000 entries).
	admin, err := client.New(b.cfg.url, client.WithHTTPClient(b.client), client.WithTimeout(2*time.Minute),
		client.WithMaxResponse(64<<20), client.WithClientSecret(b.cfg.clientID, b.cfg.clientSecret))
	if err != nil {
		return res, err
	}
	if _, err := admin.Token(ctx); err != nil {
		return res, fmt.Errorf("administrator token: %w", err)
	}
	b.admin = admin

	// Earlier runs against the same store may have listed some subjects
	// already: those stay listed (expected non-clear) and are not imported
	// twice.
	already := map[int]bool{}
	after := ""
	for page := 0; ; page++ {
		if page >= 10_000 {
			return res, errors.New("listing entries: too many pages")
		}
		out, err := admin.ListEntries(ctx, client.EntryQuery{List: benchList, Limit: 1000, After: after})
		if err != nil {
			return res, fmt.Errorf("list entries: %w", err)
		}
		for _, e := range out.Entries {
			if i, ok := index[e.SubjectID]; ok && e.Status == "active" {
				already[i] = true
			}
		}
		if out.Next == "" || len(out.Entries) == 0 {
			break
		}
		after = out.Next
	}

	now := time.Now().UTC()
	var lines bytes.Buffer
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		out, err := admin.ImportEntries(ctx, "application/x-ndjson", lines.Bytes())
		if err != nil {
			return fmt.Errorf("import entries: %w", err)
		}
		res.imported += out.Imported
		lines.Reset()
		pending = 0
		return nil
	}
	for i := range n {
		if already[i] {
			b.listed[i] = true
			continue
		}
		if !b.listed[i] {
			continue
		}
		line, err := json.Marshal(map[string]any{
			"subject_id":             b.subjects[i],
			"list":                   benchList,
			"originating_department": "应急管理部",
			"reason":                 "credgate bench: 发生重大生产安全责任事故",
			"legal_basis":            "《安全生产法》",
			"evidence_refs":          []string{"credgate-bench"},
			"decided_at":             now.Add(-48 * time.Hour).Format(time.RFC3339),
			"published_at":           now.Add(-24 * time.Hour).Format(time.RFC3339),
		})
		if err != nil {
			return res, err
		}
		lines.Write(line)
		lines.WriteByte('\n')
		if pending++; pending == benchImportChunk {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	for _, l := range b.listed {
		if l {
			res.listed++
		}
	}

	// The bench partner gets a quota far above any rate the bench reaches,
	// so the server's default per-partner quota does not turn the run into
	// a measurement of 429s; the limiter still runs on every check.
	spec := client.PartnerSpec{Name: "credgate bench " + now.Format(time.RFC3339), Actions: []string{b.cfg.action},
		RateLimit: benchPartnerQuota}
	partner, err := admin.CreatePartner(ctx, spec)
	var refused *client.Error
	if errors.As(err, &refused) && refused.Status == http.StatusBadRequest && strings.Contains(refused.Error(), "rate_limit") {
		// A server without per-partner quotas refuses the unknown field.
		spec.RateLimit = ""
		partner, err = admin.CreatePartner(ctx, spec)
	}
	if err != nil {
		return res, fmt.Errorf("create partner: %w", err)
	}
	res.partner = partner.ClientID // revoked at the end, even if the setup fails below
	// Checks carry their own deadlines (the phase's), so the partner's
	// client sets none.
	b.partner, err = client.New(b.cfg.url, client.WithHTTPClient(b.client), client.WithTimeout(0),
		client.WithClientSecret(partner.ClientID, partner.ClientSecret))
	if err != nil {
		return res, err
	}
	if _, err := b.partner.Token(ctx); err != nil {
		return res, fmt.Errorf("partner token: %w", err)
	}
	return res, nil
}

// phaseResult is what one phase measured. Latencies are in milliseconds.
type phaseResult struct {
	Name string `json:"name"`
	// Round is the phase's round with --rounds (from 1; 0 without).
	Round      int              `json:"round,omitempty"`
	Path       string           `json:"path"`
	Mode       string           `json:"mode"`
	Workers    int              `json:"workers"`
	ElapsedS   float64          `json:"elapsed_s"`
	Requests   int64            `json:"requests"`
	Errors     int64            `json:"errors"`
	ErrorsBy   map[string]int64 `json:"errors_by,omitempty"`
	Throughput float64          `json:"throughput_rps"` // successful answers per second
	P50        float64          `json:"p50_ms"`
	P90        float64          `json:"p90_ms"`
	P99        float64          `json:"p99_ms"`
	Max        float64          `json:"max_ms"`
	Samples    int              `json:"latency_samples"`
	Outcomes   map[string]int64 `json:"outcomes,omitempty"`
	Scheduled  int64            `json:"scheduled,omitempty"`
	Late       int64            `json:"late,omitempty"`
	Unsent     int64            `json:"unsent,omitempty"`
	MaxLagMs   float64          `json:"max_lag_ms,omitempty"`
	// NoConnection: slots of an open loop not sent because no connection
	// was free within --conn-wait of their time.
	NoConnection int64  `json:"no_connection,omitempty"`
	ConnWait     string `json:"conn_wait,omitempty"`
	// GeneratorCPUus is the load generator's own CPU time (user + system)
	// per request sent during the phase, in microseconds.
	GeneratorCPUus float64 `json:"generator_cpu_us_per_request,omitempty"`
	// GeneratorCores: the same CPU time over the phase's elapsed time.
	GeneratorCores float64 `json:"generator_cores,omitempty"`
	// RateRPS and SentRPS: an open loop's schedule, and the requests it
	// sent, per second of --duration.
	RateRPS float64 `json:"rate_rps,omitempty"`
	SentRPS float64 `json:"sent_rps,omitempty"`
	// Server is the server's side of the phase from its /metrics
	// (bench_metrics.go); absent when /metrics could not be read.
	Server  *serverAccount `json:"server,omitempty"`
	Skipped string         `json:"skipped,omitempty"`
	// The overload phase: the capacity offered a multiple of, and the
	// server's resident memory before and after.
	Capacity    float64 `json:"capacity_rps,omitempty"`
	RSSBeforeMB float64 `json:"rss_before_mb,omitempty"`
	RSSAfterMB  float64 `json:"rss_after_mb,omitempty"`
	// RSSWarmMB: after the phase's connections were opened, before its
	// first request.
	RSSWarmMB float64 `json:"rss_warm_mb,omitempty"`
	// The overload phase's answers apart: on connections kept from the
	// request before, and on connections dialled for them (the server
	// closed the last with its refusal and held the new one while it
	// paused accepting: server.shed_accept_pause).
	AnsweredKept int64   `json:"answered_kept_connection,omitempty"`
	P99KeptMs    float64 `json:"p99_kept_connection_ms,omitempty"`
	AnsweredNew  int64   `json:"answered_new_connection,omitempty"`
	P99NewMs     float64 `json:"p99_new_connection_ms,omitempty"`
	// With --retry-after: callers refused 503 overloaded send their check
	// again after its Retry-After, up to RetryAfterMax times. Answers to
	// them are counted apart from the two above (AnsweredRetried, their
	// p99 from the caller's first send); RetriesSent are the sends again
	// (among Requests, not among Scheduled), GaveUp the callers refused
	// with no retry left, RetriesWaiting those whose wait outlasted the
	// schedule.
	RetryAfterMax   int     `json:"retry_after_max,omitempty"`
	AnsweredRetried int64   `json:"answered_after_retry,omitempty"`
	P99RetriedMs    float64 `json:"p99_after_retry_ms,omitempty"`
	RetriesSent     int64   `json:"retries_sent,omitempty"`
	GaveUp          int64   `json:"gave_up,omitempty"`
	RetriesWaiting  int64   `json:"retries_waiting_at_end,omitempty"`
	FirstError      string  `json:"first_error,omitempty"`

	ok int64 // answered 2xx (and verified)
	// serverStart and serverEnd: the /metrics readings Server comes from.
	serverStart, serverEnd *serverSample
}

func (r *phaseResult) print(w io.Writer) {
	round := ""
	if r.Round > 0 {
		round = fmt.Sprintf(" (round %d)", r.Round)
	}
	fmt.Fprintf(w, "phase %s%s: %s, POST %s, %d workers\n", r.Name, round, r.Mode, r.Path, r.Workers)
	if r.Skipped != "" {
		fmt.Fprintf(w, "  skipped     %s\n", r.Skipped)
		return
	}
	fmt.Fprintf(w, "  requests    %d in %.2fs\n", r.Requests, r.ElapsedS)
	fmt.Fprintf(w, "  errors      %d", r.Errors)
	if len(r.ErrorsBy) > 0 {
		keys := make([]string, 0, len(r.ErrorsBy))
		for k := range r.ErrorsBy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.ErrorsBy[k])
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  throughput  %.1f req/s\n", r.Throughput)
	fmt.Fprintf(w, "  latency     p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms", r.P50, r.P90, r.P99, r.Max)
	if strings.HasPrefix(r.Mode, "open loop") {
		fmt.Fprint(w, " (from intended send time)")
	}
	if int64(r.Samples) < r.Requests-r.ErrorsBy["transport"] {
		fmt.Fprintf(w, " (first %d samples)", r.Samples)
	}
	fmt.Fprintln(w)
	if r.Scheduled > 0 {
		fmt.Fprintf(w, "  schedule    %d scheduled, %d sent more than %s late (max lag %.2fms), %d not sent: no connection free within %s, %d not sent at the end\n",
			r.Scheduled, r.Late, benchLateThreshold, r.MaxLagMs, r.NoConnection, r.ConnWait, r.Unsent)
	}
	if r.GeneratorCPUus > 0 {
		fmt.Fprintf(w, "  generator   %.1f µs of CPU per request sent, %.2f cores\n", r.GeneratorCPUus, r.GeneratorCores)
	}
	if r.RateRPS > 0 {
		fmt.Fprintf(w, "  load        %.0f/s scheduled, %.0f/s sent", r.RateRPS, r.SentRPS)
		if r.Server != nil && r.Server.Arrived > 0 {
			fmt.Fprintf(w, ", %.0f/s arrived at the server", r.Server.ArrivedRPS)
		}
		fmt.Fprintln(w)
	}
	if r.Server != nil {
		r.Server.print(w)
	}
	if r.Capacity > 0 {
		fmt.Fprintf(w, "  capacity    %.0f checks/s taken as capacity; answered %.1f%% of it; server memory %.0f MB before, %.0f MB with the connections open, %.0f MB after\n",
			r.Capacity, 100*r.Throughput/r.Capacity, r.RSSBeforeMB, r.RSSWarmMB, r.RSSAfterMB)
		fmt.Fprintf(w, "  answered    %d on kept connections (p99 %.2fms), %d on connections dialled for them after a refusal closed the last (p99 %.2fms)\n",
			r.AnsweredKept, r.P99KeptMs, r.AnsweredNew, r.P99NewMs)
	}
	if r.RetryAfterMax > 0 {
		fmt.Fprintf(w, "  retries     refused callers send again after Retry-After, up to %d times: %d sent again, %d answered so (p99 %.2fms from their first send), %d gave up, %d still waiting at the end\n",
			r.RetryAfterMax, r.RetriesSent, r.AnsweredRetried, r.P99RetriedMs, r.GaveUp, r.RetriesWaiting)
	}
	if len(r.Outcomes) > 0 {
		keys := make([]string, 0, len(r.Outcomes))
		for k := range r.Outcomes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.Outcomes[k])
		}
		fmt.Fprintf(w, "  outcomes    %s\n", strings.Join(parts, ", "))
	}
}

// worker is one sender's tallies; merged when its phase ends. It sends
// through one request it keeps (sendReq), so that a request costs the
// load generator the HTTP client's own work and nothing more: the bodies
// are encoded at setup, the Authorization value is rebuilt only when the
// token changes, and answers are read into a buffer the worker keeps.
type worker struct {
	b        *bench
	verify   bool
	buf      bytes.Buffer
	lat      []int64       // nanoseconds
	budget   *atomic.Int64 // latency samples the phase may still keep
	requests int64
	ok       int64
	errs     map[string]int64
	firstErr string
	outcomes map[string]int64
	late     int64
	maxLag   time.Duration
	okOnly   bool // keep the latency of 2xx answers only
	// latKept and latNew: with okOnly, the answers' latencies apart by
	// whether their request went on a kept connection or one dialled for
	// it (after the server closed the last: load shedding below HTTP);
	// latRetried those of callers answered on a retry (benchRetries),
	// from their first send.
	latKept, latNew, latRetried []int64
	// retries (nil: none) takes the refused callers that send again;
	// retriesSent counts this worker's sends of them, gaveUp the callers
	// it saw refused with no retry left.
	retries     *benchRetries
	retriesSent int64
	gaveUp      int64
	// noConn: the open loop's slots this worker found due longer than
	// --conn-wait ago, so no connection was free for them in time.
	noConn int64

	conn     *workerConn // the checks' connection, lent for the phase (nil: none)
	token    string      // the token auth was built from
	auth     string
	httpErrs map[int]string // "HTTP 503" keys, built once per status
}

func (b *bench) newWorker(verify bool, budget *atomic.Int64) *worker {
	return &worker{b: b, verify: verify, budget: budget, lat: make([]int64, 0, 4096),
		errs: map[string]int64{}, outcomes: map[string]int64{}, httpErrs: map[int]string{}}
}

// newWorkers returns a phase's n workers, sharing one sample budget.
func (b *bench) newWorkers(n int, verify bool) []*worker {
	budget := newBudget()
	ws := make([]*worker, n)
	for k := range ws {
		ws[k] = b.newWorker(verify, budget)
	}
	return ws
}

// lendConns gives each worker a connection, an idle one where there is
// one. The bench's own requests (setup, tokens, /metrics) go through
// b.client instead; its idle connections are closed here, so that a phase
// holds its workers' connections and at most one more of the bench's.
func (b *bench) lendConns(ws []*worker) {
	b.client.CloseIdleConnections()
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	for _, w := range ws {
		if n := len(b.idle); n > 0 {
			w.conn, b.idle = b.idle[n-1], b.idle[:n-1]
		} else {
			w.conn = &workerConn{}
		}
	}
}

// returnConns takes the workers' connections back at the end of their
// phase, open, for the next one.
func (b *bench) returnConns(ws []*worker) {
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	for _, w := range ws {
		w.conn.unwatchNow()
		b.idle = append(b.idle, w.conn)
		w.conn = nil
	}
}

// closeConns closes the idle connections, at the end of the run.
func (b *bench) closeConns() {
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	for _, c := range b.idle {
		c.close()
	}
	b.idle = nil
}

// newBudget returns a phase's latency sample budget.
func newBudget() *atomic.Int64 {
	var b atomic.Int64
	b.Store(benchMaxSamples)
	return &b
}

func (w *worker) fail(kind, detail string) {
	w.errs[kind]++
	if w.firstErr == "" {
		w.firstErr = detail
	}
}

var outcomeKey = []byte(`"outcome":"`)

// overloadedCode marks a refusal for capacity (problem code overloaded),
// which a caller honouring Retry-After sends again (--retry-after).
var overloadedCode = []byte(`"code":"overloaded"`)

// errBenchToken: the partner's token could not be had.
var errBenchToken = errors.New("token")

// exchange sends body to path with the partner's current token on the
// worker's connection, and reads the answer into w.buf.
func (w *worker) exchange(ctx context.Context, path string, body []byte) (int, error) {
	tok, err := w.b.partner.Token(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errBenchToken, err)
	}
	if tok != w.token {
		w.token, w.auth = tok, "Bearer "+tok
	}
	return w.conn.exchange(ctx, &w.b.target, path, w.auth, body, &w.buf, benchMaxBody)
}

// do sends subject i's body to path; latency counts from start.
func (w *worker) do(ctx context.Context, path string, i int, start time.Time) {
	w.send(ctx, path, i, start, 0)
}

// send is do for a caller that has sent its check sent times before
// (benchRetries; 0: a first send).
func (w *worker) send(ctx context.Context, path string, i int, start time.Time, sent int) {
	w.requests++
	if sent > 0 {
		w.retriesSent++
	}
	status, err := w.exchange(ctx, path, w.b.bodies[i])
	lat := time.Since(start)
	if err != nil {
		kind := "transport"
		if errors.Is(err, errBenchToken) {
			kind = "token"
		}
		w.fail(kind, err.Error())
		return
	}
	ok := status >= 200 && status <= 299
	if (ok || !w.okOnly) && w.budget.Add(-1) >= 0 {
		w.lat = append(w.lat, int64(lat))
		if ok && w.okOnly {
			if sent > 0 {
				w.latRetried = append(w.latRetried, int64(lat))
			} else if w.conn.dialled {
				w.latNew = append(w.latNew, int64(lat))
			} else {
				w.latKept = append(w.latKept, int64(lat))
			}
		}
	}
	if !ok {
		if w.retries != nil && status == http.StatusServiceUnavailable && bytes.Contains(w.buf.Bytes(), overloadedCode) &&
			!w.retries.refused(benchRetry{first: start, i: i, sends: sent + 1}, client.OverloadWait(w.conn.retryAfter)) {
			w.gaveUp++
		}
		key, seen := w.httpErrs[status]
		if !seen {
			key = "HTTP " + strconv.Itoa(status)
			w.httpErrs[status] = key
		}
		w.errs[key]++
		if w.firstErr == "" {
			body := w.buf.String()
			if len(body) > 200 {
				body = body[:200] + "…"
			}
			w.firstErr = fmt.Sprintf("HTTP %d: %s", status, body)
		}
		return
	}
	if w.verify {
		data := w.buf.Bytes()
		k := bytes.Index(data, outcomeKey)
		end := -1
		if k >= 0 {
			k += len(outcomeKey)
			end = bytes.IndexByte(data[k:], '"')
		}
		if end < 0 {
			w.fail("no outcome", "answer without an outcome: "+w.buf.String())
			return
		}
		outcome := data[k : k+end]
		// Indexing the map with string(outcome) does not allocate.
		w.outcomes[string(outcome)]++
		if listed := w.b.listed[i]; listed == (string(outcome) == "clear") {
			want := "clear"
			if listed {
				want = "not clear"
			}
			w.fail("wrong outcome", fmt.Sprintf("subject %s: outcome %q, want %s", w.b.subjects[i], outcome, want))
			return
		}
	}
	w.ok++
}

// warm opens the workers' connections with one request each, so that
// phases measure steady state rather than connection set-up. It returns
// the first answer's status, or an error.
func (b *bench) warm(ctx context.Context, path string, workers []*worker) (int, error) {
	var wg sync.WaitGroup
	statuses := make([]int, len(workers))
	errs := make([]error, len(workers))
	for k, w := range workers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			statuses[k], errs[k] = w.exchange(ctx, path, b.bodies[k%len(b.bodies)])
		})
	}
	wg.Wait()
	for k := range workers {
		if errs[k] != nil {
			return 0, errs[k]
		}
		if statuses[k] < 200 || statuses[k] > 299 {
			return statuses[k], nil
		}
	}
	return statuses[0], nil
}

// warmupPhase sends checks for --warmup as the first phase will: a closed
// loop of its workers before saturate or noop (checks either way: warming
// the store is the point), else an open loop at --rate. Its own workers and
// tallies keep its requests out of every phase's figures.
func (b *bench) warmupPhase(ctx context.Context) *phaseResult {
	if first := b.cfg.phaseList()[0]; first == "saturate" || first == "noop" {
		return b.closedLoop(ctx, "warmup", "/v1/checks", true, b.cfg.warmup)
	}
	return b.openLoopAt(ctx, b.openSpec("warmup", b.cfg.rate, b.cfg.warmup))
}

// closedLoop runs --concurrency workers back to back for d.
func (b *bench) closedLoop(ctx context.Context, name, path string, verify bool, d time.Duration) *phaseResult {
	n := b.cfg.concurrency
	r := &phaseResult{Name: name, Path: path, Mode: "closed loop", Workers: n}
	workers := b.newWorkers(n, verify)
	b.lendConns(workers)
	defer b.returnConns(workers)
	status, err := b.warm(ctx, path, workers)
	switch {
	case err != nil:
		r.Skipped = "warm-up failed: " + err.Error()
		return r
	case status == http.StatusNotFound && name == "noop":
		r.Skipped = "the server answered 404: start it with serve --bench-noop to measure the no-op ceiling"
		return r
	case status < 200 || status > 299:
		r.Skipped = fmt.Sprintf("warm-up answered HTTP %d", status)
		return r
	}

	before, cpu0 := b.sample(ctx), benchCPUTime()
	start := time.Now()
	deadline := start.Add(d)
	pctx, cancel := context.WithDeadline(ctx, deadline.Add(benchGrace))
	defer cancel()
	b.rotate(pctx, workers, deadline, func(w *worker, i int) {
		w.do(pctx, path, i, time.Now())
	})
	r.merge(workers, time.Since(start))
	b.finish(ctx, r, path, cpu0, before)
	return r
}

// rotate runs the workers until deadline (or ctx's end), each calling
// step over and over with the subjects in rotation from its own offset,
// and returns when all have stopped.
func (b *bench) rotate(ctx context.Context, workers []*worker, deadline time.Time, step func(w *worker, i int)) {
	n := len(workers)
	var wg sync.WaitGroup
	for k, w := range workers {
		wg.Go(func() {
			i := k * len(b.bodies) / n
			for time.Now().Before(deadline) && ctx.Err() == nil {
				step(w, i)
				if i++; i == len(b.bodies) {
					i = 0
				}
			}
		})
	}
	wg.Wait()
}

// openLoop sends --rate checks per second for --duration, each at its
// intended time i/rate after the start; latency counts from that time.
func (b *bench) openLoop(ctx context.Context) *phaseResult {
	return b.openLoopAt(ctx, b.openSpec("rate", b.cfg.rate, b.cfg.duration))
}

// openLoopSpec is an open loop's schedule: rate checks/s for d on conns
// connections. okOnly keeps the latency of answered checks only (the
// overload phase, where refusals are many); with retries (the overload
// phase with --retry-after), a refused caller honouring Retry-After
// sends its check again (benchRetries).
type openLoopSpec struct {
	name    string
	rate    float64
	d       time.Duration
	conns   int
	okOnly  bool
	retries *benchRetries
}

// openSpec is a plain open loop's spec: rate checks/s for d on the
// connections openConns gives that rate.
func (b *bench) openSpec(name string, rate float64, d time.Duration) openLoopSpec {
	return openLoopSpec{name: name, rate: rate, d: d, conns: b.cfg.openConns(rate)}
}

// openLoopAt runs the open loop s.
//
// Its connections are bounded: s.conns workers, each with at most one
// request in flight on a connection of its own, so the generator never
// queues requests for a connection. A free worker takes the next slot and sends it at its
// time. A slot found due more than --conn-wait ago had no connection
// free in time (every worker was waiting for an answer, or the generator
// was not given the CPU): it is not sent, counted as "no connection", and
// never as answered; the others' latency counts from their intended time,
// so the wait is charged to the server (no coordinated omission).
//
// Refused callers still waiting to retry when the schedule ends are
// counted in the result.
func (b *bench) openLoopAt(ctx context.Context, s openLoopSpec) *phaseResult {
	const path = "/v1/checks"
	rate, d, retries := s.rate, s.d, s.retries
	r := &phaseResult{Name: s.name, Path: path, Mode: "open loop", Workers: s.conns}
	workers := b.newWorkers(s.conns, true)
	b.lendConns(workers)
	defer b.returnConns(workers)
	if status, err := b.warm(ctx, path, workers); err != nil {
		r.Skipped = "warm-up failed: " + err.Error()
		return r
	} else if (status < 200 || status > 299) && !(s.okOnly && status == http.StatusServiceUnavailable) {
		// The overload phase opens more connections than the server
		// admits at once: its warm-up meets the load shedding, which is
		// what it measures, and the connections are open all the same.
		r.Skipped = fmt.Sprintf("warm-up answered HTTP %d", status)
		return r
	}
	interval := float64(time.Second) / rate
	total := int64(math.Floor(d.Seconds() * rate))
	r.Scheduled, r.ConnWait = total, b.cfg.connWait.String()
	r.Mode = fmt.Sprintf("open loop at %.0f/s", rate)
	r.RateRPS = rate

	before, cpu0 := b.sample(ctx), benchCPUTime()
	start := time.Now()
	deadline := start.Add(d)
	pctx, cancel := context.WithDeadline(ctx, deadline.Add(benchGrace))
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		w.okOnly, w.retries = s.okOnly, retries
		wg.Go(func() {
			t := time.NewTimer(time.Hour)
			t.Stop()
			for pctx.Err() == nil {
				if retries != nil {
					if rt, ok := retries.due(time.Now()); ok {
						w.send(pctx, path, rt.i, rt.first, rt.sends)
						continue
					}
				}
				slot := next.Add(1) - 1
				if slot >= total {
					return
				}
				intended := start.Add(time.Duration(float64(slot) * interval))
				if d := time.Until(intended); d > 0 {
					t.Reset(d)
					select {
					case <-t.C:
					case <-pctx.Done():
						t.Stop()
						return
					}
				}
				now := time.Now()
				lag := now.Sub(intended)
				if lag > b.cfg.connWait {
					w.noConn++
					continue
				}
				if lag > benchLateThreshold {
					w.late++
					w.maxLag = max(w.maxLag, lag)
				}
				w.do(pctx, path, int(slot%int64(len(b.bodies))), intended)
			}
		})
	}
	wg.Wait()
	r.merge(workers, time.Since(start))
	var sent int64
	for _, w := range workers {
		sent += w.requests
		r.Late += w.late
		r.NoConnection += w.noConn
		r.MaxLagMs = max(r.MaxLagMs, float64(w.maxLag)/1e6)
	}
	r.Unsent = max(total-(sent-r.RetriesSent)-r.NoConnection, 0)
	if retries != nil {
		r.RetryAfterMax, r.RetriesWaiting = retries.max, int64(retries.waiting())
	}
	r.SentRPS = float64(sent) / d.Seconds()
	b.finish(ctx, r, path, cpu0, before)
	return r
}

func (r *phaseResult) merge(workers []*worker, elapsed time.Duration) {
	r.ElapsedS = elapsed.Seconds()
	r.ErrorsBy = map[string]int64{}
	r.Outcomes = map[string]int64{}
	var lat, kept, fresh, retried []int64
	var ok int64
	for _, w := range workers {
		kept, fresh, retried = append(kept, w.latKept...), append(fresh, w.latNew...), append(retried, w.latRetried...)
		r.RetriesSent += w.retriesSent
		r.GaveUp += w.gaveUp
		r.Requests += w.requests
		ok += w.ok
		for k, v := range w.errs {
			r.ErrorsBy[k] += v
			r.Errors += v
		}
		for k, v := range w.outcomes {
			r.Outcomes[k] += v
		}
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
		lat = append(lat, w.lat...)
	}
	if len(r.ErrorsBy) == 0 {
		r.ErrorsBy = nil
	}
	if len(r.Outcomes) == 0 {
		r.Outcomes = nil
	}
	r.ok = ok
	if elapsed > 0 {
		r.Throughput = float64(ok) / elapsed.Seconds()
	}
	r.Samples = len(lat)
	if len(kept)+len(fresh)+len(retried) > 0 {
		slices.Sort(kept)
		slices.Sort(fresh)
		slices.Sort(retried)
		r.AnsweredKept, r.AnsweredNew, r.AnsweredRetried = int64(len(kept)), int64(len(fresh)), int64(len(retried))
		r.P99KeptMs, r.P99NewMs, r.P99RetriedMs = quantileMs(kept, 0.99), quantileMs(fresh, 0.99), quantileMs(retried, 0.99)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	r.P50, r.P90, r.P99 = quantileMs(lat, 0.50), quantileMs(lat, 0.90), quantileMs(lat, 0.99)
	r.Max = float64(lat[len(lat)-1]) / 1e6
}

// quantileMs is the q quantile of sorted latencies (nanoseconds) in
// milliseconds: the smallest sample with at least q of them at or below
// it; 0 for none.
func quantileMs(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return float64(sorted[min(max(k, 0), len(sorted)-1)]) / 1e6
}

// benchReport is the --json output, documented field by field in
// docs/perf/bench/report.schema.json (bench_schema_test.go keeps the two
// alike).
type benchReport struct {
	GoVersion   string  `json:"go_version"`
	OS          string  `json:"os"`
	Arch        string  `json:"arch"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	NumCPU      int     `json:"num_cpu"`
	CPUs        []int   `json:"cpus,omitempty"` // --cpu
	URL         string  `json:"url"`
	MetricsURL  string  `json:"metrics_url"`
	Action      string  `json:"action"`
	Subjects    int     `json:"subjects"`
	Listed      int     `json:"listed"`
	Partner     string  `json:"partner"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	Rate        float64 `json:"rate"`
	// Warmup: the --warmup run before the phases, counted in none of them.
	WarmupS  float64        `json:"warmup_s"`
	Warmup   *phaseResult   `json:"warmup,omitempty"`
	Phases   []*phaseResult `json:"phases"`
	RatioPct *float64       `json:"checks_noop_ratio_pct,omitempty"`
	// RoundRatiosPct: with --rounds, each round's ratio, in order.
	RoundRatiosPct []float64 `json:"round_ratios_pct,omitempty"`
}

// benchRound is one round of --rounds: a saturate phase and the noop
// phase after it.
type benchRound struct{ sat, noop *phaseResult }

func (r benchRound) ratioPct() float64 {
	if r.noop.Throughput <= 0 {
		return 0
	}
	return 100 * r.sat.Throughput / r.noop.Throughput
}

// alternate runs --rounds rounds of the saturate and noop phases, adding
// each phase to rep and printing it. It stops at a phase that was skipped
// (the server has no no-op endpoint, or refused the warm-up), which then
// ends the rounds.
func (b *bench) alternate(ctx context.Context, rep *benchReport, stdout io.Writer) ([]benchRound, error) {
	// phase runs one phase of a round; nil if ctx ended meanwhile.
	phase := func(round int, name, path string) *phaseResult {
		r := b.closedLoop(ctx, name, path, name == "saturate", b.cfg.duration)
		if ctx.Err() != nil {
			return nil
		}
		r.Round = round
		rep.Phases = append(rep.Phases, r)
		fmt.Fprintln(stdout)
		r.print(stdout)
		return r
	}
	var rounds []benchRound
	for i := 1; i <= b.cfg.rounds; i++ {
		rd := benchRound{sat: phase(i, "saturate", "/v1/checks")}
		if rd.sat != nil && rd.sat.Skipped == "" {
			rd.noop = phase(i, "noop", "/bench/noop")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rounds = append(rounds, rd)
		if rd.sat.Skipped != "" || rd.noop.Skipped != "" {
			break // a skipped phase ends the rounds
		}
	}
	return rounds, nil
}

// meanOfRounds is what the later phases and the ratio take of the rounds:
// each phase's throughput as the mean over the rounds, or the first phase
// skipped, as it was.
func meanOfRounds(rounds []benchRound) (sat, noop *phaseResult) {
	sat = &phaseResult{Name: "saturate", Path: "/v1/checks"}
	noop = &phaseResult{Name: "noop", Path: "/bench/noop"}
	for _, rd := range rounds {
		for _, p := range []struct{ mean, r *phaseResult }{{sat, rd.sat}, {noop, rd.noop}} {
			switch {
			case p.r == nil:
				p.mean.Skipped = "not run: a phase before it was skipped"
			case p.r.Skipped != "":
				p.mean.Skipped = p.r.Skipped
			}
			if p.r != nil {
				p.mean.Throughput += p.r.Throughput / float64(len(rounds))
			}
		}
	}
	return sat, noop
}

// median of sorted values (not empty).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
