package upstream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the sources' syncs and freshness to Prometheus. The
// breakers' states are exposed with every other breaker's by the gateway
// (Breakers).
func (r *Runner) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Runner }

var (
	descSyncs = prometheus.NewDesc("credgate_source_syncs_total",
		"Syncs of upstream sources by result: applied (a new snapshot), unchanged, rejected (malformed or invalid: nothing applied), failed.",
		[]string{"source", "result"}, nil)
	descAttempts = prometheus.NewDesc("credgate_source_attempts_total",
		"Calls to upstream sources by result: ok, failed, refused_open (the breaker was open).",
		[]string{"source", "result"}, nil)
	descSynced = prometheus.NewDesc("credgate_source_synced_timestamp_seconds",
		"When the source's snapshot in force was last confirmed by upstream.", []string{"source"}, nil)
	descEntries = prometheus.NewDesc("credgate_source_entries",
		"Entries in the source's snapshot in force.", []string{"source"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSyncs, descAttempts, descSynced, descEntries} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.sources {
		name := s.cfg.Name
		for i, res := range syncResults {
			ch <- prometheus.MustNewConstMetric(descSyncs, prometheus.CounterValue, float64(s.syncs[i].Load()), name, res)
		}
		for i, res := range attemptResults {
			ch <- prometheus.MustNewConstMetric(descAttempts, prometheus.CounterValue, float64(s.attempts[i].Load()), name, res)
		}
		s.mu.Lock()
		synced, entries := s.syncedAt, s.entries
		s.mu.Unlock()
		if !synced.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, float64(synced.UnixNano())/1e9, name)
		}
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(entries), name)
	}
}
