package gateway

import (
	"context"
	"maps"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/credgate/credgate/internal/breaker"
)

// BreakerReporter reports circuit breakers by name, each "closed", "open"
// or "half_open" (the cache tier's Redis breaker, the upstream sources').
type BreakerReporter interface {
	Breakers() map[string]string
}

// StatusReporter reports a component's state for /readyz. What it reports
// informs operators; it does not decide readiness, since the component
// degrades without failing checks (a cache without Redis, a source whose
// breaker is open).
type StatusReporter interface {
	Status(ctx context.Context) any
}

// statusReport is what the options below add to /readyz and /metrics.
type statusReport struct {
	breakers   []BreakerReporter
	sections   map[string]StatusReporter
	collectors []prometheus.Collector
	// spool is the evidence spool, and the readiness dependencies it
	// covers (spool.go).
	spool       SpoolReporter
	spoolCovers []string
	// registered: the collectors are registered once.
	registered bool
}

func (s *Server) statusReport() *statusReport {
	if s.status == nil {
		s.status = &statusReport{sections: map[string]StatusReporter{}}
	}
	return s.status
}

// WithBreakers shows the reporters' circuit breakers in /readyz
// ("breakers") and in /metrics (credgate_circuit_breaker_state).
func WithBreakers(rs ...BreakerReporter) Option {
	return func(s *Server) {
		st := s.statusReport()
		st.breakers = append(st.breakers, rs...)
	}
}

// WithStatus adds a section to /readyz, under name ("cache", "sources").
func WithStatus(name string, r StatusReporter) Option {
	return func(s *Server) { s.statusReport().sections[name] = r }
}

// WithCollectors registers more Prometheus collectors in the server's
// registry (the cache tier's, the upstream sources'), whichever registry
// the server ends up with.
func WithCollectors(cs ...prometheus.Collector) Option {
	return func(s *Server) {
		st := s.statusReport()
		st.collectors = append(st.collectors, cs...)
	}
}

// registerStatus registers the breaker collector and the extra
// collectors; New calls it once the registry is known.
func (s *Server) registerStatus() {
	if s.status == nil || s.status.registered {
		return
	}
	s.status.registered = true
	if len(s.status.breakers) > 0 {
		s.registry.MustRegister(breakerCollector{s.status})
	}
	s.registry.MustRegister(s.status.collectors...)
}

// addStatus adds the breakers and the sections to a /readyz body.
func (s *Server) addStatus(ctx context.Context, body gin.H) {
	if s.status == nil {
		return
	}
	if b := s.status.allBreakers(); len(b) > 0 {
		body["breakers"] = b
	}
	for name, r := range s.status.sections {
		body[name] = r.Status(ctx)
	}
}

func (st *statusReport) allBreakers() map[string]string {
	out := map[string]string{}
	for _, r := range st.breakers {
		maps.Copy(out, r.Breakers())
	}
	return out
}

var descBreaker = prometheus.NewDesc("credgate_circuit_breaker_state",
	"Circuit breakers: 1 for the state each is in (closed, half_open, open), 0 for the others.",
	[]string{"breaker", "state"}, nil)

type breakerCollector struct{ st *statusReport }

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBreaker }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	all := c.st.allBreakers()
	for _, name := range slices.Sorted(maps.Keys(all)) {
		for _, state := range breaker.StateNames() {
			v := 0.0
			if all[name] == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, v, name, state)
		}
	}
}
