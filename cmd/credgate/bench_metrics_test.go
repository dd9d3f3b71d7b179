package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A page as promhttp writes it, cut down, with what the text format
// allows beyond it: a timestamp, blanks around tokens, escapes, a
// trailing comma.
const fakeMetricsPage = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 4.2e+07
go_gc_duration_seconds{quantile="0.5"} 2.1e-05

credgate_checks_shed_total 300
credgate_http_request_duration_seconds_bucket{method="POST",route="/v1/checks",status="200",le="+Inf"} 1000
credgate_http_request_duration_seconds_count{method="POST",route="/v1/checks",status="200"} 1000
credgate_http_request_duration_seconds_count{method="POST",route="/v1/checks",status="503"} 300
credgate_http_request_duration_seconds_count{method="GET",route="/v1/checks",status="200"} 7
credgate_http_request_duration_seconds_count{ status = "201" , route="/v1/checks", method="POST", } 5 1733360000000
odd_label{v="a \"quoted\" \\ back\nslash"}	NaN
`

func TestParseMetrics(t *testing.T) {
	samples, err := parseMetrics([]byte(fakeMetricsPage))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 10 {
		t.Fatalf("%d samples, want 10: %v", len(samples), samples)
	}
	last := samples[9]
	if last.Name != "odd_label" || last.Labels["v"] != "a \"quoted\" \\ back\nslash" || !math.IsNaN(last.Value) {
		t.Errorf("escapes: %+v", last)
	}
	if s := samples[8]; !reflect.DeepEqual(s.Labels, map[string]string{"status": "201", "route": "/v1/checks", "method": "POST"}) || s.Value != 5 {
		t.Errorf("blanks, trailing comma and timestamp: %+v", s)
	}
	if s := samples[0]; s.Name != metricCPU || s.Labels != nil || s.Value != 12.5 {
		t.Errorf("first sample: %+v", s)
	}

	for _, bad := range []string{
		"{x=\"1\"} 1",                    // no name
		"9lives 1",                       // name starts with a digit
		"up",                             // no value
		"up 1 2 3",                       // more than a timestamp
		"up one",                         // value not a number
		"up 1 later",                     // timestamp not an integer
		"up{job=\"a\"}1",                 // no blank before the value
		"up{job=\"a\" 1",                 // label set not closed
		"up{job=\"a 1",                   // label value not closed
		"up{job=a} 1",                    // label value not quoted
		"up{job} 1",                      // no '='
		"up{1job=\"a\"} 1",               // bad label name
		"up{job=\"a\",job=\"b\"} 1",      // label twice
		"up{job=\"\\t\"} 1",              // unknown escape
		"up{job=\"a\\",                   // escape at the end
		"up{job=\"a\";x=\"b\"} 1",        // bad separator
		"ok 1\nup{job:x=\"a\"} 1\nok 2 ", // colon in a label name, on line 2
	} {
		if _, err := parseMetrics([]byte(bad)); !errors.Is(err, ErrMetricsPage) {
			t.Errorf("%q: err %v, want ErrMetricsPage", bad, err)
		}
	}
	if _, err := parseMetrics([]byte("ok 1\nup{job:x=\"a\"} 1\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v does not name line 2", err)
	}
}

func TestServerSample(t *testing.T) {
	samples, err := parseMetrics([]byte(fakeMetricsPage))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerSample(time.Now(), samples)
	if err != nil {
		t.Fatal(err)
	}
	if s.cpuS != 12.5 || s.rssMB() != 42 || s.shed != 300 {
		t.Errorf("cpu %g s, rss %g MB, shed %g", s.cpuS, s.rssMB(), s.shed)
	}
	// POST only: the GET series is not a check.
	if all, ok := s.routeCounts("/v1/checks"); all != 1305 || ok != 1005 {
		t.Errorf("/v1/checks: %g finished, %g 2xx; want 1305, 1005", all, ok)
	}
	if all, ok := s.routeCounts("/bench/noop"); all != 0 || ok != 0 {
		t.Errorf("/bench/noop: %g, %g; want none", all, ok)
	}
	// Without the process collector there is no sample.
	if _, err := newServerSample(time.Now(), samples[2:]); !errors.Is(err, ErrMetricsPage) {
		t.Errorf("no process_cpu_seconds_total: err %v", err)
	}
	var none *serverSample
	if none.rssMB() != 0 {
		t.Error("rssMB of no reading")
	}
}

func TestServerAccount(t *testing.T) {
	t0 := time.Now()
	before := &serverSample{at: t0, cpuS: 10, shed: 100, requests: map[[2]string]float64{
		{"/v1/checks", "200"}: 1000, {"/v1/checks", "503"}: 100, {"/bench/noop", "200"}: 5}}
	after := &serverSample{at: t0.Add(10 * time.Second), cpuS: 28, shed: 40_100, requests: map[[2]string]float64{
		{"/v1/checks", "200"}: 91_000, {"/v1/checks", "503"}: 40_100, {"/v1/checks", "500"}: 10, {"/bench/noop", "200"}: 9}}
	a := account(before, after, "/v1/checks", 90_000, 10_000)
	want := &serverAccount{WallS: 10, CPUS: 18, Cores: 1.8, CPUusPerAnswered: 200,
		Arrived: 130_010, Answered: 90_000, Refused: 40_000, ArrivedRPS: 13_001, ArrivedX: 1.3001}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("account\n got %+v\nwant %+v", a, want)
	}
	var out bytes.Buffer
	a.print(&out)
	for _, s := range []string{"1.80 cores", "200.0 µs of CPU per request answered", "130010 at the server (13001/s, 1.30× capacity)", "90000 answered 2xx, 40000 refused"} {
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
	if strings.Contains(string(j), "arrived") || strings.Contains(string(j), "per_answered") {
		t.Errorf("JSON %s", j)
	}
}

// formatSample writes s back in the text format, labels sorted.
func formatSample(s metricSample) string {
	var b strings.Builder
	b.WriteString(s.Name)
	if len(s.Labels) > 0 {
		names := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			names = append(names, k)
		}
		slices.Sort(names)
		b.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s.Labels[k])
			fmt.Fprintf(&b, "%s=\"%s\"", k, v)
		}
		b.WriteByte('}')
	}
	b.WriteString(" " + strconv.FormatFloat(s.Value, 'g', -1, 64))
	return b.String()
}

// FuzzParseMetrics: no page makes the parser panic, and what it reads
// reads the same once written back.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(fakeMetricsPage))
	f.Add([]byte("up{a=\"\\\\\\\"\\n\"} -Inf 0\n"))
	f.Fuzz(func(t *testing.T, page []byte) {
		samples, err := parseMetrics(page)
		if err != nil {
			if !errors.Is(err, ErrMetricsPage) {
				t.Fatalf("error %v is not ErrMetricsPage", err)
			}
			return
		}
		lines := make([]string, len(samples))
		for i, s := range samples {
			lines[i] = formatSample(s)
		}
		again, err := parseMetrics([]byte(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatalf("written back: %v\n%s", err, strings.Join(lines, "\n"))
		}
		if len(again) != len(samples) {
			t.Fatalf("%d samples, %d written back", len(samples), len(again))
		}
		for i := range samples {
			a, b := samples[i], again[i]
			if a.Name != b.Name || !reflect.DeepEqual(a.Labels, b.Labels) || math.Float64bits(a.Value) != math.Float64bits(b.Value) {
				t.Fatalf("sample %d: %+v, written back %+v", i, a, b)
			}
		}
	})
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
		args := []string{"--url", ts.URL, "--client-id", id, "--client-secret", secret, "--metrics-url", metricsURL,
			"--phases", "saturate,overload", "--concurrency", "2", "--duration", "200ms", "--warmup", "0",
			"--subjects", "5", "--connections", "8", "--json"}
		var out, errOut bytes.Buffer
		if err := benchCmd(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var rep benchReport
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
			t.Fatalf("last line is not the JSON report: %v", err)
		}
		return out.String(), rep
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
