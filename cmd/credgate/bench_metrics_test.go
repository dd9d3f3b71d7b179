package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/credgate/credgate/gateway"
)

// registryPage is the /metrics page promhttp writes for a registry with
// the figures the bench reads, under the names the server registers them
// (gateway/server.go, gateway/shed.go and the process collector), beside
// the Go collector's and a counter of another name with the same labels.
func registryPage(t testing.TB) []byte {
	t.Helper()
	reg := prometheus.NewRegistry()
	cpu := prometheus.NewCounter(prometheus.CounterOpts{Name: "process_cpu_seconds_total", Help: "CPU."})
	rss := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_resident_memory_bytes", Help: "RSS."})
	shed := prometheus.NewCounter(prometheus.CounterOpts{Name: "credgate_checks_shed_total", Help: "Shed."})
	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "credgate_http_request_duration_seconds", Help: "Requests.", Buckets: []float64{.001, .01},
	}, []string{"route", "method", "status"})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credgate_other_total", Help: "Not requests."},
		[]string{"route", "method", "status"})
	evidence := newCommitMetrics() // serve's own evidence histograms
	reg.MustRegister(collectors.NewGoCollector(), cpu, rss, shed, requests, other)
	reg.MustRegister(evidence.collectors()...)
	// 100 records in 40 commits: 90 records within 0.5 ms, 9 within 2,
	// the last within 25; the commits within 0.25 ms but one within 10.
	for i := range 100 {
		total := 400 * time.Microsecond
		switch {
		case i == 99:
			total = 20 * time.Millisecond
		case i >= 90:
			total = 2 * time.Millisecond
		}
		evidence.Waited(total/2, total)
	}
	for i := range 40 {
		took := 200 * time.Microsecond
		if i == 0 {
			took = 9 * time.Millisecond
		}
		evidence.Committed(2, 0, took, nil)
	}
	cpu.Add(12.5)
	rss.Set(4.2e7)
	shed.Add(300)
	for _, o := range []struct {
		route, method, status string
		n                     int
	}{
		{"/v1/checks", "POST", "200", 1000},
		{"/v1/checks", "POST", "503", 300},
		{"/v1/checks", "GET", "200", 7}, // not a check
		{"/v1/checks", "POST", "201", 5},
		{"/bench/noop", "POST", "400", 2},
	} {
		for i := range o.n {
			requests.WithLabelValues(o.route, o.method, o.status).Observe(float64(i%3) / 100)
		}
	}
	other.WithLabelValues("/v1/checks", "POST", "200").Add(1e6)

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("promhttp: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// samplePage decodes page and picks the bench's figures from it.
func samplePage(page []byte) (*serverSample, error) {
	fams, err := decodeMetrics(bytes.NewReader(page))
	if err != nil {
		return nil, err
	}
	return newServerSample(time.Now(), fams)
}

func TestServerSample(t *testing.T) {
	page := registryPage(t)
	s, err := samplePage(page)
	if err != nil {
		t.Fatalf("%v\n%s", err, page)
	}
	if s.cpuS != 12.5 || s.rssMB() != 42 || s.shed != 300 {
		t.Errorf("cpu %g s, rss %g MB, shed %g", s.cpuS, s.rssMB(), s.shed)
	}
	// POST only: the GET series is not a check; the histogram's count,
	// not its buckets, and no other family's series.
	if all, ok := s.routeCounts("/v1/checks"); all != 1305 || ok != 1005 {
		t.Errorf("/v1/checks: %g finished, %g 2xx; want 1305, 1005", all, ok)
	}
	// The 2xx answers' durations, 200 and 201 summed: a third of each
	// status at 0, 10 and 20 ms, in buckets of 1 and 10 ms.
	if le, want := s.answeredLE["/v1/checks"], map[float64]float64{.001: 336, .01: 671, math.Inf(1): 1005}; !reflect.DeepEqual(le, want) {
		t.Errorf("/v1/checks answered by bucket %v, want %v", le, want)
	}
	if all, ok := s.routeCounts("/bench/noop"); all != 2 || ok != 0 {
		t.Errorf("/bench/noop: %g, %g; want 2, 0", all, ok)
	}
	// The evidence histograms under serve's names and buckets.
	if le := s.appendLE; le[.0005] != 90 || le[.002] != 99 || le[.015] != 99 || le[.025] != 100 || le[math.Inf(1)] != 100 {
		t.Errorf("evidence append by bucket %v", le)
	}
	if le := s.commitLE; le[.00025] != 39 || le[.0075] != 39 || le[.01] != 40 || le[math.Inf(1)] != 40 {
		t.Errorf("evidence commits by bucket %v", le)
	}
	// Read from nothing, they give an account of their own.
	e := evidenceBetween(&serverSample{}, s)
	if want := (&evidenceAccount{Records: 100, Commits: 40, RecordsPerCommit: 2.5, WaitP99LeMs: 2, WaitMaxLeMs: 25, CommitP99LeMs: 10}); !reflect.DeepEqual(e, want) {
		t.Errorf("evidence\n got %+v\nwant %+v", e, want)
	}
	if all, ok := s.routeCounts("/v1/other"); all != 0 || ok != 0 {
		t.Errorf("/v1/other: %g, %g; want none", all, ok)
	}
	var none *serverSample
	if none.rssMB() != 0 {
		t.Error("rssMB of no reading")
	}
}

// Pages written by hand: what the text format allows beyond what promhttp
// writes, and what the bench cannot use.
func TestServerSamplePages(t *testing.T) {
	const process = "process_cpu_seconds_total 3\nprocess_resident_memory_bytes 1e6\n"
	const histogram = "# TYPE credgate_http_request_duration_seconds histogram\n"
	for _, tc := range []struct {
		name, page string
		all, ok    float64 // on /v1/checks
		cpu        float64
	}{
		// No TYPE lines: untyped series, as a page elsewhere may have.
		{name: "untyped", page: process + "credgate_checks_shed_total 4\n", cpu: 3},
		{name: "blanks, timestamps, escapes", cpu: 1.5, all: 5, ok: 5, page: histogram +
			"credgate_http_request_duration_seconds_count{ status = \"201\" , route=\"/v1/checks\", method=\"POST\", } 5 1733360000000\n" +
			"credgate_http_request_duration_seconds_count{method=\"POST\",route=\"a \\\"q\\\" \\\\ b\\nc\",status=\"200\"} 9\n" +
			"# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n\nprocess_cpu_seconds_total 1.5 1733360000000\n" +
			"process_resident_memory_bytes 1e6\n"},
		// A count that is not an integer is kept as a float.
		{name: "float counts", cpu: 3, all: 3.5, ok: 2.5, page: process + histogram +
			"credgate_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/checks\",status=\"200\",le=\"+Inf\"} 2.5\n" +
			"credgate_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/checks\",status=\"200\"} 2.5\n" +
			"credgate_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/checks\",status=\"500\"} 1\n"},
	} {
		s, err := samplePage([]byte(tc.page))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if all, ok := s.routeCounts("/v1/checks"); s.cpuS != tc.cpu || s.rssB != 1e6 || all != tc.all || ok != tc.ok {
			t.Errorf("%s: cpu %g, rss %g, /v1/checks %g, %g 2xx; want %g, 1e6, %g, %g", tc.name, s.cpuS, s.rssB, all, ok, tc.cpu, tc.all, tc.ok)
		}
		if tc.name == "blanks, timestamps, escapes" {
			if all, _ := s.routeCounts("a \"q\" \\ b\nc"); all != 9 {
				t.Errorf("escaped route: %g, want 9 (%v)", all, s.requests)
			}
		}
	}

	for _, bad := range []string{
		"up one",                    // value not a number
		"up{job=\"a\" 1",            // label set not closed
		"up{job=\"a 1",              // label value not closed
		"up{job=\"a\",job=\"b\"} 1", // label twice
		"<html><body>Not found</body></html>\n",
		"process_cpu_seconds_total 1\n",     // no memory
		"process_resident_memory_bytes 1\n", // no CPU
		"process_cpu_seconds_total NaN\nprocess_resident_memory_bytes 1\n",
		"process_cpu_seconds_total -1\nprocess_resident_memory_bytes 1\n",
		"process_cpu_seconds_total 1\nprocess_resident_memory_bytes 1e300\n",
		process + "credgate_checks_shed_total +Inf\n",
		process + histogram + "credgate_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/checks\",status=\"200\"} +Inf\n",
		process + histogram + "credgate_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/checks\",status=\"200\"} -1\n",
	} {
		if s, err := samplePage([]byte(bad)); !errors.Is(err, ErrMetricsPage) {
			t.Errorf("%q: sample %+v, err %v; want ErrMetricsPage", bad, s, err)
		}
	}
}

// The server's own /metrics has the figures the bench reads under the
// names and types it reads them, and counts the requests it finished: a
// metric renamed in the gateway fails here.
func TestServerSampleOfGateway(t *testing.T) {
	ts := benchServer(t, "admin", "admin-secret-for-bench-tests-0123456789", gateway.WithNoopEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := &bench{cfg: benchConfig{metricsURL: ts.URL + "/metrics"}, client: ts.Client()}
	post := func(body string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/bench/noop", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	post("{}") // the histogram's series exist from the first request on

	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	fams, err := decodeMetrics(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]dto.MetricType{metricCPU: dto.MetricType_COUNTER, metricRSS: dto.MetricType_GAUGE,
		metricShed: dto.MetricType_COUNTER, metricRequests: dto.MetricType_HISTOGRAM} {
		if f := fams[name]; f.GetType() != typ || len(f.GetMetric()) == 0 {
			t.Errorf("%s: %v, want a %v", name, f, typ)
		}
	}

	before, err := b.scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		post(`{"a":1}`)
	}
	post("not JSON") // 400: arrived, not answered
	// The histogram is observed once the answer is written: read until
	// the last request is in, then the counts must be exact.
	var after *serverSample
	for deadline := time.Now().Add(10 * time.Second); ; {
		if after, err = b.scrape(ctx); err != nil {
			t.Fatal(err)
		}
		if all, _ := after.routeCounts("/bench/noop"); all >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if all, ok := after.routeCounts("/bench/noop"); all != 5 || ok != 4 {
		t.Errorf("/bench/noop: %g finished, %g 2xx; want 5, 4 (%v)", all, ok, after.requests)
	}
	a := account(before, after, "/bench/noop", 3, 0)
	if a == nil || a.Arrived != 4 || a.Answered != 3 || a.Refused != 0 || a.CPUS < 0 || after.cpuS <= 0 || after.rssB <= 0 {
		t.Errorf("account %+v; cpu %g s, rss %g B", a, after.cpuS, after.rssB)
	}
	// The gateway's buckets give the server's own p99 and slowest answer
	// (the 2xx ones in between): a histogram whose buckets or labels the
	// bench no longer reads fails here.
	if a != nil && (a.P99LeMs <= 0 || a.MaxLeMs < a.P99LeMs) {
		t.Errorf("the server's own p99 %g ms, slowest %g ms: not read from its buckets", a.P99LeMs, a.MaxLeMs)
	}
}

func TestServerAccount(t *testing.T) {
	t0 := time.Now()
	before := &serverSample{at: t0, cpuS: 10, shed: 100, requests: map[[2]string]float64{
		{"/v1/checks", "200"}: 1000, {"/v1/checks", "503"}: 100, {"/bench/noop", "200"}: 5}}
	after := &serverSample{at: t0.Add(10 * time.Second), cpuS: 28, shed: 40_100, requests: map[[2]string]float64{
		{"/v1/checks", "200"}: 91_000, {"/v1/checks", "503"}: 40_100, {"/v1/checks", "500"}: 10, {"/bench/noop", "200"}: 9}}
	// Of the phase's 90 000 answers, 80 000 within 2.5 ms, 89 200 (99.1 %)
	// within 5, 89 990 within 10 and the last within 25.
	inf := math.Inf(1)
	before.answeredLE = map[string]map[float64]float64{"/v1/checks": {.0025: 900, .005: 990, .01: 1000, .025: 1000, inf: 1000}}
	after.answeredLE = map[string]map[float64]float64{"/v1/checks": {.0025: 80_900, .005: 90_190, .01: 90_990, .025: 91_000, inf: 91_000}}
	// Their 90 000 records in 30 000 commits: 99 % waited within 4 ms for
	// their evidence, all within 15; 99 % of the commits within 1.5 ms.
	before.appendLE = map[float64]float64{.002: 800, .004: 1000, .015: 1000, inf: 1000}
	after.appendLE = map[float64]float64{.002: 80_800, .004: 90_100, .015: 91_000, inf: 91_000}
	before.commitLE = map[float64]float64{.0015: 500, inf: 500}
	after.commitLE = map[float64]float64{.0015: 30_200, inf: 30_500}
	a := account(before, after, "/v1/checks", 90_000, 10_000)
	want := &serverAccount{WallS: 10, CPUS: 18, Cores: 1.8, CPUusPerAnswered: 200,
		Arrived: 130_010, Answered: 90_000, Refused: 40_000, ArrivedRPS: 13_001, ArrivedX: 1.3001, P99LeMs: 5, MaxLeMs: 25,
		Evidence: &evidenceAccount{Records: 90_000, Commits: 30_000, RecordsPerCommit: 3, WaitP99LeMs: 4, WaitMaxLeMs: 15, CommitP99LeMs: 1.5}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("account\n got %+v\nwant %+v", a, want)
	}
	var out bytes.Buffer
	a.print(&out)
	for _, s := range []string{"1.80 cores", "200.0 µs of CPU per request answered", "in the server p99 ≤ 5 ms, slowest ≤ 25 ms", "130010 at the server (13001/s, 1.30× capacity)", "90000 answered 2xx, 40000 refused",
		"90000 records in 30000 commits (3.00 each); a check's wait for it p99 ≤ 4 ms, longest ≤ 15 ms; a commit p99 ≤ 1.5 ms"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	// A route the server did not see: no arrivals, CPU all the same.
	if a := account(before, after, "/v1/other", 0, 0); a.Arrived != 0 || a.CPUusPerAnswered != 0 || a.Cores != 1.8 || a.ArrivedX != 0 {
		t.Errorf("other route: %+v", a)
	}
	// A missing reading, or none in between, gives no account.
	if account(nil, after, "/v1/checks", 1, 0) != nil || account(before, nil, "/v1/checks", 1, 0) != nil || account(after, after, "/v1/checks", 1, 0) != nil {
		t.Error("account without two readings apart in time")
	}
	// The JSON leaves out what is not known.
	j, err := json.Marshal(account(before, after, "/v1/other", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(j), "arrived") || strings.Contains(string(j), "per_answered") || strings.Contains(string(j), `"p99_le_ms"`) || strings.Contains(string(j), `"max_le_ms"`) || !strings.Contains(string(j), `"evidence":{"records":90000,`) {
		t.Errorf("JSON %s", j)
	}
}

// quantileBounds between two readings: the buckets of the 99th percentile
// and of the slowest answer; nothing for a bucket past the last finite
// bound, or for no answers in between.
func TestQuantileBounds(t *testing.T) {
	inf := math.Inf(1)
	before := map[float64]float64{0: 5, .001: 10, .01: 20, inf: 20}
	for _, tc := range []struct {
		name         string
		after        map[float64]float64
		p99, slowest float64
	}{
		{"none in between", before, 0, 0},
		{"all within 1 ms", map[float64]float64{0: 5, .001: 1010, .01: 1020, inf: 1020}, 1, 1},
		{"the slowest past the last bucket", map[float64]float64{0: 5, .001: 900, .01: 1010, inf: 1020}, 10, 0},
		{"the 99th past the last bucket", map[float64]float64{0: 5, .001: 510, .01: 1000, inf: 1020}, 0, 0},
		{"all at the zero bound", map[float64]float64{0: 1005, .001: 1010, .01: 1020, inf: 1020}, 0, 0},
	} {
		if p99, slowest := quantileBounds(before, tc.after); p99 != tc.p99 || slowest != tc.slowest {
			t.Errorf("%s: p99 %g ms, slowest %g ms; want %g, %g", tc.name, p99, slowest, tc.p99, tc.slowest)
		}
	}
	if p99, slowest := quantileBounds(nil, map[float64]float64{.0025: 99, .005: 100, inf: 100}); p99 != 2.5 || slowest != 5 {
		t.Errorf("from no reading: %g, %g; want 2.5, 5", p99, slowest)
	}
}

// FuzzServerSample: whatever page the text parser accepts, picking the
// bench's figures from it never panics and either refuses the page as
// ErrMetricsPage or gives figures whose account against a reading of
// nothing can be written.
func FuzzServerSample(f *testing.F) {
	f.Add(registryPage(f))
	f.Add([]byte("process_cpu_seconds_total 1\nprocess_resident_memory_bytes 2\n"))
	f.Fuzz(func(t *testing.T, page []byte) {
		fams, err := decodeMetrics(bytes.NewReader(page))
		if err != nil {
			if !errors.Is(err, ErrMetricsPage) {
				t.Fatalf("error %v is not ErrMetricsPage", err)
			}
			return
		}
		t0 := time.Now()
		s, err := newServerSample(t0.Add(time.Second), fams)
		if err != nil {
			if !errors.Is(err, ErrMetricsPage) {
				t.Fatalf("error %v is not ErrMetricsPage", err)
			}
			return
		}
		for _, v := range append([]float64{s.cpuS, s.rssB, s.shed}, mapValues(s.requests)...) {
			if !(v >= 0 && v <= 1<<53) {
				t.Fatalf("figure %g in %+v", v, s)
			}
		}
		zero := &serverSample{at: t0, requests: map[[2]string]float64{}}
		for k := range s.requests {
			a := account(zero, s, k[0], 1, 1)
			if a == nil || a.WallS != 1 || a.Answered < 0 || a.Arrived < a.Answered {
				t.Fatalf("account of %q: %+v", k[0], a)
			}
			if a.MaxLeMs != 0 && a.P99LeMs > a.MaxLeMs {
				t.Fatalf("account of %q: p99 past the slowest: %+v", k[0], a)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Fatalf("account of %q: %+v: %v", k[0], a, err)
			}
		}
		if e := evidenceBetween(zero, s); e != nil {
			if e.Records <= 0 || e.Commits < 0 || (e.WaitMaxLeMs != 0 && e.WaitP99LeMs > e.WaitMaxLeMs) || math.IsInf(e.RecordsPerCommit, 0) {
				t.Fatalf("evidence %+v", e)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("evidence %+v: %v", e, err)
			}
		}
	})
}

func mapValues(m map[[2]string]float64) []float64 {
	out := make([]float64, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// --metrics-url is where the bench reads the server's figures: a page
// elsewhere whose CPU counter grows by 0.25 s a reading gives every phase
// exactly that; a page that cannot be read gives none, and says so.
func TestBenchMetricsURL(t *testing.T) {
	const id, secret = "admin", "admin-secret-for-bench-tests-0123456789"
	ts := benchServer(t, id, secret)
	var reads atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := reads.Add(1)
		fmt.Fprintf(w, "process_cpu_seconds_total %g\nprocess_resident_memory_bytes 1e6\n", 0.25*float64(n))
	}))
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(metricsURL string) (string, benchReport) {
		t.Helper()
		args := []string{"--url", ts.URL, "--credentials", benchCredentials(t, id, secret), "--writes-test-data", "--metrics-url", metricsURL,
			"--phases", "saturate,overload", "--concurrency", "2", "--duration", "200ms", "--warmup", "0",
			"--subjects", "5", "--connections", "8", "--json"}
		text, rep := runBench(ctx, t, args...)
		return text, *rep
	}

	text, rep := run(fake.URL + "/metrics")
	if rep.MetricsURL != fake.URL+"/metrics" || len(rep.Phases) != 2 {
		t.Fatalf("metrics_url %q, %d phases", rep.MetricsURL, len(rep.Phases))
	}
	for _, p := range rep.Phases {
		if p.Server == nil || p.Server.CPUS != 0.25 || p.Server.Arrived != 0 {
			t.Errorf("phase %s: server %+v, want 0.25 s of CPU and no arrivals (the fake page has none)", p.Name, p.Server)
		}
	}
	if !strings.Contains(text, "  server      ") || !strings.Contains(text, "read before and after each phase") {
		t.Errorf("output:\n%s", text)
	}

	text, rep = run(ts.URL + "/nothing")
	for _, p := range rep.Phases {
		if p.Server != nil || p.RSSAfterMB != 0 {
			t.Errorf("phase %s: server %+v, rss %g from a page that does not exist", p.Name, p.Server, p.RSSAfterMB)
		}
	}
	if !strings.Contains(text, "/nothing not read (") {
		t.Errorf("output does not say /metrics was not read:\n%s", text)
	}
}
