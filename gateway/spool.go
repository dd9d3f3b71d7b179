package gateway

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/credgate/credgate/service"
)

// SpoolReporter reports the evidence spool (service.SpoolingLog).
type SpoolReporter interface {
	SpoolStatus() service.SpoolStatus
}

// WithSpool shows the evidence spool in /readyz ("spool": pending, oldest,
// state) and /metrics (credgate_spool_*). A replica whose spool is stuck is
// not ready. The readiness dependencies named in covers (the store) are
// reported down when they are, but do not make the replica unready while
// its spool is not stuck: it still answers checks from the cache, with
// their evidence spooled, and a load balancer should keep it.
func WithSpool(r SpoolReporter, covers ...string) Option {
	return func(s *Server) {
		st := s.statusReport()
		st.spool = r
		st.spoolCovers = covers
		st.sections["spool"] = spoolSection{r}
		st.collectors = append(st.collectors, spoolCollector{r})
	}
}

// unreadyDespiteDown reports whether dependency name being down makes the
// replica unready (it does unless a spool that is not stuck covers it).
func (s *Server) unreadyDespiteDown(name string) bool {
	if s.status == nil || s.status.spool == nil {
		return true
	}
	for _, c := range s.status.spoolCovers {
		if c == name {
			return s.spoolStuck()
		}
	}
	return true
}

// spoolStuck reports whether the spool cannot be integrated.
func (s *Server) spoolStuck() bool {
	return s.status != nil && s.status.spool != nil && s.status.spool.SpoolStatus().State == service.SpoolStuck
}

type spoolSection struct{ r SpoolReporter }

func (p spoolSection) Status(context.Context) any { return p.r.SpoolStatus() }

var (
	descSpoolPending    = prometheus.NewDesc("credgate_spool_pending", "Check records in this replica's evidence spool not yet integrated into the log.", nil, nil)
	descSpoolBytes      = prometheus.NewDesc("credgate_spool_bytes", "Size of this replica's evidence spool file.", nil, nil)
	descSpoolStuck      = prometheus.NewDesc("credgate_spool_stuck", "1 when the evidence spool cannot be integrated for a reason waiting will not cure.", nil, nil)
	descSpoolAppended   = prometheus.NewDesc("credgate_spool_appended_total", "Check records spooled because the log could not commit them in time.", nil, nil)
	descSpoolIntegrated = prometheus.NewDesc("credgate_spool_integrated_total", "Spooled records integrated into the log (or found already there).", nil, nil)
	descSpoolErrors     = prometheus.NewDesc("credgate_spool_errors_total", "Failed spool appends and integration attempts.", nil, nil)
	descSpoolQuarantine = prometheus.NewDesc("credgate_spool_quarantined", "Spooled records the log's database refused, set aside in quarantine.", nil, nil)
)

type spoolCollector struct{ r SpoolReporter }

func (spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolPending, descSpoolBytes, descSpoolStuck, descSpoolAppended, descSpoolIntegrated, descSpoolErrors, descSpoolQuarantine} {
		ch <- d
	}
}

func (c spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.SpoolStatus()
	stuck := 0.0
	if st.State == service.SpoolStuck {
		stuck = 1
	}
	ch <- prometheus.MustNewConstMetric(descSpoolPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descSpoolBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descSpoolStuck, prometheus.GaugeValue, stuck)
	ch <- prometheus.MustNewConstMetric(descSpoolAppended, prometheus.CounterValue, float64(st.Appended))
	ch <- prometheus.MustNewConstMetric(descSpoolIntegrated, prometheus.CounterValue, float64(st.Integrated))
	ch <- prometheus.MustNewConstMetric(descSpoolErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(descSpoolQuarantine, prometheus.GaugeValue, float64(st.Quarantined))
}
