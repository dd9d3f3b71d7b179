package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The bench accounts for the server's side of each phase from the
// server's own /metrics, read just before a phase's first request and
// just after its last answer: the CPU the server got (the process
// collector's process_cpu_seconds_total), the requests that reached it on
// the phase's route and how they were answered (the request duration
// histogram's counts), and the checks load shedding refused
// (credgate_checks_shed_total). On a machine the generator shares with
// the server, what the generator scheduled is not what arrived; these
// figures say what the server was asked and what it did with the CPU it
// had.

// ErrMetricsPage: a /metrics page that is not in the Prometheus text
// format, or lacks the process collector's figures.
var ErrMetricsPage = errors.New("not a usable Prometheus /metrics page")

const (
	benchMaxMetricsPage = 8 << 20
	metricCPU           = "process_cpu_seconds_total"
	metricRSS           = "process_resident_memory_bytes"
	metricShed          = "credgate_checks_shed_total"
	metricRequests      = "credgate_http_request_duration_seconds_count"
)

// metricSample is one sample line of a Prometheus text page.
type metricSample struct {
	Name   string
	Labels map[string]string // nil when the line has none
	Value  float64
}

// parseMetrics reads the sample lines of a Prometheus text exposition
// page (version 0.0.4): comments and blank lines are skipped, a sample's
// timestamp is checked and dropped. Any other line is an error.
func parseMetrics(page []byte) ([]metricSample, error) {
	var out []metricSample
	for n := 1; len(page) > 0; n++ {
		line := page
		if k := bytes.IndexByte(page, '\n'); k >= 0 {
			line, page = page[:k], page[k+1:]
		} else {
			page = nil
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func isNameByte(c byte, first, colon bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(!first && c >= '0' && c <= '9') || (colon && c == ':')
}

// nameEnd is the end of the name at the start of b (0: none).
func nameEnd(b []byte, colon bool) int {
	i := 0
	for i < len(b) && isNameByte(b[i], i == 0, colon) {
		i++
	}
	return i
}

func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// parseSample reads `name{label="value",…} value [timestamp]`.
func parseSample(line []byte) (metricSample, error) {
	var s metricSample
	i := nameEnd(line, true)
	if i == 0 {
		return s, fmt.Errorf("%w: no metric name in %.40q", ErrMetricsPage, line)
	}
	s.Name = string(line[:i])
	if i < len(line) && line[i] == '{' {
		labels, n, err := parseLabels(line[i:])
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.Name, err)
		}
		s.Labels, i = labels, i+n
	}
	if i == len(line) || (line[i] != ' ' && line[i] != '\t') {
		return s, fmt.Errorf("%w: %s: no value", ErrMetricsPage, s.Name)
	}
	fields := bytes.Fields(line[i:])
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("%w: %s: want a value and at most a timestamp", ErrMetricsPage, s.Name)
	}
	v, err := strconv.ParseFloat(string(fields[0]), 64)
	if err != nil {
		return s, fmt.Errorf("%w: %s: value: %w", ErrMetricsPage, s.Name, err)
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(string(fields[1]), 10, 64); err != nil {
			return s, fmt.Errorf("%w: %s: timestamp: %w", ErrMetricsPage, s.Name, err)
		}
	}
	s.Value = v
	return s, nil
}

// parseLabels reads the label set at the start of b, which begins with
// '{', and returns it and its length.
func parseLabels(b []byte) (map[string]string, int, error) {
	labels := map[string]string{}
	i := 1
	for {
		i = skipBlanks(b, i)
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		n := nameEnd(b[i:], false)
		if n == 0 {
			return nil, 0, fmt.Errorf("%w: bad label name at byte %d", ErrMetricsPage, i)
		}
		name := string(b[i : i+n])
		i = skipBlanks(b, i+n)
		if i >= len(b) || b[i] != '=' {
			return nil, 0, fmt.Errorf("%w: label %s: no '='", ErrMetricsPage, name)
		}
		i = skipBlanks(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return nil, 0, fmt.Errorf("%w: label %s: value not quoted", ErrMetricsPage, name)
		}
		value, n, err := labelValue(b[i+1:])
		if err != nil {
			return nil, 0, fmt.Errorf("label %s: %w", name, err)
		}
		if _, dup := labels[name]; dup {
			return nil, 0, fmt.Errorf("%w: label %s twice", ErrMetricsPage, name)
		}
		labels[name] = value
		i = skipBlanks(b, i+1+n)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		return nil, 0, fmt.Errorf("%w: label %s: want ',' or '}'", ErrMetricsPage, name)
	}
	if len(labels) == 0 {
		labels = nil
	}
	return labels, i, nil
}

// labelValue unescapes a label value up to its closing quote and returns
// it and the bytes read, the quote included.
func labelValue(b []byte) (string, int, error) {
	var v []byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			return string(v), i + 1, nil
		case '\\':
			if i++; i == len(b) {
				return "", 0, fmt.Errorf("%w: label value not closed", ErrMetricsPage)
			}
			switch b[i] {
			case '\\', '"':
				v = append(v, b[i])
			case 'n':
				v = append(v, '\n')
			default:
				return "", 0, fmt.Errorf("%w: escape \\%c in a label value", ErrMetricsPage, b[i])
			}
		default:
			v = append(v, c)
		}
	}
	return "", 0, fmt.Errorf("%w: label value not closed", ErrMetricsPage)
}

// serverSample is what the bench reads from the server's /metrics at one
// moment.
type serverSample struct {
	at   time.Time
	cpuS float64 // process_cpu_seconds_total
	rssB float64 // process_resident_memory_bytes
	shed float64 // credgate_checks_shed_total
	// requests counts the POST requests the server finished, by route and
	// status (the request duration histogram's _count).
	requests map[[2]string]float64
}

// newServerSample picks the bench's figures from a parsed page; the
// process collector's CPU and memory must be there.
func newServerSample(at time.Time, samples []metricSample) (*serverSample, error) {
	s := &serverSample{at: at, requests: map[[2]string]float64{}}
	var cpu, rss bool
	for _, m := range samples {
		switch m.Name {
		case metricCPU:
			s.cpuS, cpu = m.Value, true
		case metricRSS:
			s.rssB, rss = m.Value, true
		case metricShed:
			s.shed = m.Value
		case metricRequests:
			if m.Labels["method"] == http.MethodPost {
				s.requests[[2]string{m.Labels["route"], m.Labels["status"]}] += m.Value
			}
		}
	}
	if !cpu || !rss {
		return nil, fmt.Errorf("%w: no %s or %s (the process collector)", ErrMetricsPage, metricCPU, metricRSS)
	}
	return s, nil
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
	samples, err := parseMetrics(page)
	if err != nil {
		return nil, err
	}
	return newServerSample(at, samples)
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
	return a
}

func (a *serverAccount) print(w io.Writer) {
	fmt.Fprintf(w, "  server      %.2f cores (%.2fs of CPU in %.2fs)", a.Cores, a.CPUS, a.WallS)
	if a.CPUusPerAnswered > 0 {
		fmt.Fprintf(w, ", %.1f µs of CPU per request answered", a.CPUusPerAnswered)
	}
	fmt.Fprintln(w)
	if a.Arrived > 0 {
		fmt.Fprintf(w, "  arrived     %d at the server (%.0f/s", a.Arrived, a.ArrivedRPS)
		if a.ArrivedX > 0 {
			fmt.Fprintf(w, ", %.2f× capacity", a.ArrivedX)
		}
		fmt.Fprintf(w, "): %d answered 2xx, %d refused by load shedding\n", a.Answered, a.Refused)
	}
}
