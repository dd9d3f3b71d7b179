package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The bench accounts for the server's side of each phase from the
// server's own /metrics, read just before a phase's first request and
// just after its last answer: the CPU the server got (the process
// collector's process_cpu_seconds_total), the requests that reached it on
// the phase's route and how they were answered (the request duration
// histogram's counts), how long the server itself took over the answered
// ones (its buckets), the checks load shedding refused
// (credgate_checks_shed_total), and how long checks waited for their
// evidence to be durable and how the appender batched it (the evidence
// histograms of serve_evidence_metrics.go). On a machine the generator
// shares with the server, what the generator scheduled is not what
// arrived; these figures say what the server was asked and what it did
// with the CPU it had.

// ErrMetricsPage: a /metrics page that is not in the Prometheus text
// format, lacks the process collector's figures, or has figures that are
// no counts.
var ErrMetricsPage = errors.New("not a usable Prometheus /metrics page")

const (
	benchMaxMetricsPage = 8 << 20
	metricCPU           = "process_cpu_seconds_total"
	metricRSS           = "process_resident_memory_bytes"
	metricShed          = "credgate_checks_shed_total"
	// metricRequests is a histogram: each series carries its _count as
	// the Histogram's SampleCount.
	metricRequests = "credgate_http_request_duration_seconds"
	// metricAppend is each record's time in the appender (a check's wait
	// for its evidence), metricCommit each batch's commit: histograms of
	// one series.
	metricAppend = "credgate_evidence_append_seconds"
	metricCommit = "credgate_evidence_commit_seconds"
)

// decodeMetrics reads a page in the Prometheus text exposition format
// into its metric families, by name.
func decodeMetrics(page io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(page)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMetricsPage, err)
	}
	return fams, nil
}

// scalar is the value of a counter, gauge or untyped series (a page
// without TYPE lines has only untyped ones).
func scalar(m *dto.Metric) (float64, bool) {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// lastScalar is the value of the family's last series that has one: the
// figures read with it have a single series, and of several the page's
// last line wins.
func lastScalar(f *dto.MetricFamily) (v float64, ok bool) {
	for _, m := range f.GetMetric() {
		if x, isScalar := scalar(m); isScalar {
			v, ok = x, true
		}
	}
	return v, ok
}

// histogramCount is a histogram series' _count: the text parser keeps
// it as a float when the page's counts are not all integers.
func histogramCount(h *dto.Histogram) float64 {
	if h.SampleCountFloat != nil {
		return h.GetSampleCountFloat()
	}
	return float64(h.GetSampleCount())
}

// bucketCount is a histogram bucket's cumulative count, kept as a float
// as the series' _count may be.
func bucketCount(b *dto.Bucket) float64 {
	if b.CumulativeCountFloat != nil {
		return b.GetCumulativeCountFloat()
	}
	return float64(b.GetCumulativeCount())
}

// sane: v can be a count (of seconds, bytes or requests), exact in a
// float64. NaN fails both comparisons.
func sane(v float64) bool { return v >= 0 && v <= 1<<53 }

// labels is a series' label set as a map.
func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// serverSample is what the bench reads from the server's /metrics at one
// moment.
type serverSample struct {
	at   time.Time
	cpuS float64 // process_cpu_seconds_total
	rssB float64 // process_resident_memory_bytes
	shed float64 // credgate_checks_shed_total
	// requests counts the POST requests the server finished, by route and
	// status (the request duration histogram's count).
	requests map[[2]string]float64
	// answeredLE is, by route, the request duration histogram of the POST
	// requests answered 2xx, its statuses summed: upper bound in seconds
	// (+Inf the last) to the cumulative count.
	answeredLE map[string]map[float64]float64
	// appendLE and commitLE are the evidence histograms, in the same form
	// (nil on a page without them: a server without evidence metrics).
	appendLE, commitLE map[float64]float64
}

// newServerSample picks the bench's figures from a decoded page; the
// process collector's CPU and memory must be there.
func newServerSample(at time.Time, fams map[string]*dto.MetricFamily) (*serverSample, error) {
	s := &serverSample{at: at, requests: map[[2]string]float64{}, answeredLE: map[string]map[float64]float64{}}
	var cpu, rss bool
	s.cpuS, cpu = lastScalar(fams[metricCPU])
	s.rssB, rss = lastScalar(fams[metricRSS])
	s.shed, _ = lastScalar(fams[metricShed])
	for _, m := range fams[metricRequests].GetMetric() {
		if m.Histogram == nil {
			continue
		}
		l := labels(m)
		if l["method"] != http.MethodPost {
			continue
		}
		s.requests[[2]string{l["route"], l["status"]}] += histogramCount(m.Histogram)
		if st := l["status"]; len(st) == 3 && st[0] == '2' {
			le := s.answeredLE[l["route"]]
			if le == nil {
				le = map[float64]float64{}
				s.answeredLE[l["route"]] = le
			}
			addBuckets(le, m.Histogram)
		}
	}
	s.appendLE, s.commitLE = familyLE(fams[metricAppend]), familyLE(fams[metricCommit])
	if !cpu || !rss {
		return nil, fmt.Errorf("%w: no %s or %s (the process collector)", ErrMetricsPage, metricCPU, metricRSS)
	}
	// The text format allows NaN, ±Inf and any magnitude; a figure that
	// is no count of seconds, bytes or requests would leave the phase's
	// account without meaning, or its JSON unwritable.
	ok := sane(s.cpuS) && sane(s.rssB) && sane(s.shed)
	for _, v := range s.requests {
		ok = ok && sane(v)
	}
	for _, le := range append(slices.Collect(maps.Values(s.answeredLE)), s.appendLE, s.commitLE) {
		for bound, v := range le {
			ok = ok && sane(v) && !math.IsNaN(bound)
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: a figure the bench reads is not a number in [0, 2^53]", ErrMetricsPage)
	}
	return s, nil
}

// addBuckets adds histogram h's cumulative counts to le, by upper bound.
func addBuckets(le map[float64]float64, h *dto.Histogram) {
	// The text format writes the +Inf bucket too; the series' _count is
	// that bucket whether written or not.
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			le[b.GetUpperBound()] += bucketCount(b)
		}
	}
	le[math.Inf(1)] += histogramCount(h)
}

// familyLE is the family's histogram series summed, by upper bound; nil
// when it has none.
func familyLE(f *dto.MetricFamily) map[float64]float64 {
	var le map[float64]float64
	for _, m := range f.GetMetric() {
		if m.Histogram == nil {
			continue
		}
		if le == nil {
			le = map[float64]float64{}
		}
		addBuckets(le, m.Histogram)
	}
	return le
}

// routeCounts is how many POST requests on route the server had finished:
// all of them, and those answered 2xx.
func (s *serverSample) routeCounts(route string) (all, ok float64) {
	for k, v := range s.requests {
		if k[0] != route {
			continue
		}
		all += v
		if len(k[1]) == 3 && k[1][0] == '2' {
			ok += v
		}
	}
	return all, ok
}

// scrape reads the server's /metrics (--metrics-url).
func (b *bench) scrape(ctx context.Context) (*serverSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, benchMaxMetricsPage))
	at := time.Now()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrMetricsPage, resp.StatusCode)
	}
	fams, err := decodeMetrics(bytes.NewReader(page))
	if err != nil {
		return nil, err
	}
	return newServerSample(at, fams)
}

// sample is scrape for the phases: nil when /metrics cannot be read, and
// the phase goes without the server's figures.
func (b *bench) sample(ctx context.Context) *serverSample {
	s, err := b.scrape(ctx)
	if err != nil {
		return nil
	}
	return s
}

// rssMB is the server's resident memory in MB (0: no reading).
func (s *serverSample) rssMB() float64 {
	if s == nil {
		return 0
	}
	return s.rssB / 1e6
}

// finish adds the generator's and the server's side to r, measured on
// route since the generator had used cpu0 of CPU and the server's
// /metrics read before.
func (b *bench) finish(ctx context.Context, r *phaseResult, route string, cpu0 time.Duration, before *serverSample) {
	if cpu := benchCPUTime() - cpu0; cpu > 0 && r.ElapsedS > 0 {
		r.GeneratorCores = cpu.Seconds() / r.ElapsedS
		if r.Requests > 0 {
			r.GeneratorCPUus = float64(cpu.Microseconds()) / float64(r.Requests)
		}
	}
	r.serverStart, r.serverEnd = before, b.sample(ctx)
	r.Server = account(before, r.serverEnd, route, r.ok, r.Capacity)
}

// serverAccount is the server's side of one phase, from its /metrics
// before the phase's first request and after its last answer.
type serverAccount struct {
	WallS float64 `json:"wall_s"` // between the two readings
	CPUS  float64 `json:"cpu_s"`  // the server process's CPU time (user + system) in it
	Cores float64 `json:"cores"`  // CPUS / WallS
	// CPUusPerAnswered: the server's CPU per request answered 2xx (as the
	// bench counted them), refusals' cost included.
	CPUusPerAnswered float64 `json:"cpu_us_per_answered,omitempty"`
	// Arrived: the requests on the phase's route the server finished,
	// whatever their status; Answered those answered 2xx; Refused the
	// checks load shedding refused (503 overloaded), on any route.
	Arrived  int64 `json:"arrived,omitempty"`
	Answered int64 `json:"answered,omitempty"`
	Refused  int64 `json:"refused,omitempty"`
	// ArrivedRPS is Arrived per second of WallS; ArrivedX the same as a
	// multiple of the phase's capacity (the overload phase).
	ArrivedRPS float64 `json:"arrived_rps,omitempty"`
	ArrivedX   float64 `json:"arrived_x_capacity,omitempty"`
	// P99LeMs and MaxLeMs: the server's own view of the phase's 2xx
	// answers (gateway's request duration: from the request's headers
	// read to its handler's return, without the network, the accept
	// queue or the generator), as the upper bound in
	// milliseconds of the duration histogram's bucket that holds the 99th
	// percentile and the slowest answer; omitted past the last finite
	// bucket. Set beside the generator's p99, they say whether a tail is
	// spent in the server or outside it.
	P99LeMs float64 `json:"p99_le_ms,omitempty"`
	MaxLeMs float64 `json:"max_le_ms,omitempty"`
	// Evidence is the part of the server's time that checks spent waiting
	// for their evidence to be durable, from the appender's histograms
	// (any route's records: a phase has one); nil when the server has
	// none or appended nothing in the phase.
	Evidence *evidenceAccount `json:"evidence,omitempty"`
}

// evidenceAccount is how a phase's evidence was committed: set beside
// the server's p99, the share of a tail that the commit makes.
type evidenceAccount struct {
	// Records appended and the Commits (batches) that held them.
	Records int64 `json:"records"`
	Commits int64 `json:"commits"`
	// RecordsPerCommit: Records / Commits, the group commit's batching.
	RecordsPerCommit float64 `json:"records_per_commit,omitempty"`
	// WaitP99LeMs and WaitMaxLeMs bound a record's time in the appender
	// (queued behind the commit in flight, then its own batch's commit);
	// CommitP99LeMs a batch's commit. As P99LeMs: bucket bounds, 0 past
	// the last finite one.
	WaitP99LeMs   float64 `json:"wait_p99_le_ms,omitempty"`
	WaitMaxLeMs   float64 `json:"wait_max_le_ms,omitempty"`
	CommitP99LeMs float64 `json:"commit_p99_le_ms,omitempty"`
}

// evidenceBetween is the evidence account between two readings.
func evidenceBetween(before, after *serverSample) *evidenceAccount {
	inf := math.Inf(1)
	records := after.appendLE[inf] - before.appendLE[inf]
	if records <= 0 {
		return nil
	}
	e := &evidenceAccount{Records: int64(records), Commits: int64(max(after.commitLE[inf]-before.commitLE[inf], 0))}
	if e.Commits > 0 {
		e.RecordsPerCommit = records / float64(e.Commits)
	}
	e.WaitP99LeMs, e.WaitMaxLeMs = quantileBounds(before.appendLE, after.appendLE)
	e.CommitP99LeMs, _ = quantileBounds(before.commitLE, after.commitLE)
	return e
}

// account is the server's side of a phase on route between before and
// after, answered being the bench's count of 2xx answers and capacity
// the phase's (0: none). Nil without both readings.
func account(before, after *serverSample, route string, answered int64, capacity float64) *serverAccount {
	if before == nil || after == nil {
		return nil
	}
	a := &serverAccount{WallS: after.at.Sub(before.at).Seconds(), CPUS: max(after.cpuS-before.cpuS, 0)}
	if a.WallS <= 0 {
		return nil
	}
	a.Cores = a.CPUS / a.WallS
	if answered > 0 {
		a.CPUusPerAnswered = a.CPUS * 1e6 / float64(answered)
	}
	all1, ok1 := after.routeCounts(route)
	all0, ok0 := before.routeCounts(route)
	a.Arrived, a.Answered = int64(max(all1-all0, 0)), int64(max(ok1-ok0, 0))
	a.Refused = int64(max(after.shed-before.shed, 0))
	a.ArrivedRPS = float64(a.Arrived) / a.WallS
	if capacity > 0 {
		a.ArrivedX = a.ArrivedRPS / capacity
	}
	a.P99LeMs, a.MaxLeMs = quantileBounds(before.answeredLE[route], after.answeredLE[route])
	a.Evidence = evidenceBetween(before, after)
	return a
}

// quantileBounds reads the histogram between two cumulative readings: the
// upper bounds, in milliseconds, of the buckets that hold the 99th
// percentile and the last observation (0 when there is none, or when it
// lies past the last finite bound).
func quantileBounds(before, after map[float64]float64) (p99, slowest float64) {
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if total <= 0 {
		return 0, 0
	}
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	found := false
	for _, b := range bounds {
		n := after[b] - before[b]
		if !found && n >= 0.99*total {
			p99, found = b, true
		}
		if n >= total {
			slowest = b
			break
		}
	}
	ms := func(b float64) float64 {
		if v := b * 1e3; v > 0 && !math.IsInf(v, 1) {
			return v
		}
		return 0
	}
	return ms(p99), ms(slowest)
}

// printBounds writes "; what p99 ≤ P ms, slowest ≤ M ms" for bucket
// bounds that are known (not 0).
func printBounds(w io.Writer, what, slowest string, p99, most float64) {
	if p99 <= 0 {
		return
	}
	fmt.Fprintf(w, "; %s p99 ≤ %g ms", what, p99)
	if most > 0 {
		fmt.Fprintf(w, ", %s ≤ %g ms", slowest, most)
	}
}

func (a *serverAccount) print(w io.Writer) {
	fmt.Fprintf(w, "  server      %.2f cores (%.2fs of CPU in %.2fs)", a.Cores, a.CPUS, a.WallS)
	if a.CPUusPerAnswered > 0 {
		fmt.Fprintf(w, ", %.1f µs of CPU per request answered", a.CPUusPerAnswered)
	}
	printBounds(w, "in the server", "slowest", a.P99LeMs, a.MaxLeMs)
	fmt.Fprintln(w)
	if e := a.Evidence; e != nil {
		fmt.Fprintf(w, "  evidence    %d records in %d commits (%.2f each)", e.Records, e.Commits, e.RecordsPerCommit)
		printBounds(w, "a check's wait for it", "longest", e.WaitP99LeMs, e.WaitMaxLeMs)
		printBounds(w, "a commit", "", e.CommitP99LeMs, 0)
		fmt.Fprintln(w)
	}
	if a.Arrived > 0 {
		fmt.Fprintf(w, "  arrived     %d at the server (%.0f/s", a.Arrived, a.ArrivedRPS)
		if a.ArrivedX > 0 {
			fmt.Fprintf(w, ", %.2f× capacity", a.ArrivedX)
		}
		fmt.Fprintf(w, "): %d answered 2xx, %d refused by load shedding\n", a.Answered, a.Refused)
	}
}
