package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// commitBuckets resolve the milliseconds a check's tail is made of: a
// PostgreSQL commit with its fsync takes about one to a few.
var commitBuckets = []float64{.00025, .0005, .001, .0015, .002, .003, .004, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 10}

// commitMetrics are the appender's histograms: how long each batch's commit
// took, how many records it held, and how long each record waited for its
// batch's commit to start (behind the commit in flight) and in all.
type commitMetrics struct {
	commit  prometheus.Histogram
	failed  prometheus.Counter
	records prometheus.Histogram
	wait    prometheus.Histogram
	append  prometheus.Histogram
	lag     prometheus.Histogram
}

func newCommitMetrics() *commitMetrics {
	return &commitMetrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "credgate_evidence_commit_seconds",
			Help:    "Time the store took to commit one batch of evidence records (group commit), failed commits included.",
			Buckets: commitBuckets,
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credgate_evidence_commit_failures_total",
			Help: "Evidence batches whose commit failed; their callers were not answered as recorded.",
		}),
		records: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "credgate_evidence_batch_records",
			Help:    "Evidence records per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "credgate_evidence_queue_wait_seconds",
			Help:    "Time an evidence record waited from its append to the start of its batch's commit.",
			Buckets: commitBuckets,
		}),
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "credgate_evidence_append_seconds",
			Help:    "Time an evidence record spent in the appender: its wait plus its batch's commit; a check waits this long for its evidence.",
			Buckets: commitBuckets,
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "credgate_evidence_commit_start_lag_seconds",
			Help:    "Time a batch could have started committing and did not: from its oldest record's append or the previous commit's end, whichever is later, to its start (waiting for a CPU).",
			Buckets: commitBuckets,
		}),
	}
}

func (m *commitMetrics) Waited(wait, total time.Duration) {
	m.wait.Observe(wait.Seconds())
	m.append.Observe(total.Seconds())
}

func (m *commitMetrics) Committed(n int, lag, took time.Duration, err error) {
	m.commit.Observe(took.Seconds())
	m.lag.Observe(lag.Seconds())
	if err != nil {
		m.failed.Inc()
		return
	}
	m.records.Observe(float64(n))
}

func (m *commitMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.commit, m.failed, m.records, m.wait, m.append, m.lag}
}
