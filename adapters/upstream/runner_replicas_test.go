package upstream_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// heldSource fetches from src at once, then holds the snapshot until
// release closes: a slow replica whose snapshot is older than what others
// apply meanwhile.
type heldSource struct {
	src     upstream.Source
	fetched chan struct{}
	release chan struct{}
}

func (h *heldSource) Fetch(ctx context.Context) ([]service.SourceItem, error) {
	items, err := h.src.Fetch(ctx)
	close(h.fetched)
	<-h.release
	return items, err
}

// TestOlderSnapshotOfSlowReplicaIsSuperseded: two replicas sync one source.
// The slow one fetched while the subject was listed and commits after the
// quick one applied the upstream's newer, empty snapshot: the subject stays
// off the list (no revocation and re-insertion), the slow replica says so at
// info and reports the snapshot in force.
func TestOlderSnapshotOfSlowReplicaIsSuperseded(t *testing.T) {
	t.Parallel()
	listed := testenv.USCC(t, "91110000MA0000061")
	f := newFakeUpstream(t, []map[string]any{record(listed, "(2026)京01执61号")})
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{})
	held := &heldSource{src: httpSource(t, f), fetched: make(chan struct{}), release: make(chan struct{})}
	var logs testenv.SyncBuffer
	slow, err := upstream.NewRunner(r.sources, []upstream.SourceConfig{{Name: "court", Lists: []string{"court_dishonest_debtor"},
		Source: held, Interval: time.Hour}}, upstream.WithRunnerLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sync(); err != nil { // the quick replica lists the subject
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- slow.SyncNow(t.Context(), "court") }()
	<-held.fetched
	time.Sleep(2 * time.Millisecond) // the quick replica's fetch is strictly later
	f.set("ok", []map[string]any{})  // upstream drops the record
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	newer := r.state()
	if got := r.active(); len(got) != 0 {
		t.Fatalf("after the newer, empty snapshot: %v listed", got)
	}
	close(held.release)
	if err := <-done; err != nil {
		t.Fatalf("the slow replica's sync: %v", err)
	}
	if got := r.active(); len(got) != 0 {
		t.Fatalf("the slow replica's older snapshot listed %v again", got)
	}
	if st := r.state(); st.Revision != newer.Revision || !st.SyncedAt.Equal(newer.SyncedAt) || !st.AppliedAt.Equal(newer.AppliedAt) {
		t.Fatalf("source state %+v after the older snapshot, want the newer one's %+v", st, newer)
	}
	es, err := r.store.EntriesAffecting(t.Context(), listed)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Fatalf("%d entries of the subject, want its one entry, revoked once", len(es))
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "superseded") {
		t.Fatalf("the slow replica's log does not say its snapshot was superseded:\n%s", logs.String())
	}
	st := slow.Status(t.Context()).(map[string]upstream.SourceStatus)["court"]
	if st.Revision != newer.Revision || st.Synced == nil || !st.Synced.Equal(newer.SyncedAt) || st.LastError != "" {
		t.Fatalf("the slow replica's status %+v, want the snapshot in force (%s, synced %v)", st, newer.Revision, newer.SyncedAt)
	}
}

// TestOpenBreakerKeepsTheRealError: once a failing source's breaker is
// open, /readyz (and the store) keep the upstream's error that opened it,
// not "circuit breaker open", which the breaker's state already says.
func TestOpenBreakerKeepsTheRealError(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t, []map[string]any{record(testenv.USCC(t, "91110000MA0000062"), "(2026)京01执62号")})
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{Retries: 0, Timeout: time.Second,
		BreakerFailures: 2, BreakerOpenFor: time.Hour})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	f.set("404")
	for range 2 {
		if err := r.sync(); err == nil {
			t.Fatal("a sync against a refusing upstream succeeded")
		}
	}
	status := func() upstream.SourceStatus {
		return r.runner.Status(t.Context()).(map[string]upstream.SourceStatus)["court"]
	}
	opened := status()
	if opened.Breaker != "open" || opened.LastError == "" || strings.Contains(opened.LastError, "circuit breaker") {
		t.Fatalf("status after the failures that opened the breaker: %+v", opened)
	}
	stored := r.state()
	for range 3 {
		if err := r.sync(); err == nil || !strings.Contains(err.Error(), "circuit breaker open") {
			t.Fatalf("sync with the breaker open: %v", err)
		}
	}
	if st := status(); st.LastError != opened.LastError || !st.LastErrorAt.Equal(*opened.LastErrorAt) || st.Breaker != "open" {
		t.Fatalf("status with the breaker open: last error %q at %v, want %q at %v", st.LastError, st.LastErrorAt,
			opened.LastError, opened.LastErrorAt)
	}
	if st := r.state(); st.LastError != stored.LastError || !st.LastErrorAt.Equal(stored.LastErrorAt) {
		t.Fatalf("stored last error %q, want %q", st.LastError, stored.LastError)
	}
}

// TestBreakerOpeningMidSyncReportsTheFailure: a sync whose own failed
// attempts open the breaker, so that its next retry is refused, reports
// the failure, not the refusal.
func TestBreakerOpeningMidSyncReportsTheFailure(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t, []map[string]any{record(testenv.USCC(t, "91110000MA0000063"), "(2026)京01执63号")})
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{Retries: 3, Backoff: time.Millisecond, Timeout: time.Second,
		BreakerFailures: 2, BreakerOpenFor: time.Hour})
	f.set("500")
	err := r.sync()
	if err == nil || strings.Contains(err.Error(), "circuit breaker") {
		t.Fatalf("sync: %v, want the upstream's failure", err)
	}
	if st := r.runner.Status(t.Context()).(map[string]upstream.SourceStatus)["court"]; st.LastError != err.Error() || st.Breaker != "open" {
		t.Fatalf("status %+v, want the failure %q and the breaker open", st, err)
	}
}
