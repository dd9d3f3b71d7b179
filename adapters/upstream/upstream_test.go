package upstream_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// fakeUpstream is a test upstream platform: pages of records in its own
// JSON shape, which a test can slow down, make fail or make return garbage.
type fakeUpstream struct {
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	mode  string // ok, slow, 500, 404, garbage, down
	delay time.Duration
	pages [][]map[string]any
}

func newFakeUpstream(t *testing.T, pages ...[]map[string]any) *fakeUpstream {
	f := &fakeUpstream{mode: "ok", pages: pages}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) set(mode string, pages ...[]map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
	if pages != nil {
		f.pages = pages
	}
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	mode, delay, pages := f.mode, f.delay, f.pages
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer upstream-token" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	switch mode {
	case "slow":
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	case "500":
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case "404":
		http.Error(w, "gone", http.StatusNotFound)
		return
	case "garbage":
		fmt.Fprint(w, `<html><body>维护中 maintenance</body></html>`)
		return
	case "down":
		// The connection drops without an answer.
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	page := 0
	fmt.Sscan(r.URL.Query().Get("page"), &page)
	if page >= len(pages) {
		http.Error(w, "no such page", http.StatusNotFound)
		return
	}
	body := map[string]any{"code": 0, "data": map[string]any{"list": pages[page]}}
	if page+1 < len(pages) {
		body["data"].(map[string]any)["next"] = fmt.Sprintf("/api/dishonest?page=%d", page+1)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// mapping is how credgate reads the fake upstream's records.
func mapping() *upstream.Mapping {
	return &upstream.Mapping{
		Records: "data.list", Next: "data.next", Key: "ajh",
		Fields: map[string]string{"subject_id": "tyshxydm", "reason": "sxyy", "originating_department": "zxfy",
			"decided_at": "lasj", "published_at": "fbrq", "evidence_refs": "ajh"},
		Constants: map[string]string{"list": "court_dishonest_debtor", "legal_basis": "《最高人民法院关于公布失信被执行人名单信息的若干规定》"},
		Persons: &upstream.PersonMapping{Path: "fr", ID: "zjhm", Role: "js",
			Roles: map[string]string{"法定代表人": "legal_representative"}},
	}
}

func person(t testing.TB, prefix string) string {
	t.Helper()
	for _, c := range "0123456789X" {
		if id, err := policy.ParseResidentID(prefix + string(c)); err == nil {
			return id.Value
		}
	}
	t.Fatalf("no valid ID starts with %s", prefix)
	return ""
}

// record is one upstream record of a dishonest judgment debtor.
func record(subject, caseNo string, persons ...string) map[string]any {
	r := map[string]any{"tyshxydm": subject, "ajh": caseNo, "sxyy": "有履行能力而拒不履行生效法律文书确定义务",
		"zxfy": "北京市第一中级人民法院", "lasj": "2026-02-01", "fbrq": "2026-03-01"}
	var fr []any
	for _, p := range persons {
		fr = append(fr, map[string]any{"zjhm": p, "js": "法定代表人"})
	}
	if fr != nil {
		r["fr"] = fr
	}
	return r
}

type rig struct {
	t       *testing.T
	store   *sqlite.Store
	cat     *policy.Catalog
	sources *service.Sources
	runner  *upstream.Runner
	checker *service.Checker
	now     atomic.Int64 // the checker's clock
}

// newRig runs the source named "court" over a real SQLite store, and a
// checker that depends on it.
func newRig(t *testing.T, src upstream.Source, cfg upstream.SourceConfig) *rig {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: st, cat: cat}
	r.now.Store(time.Now().UnixNano())
	r.sources = service.NewSources(st, cat)
	cfg.Name, cfg.Source = "court", src
	if cfg.Lists == nil {
		cfg.Lists = []string{"court_dishonest_debtor"}
	}
	if r.runner, err = upstream.NewRunner(r.sources, []upstream.SourceConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(func() { app.Close() })
	r.checker = service.NewChecker(cat, st, app, st, service.WithSources(r.runner),
		service.WithClock(func() time.Time { return time.Unix(0, r.now.Load()) }))
	return r
}

func (r *rig) sync() error { return r.runner.SyncNow(r.t.Context(), "court") }

func (r *rig) check(subject, action string) service.CheckAnswer {
	r.t.Helper()
	a, err := r.checker.Check(r.t.Context(), service.Caller{ClientID: "admin", Role: service.RoleAdmin},
		service.CheckRequest{Subject: subject, Action: action})
	if err != nil {
		r.t.Fatalf("check: %v", err)
	}
	return a
}

// active counts the entries in force (not revoked) in the store.
func (r *rig) active() []string {
	r.t.Helper()
	es, err := r.store.ListEntries(r.t.Context(), service.EntryFilter{Limit: service.MaxPage})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.RevokedAt == nil {
			out = append(out, e.Subject.Value)
		}
	}
	slices.Sort(out)
	return out
}

func (r *rig) state() service.SourceState {
	r.t.Helper()
	st, err := r.sources.State(r.t.Context(), "court")
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func httpSource(t *testing.T, f *fakeUpstream) upstream.Source {
	t.Helper()
	src, err := upstream.NewHTTPSource(f.srv.URL+"/api/dishonest?page=0", mapping(), upstream.WithHeader("Authorization", "Bearer upstream-token"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestHTTPSourceMapsPagesAndAppliesWholes(t *testing.T) {
	t.Parallel()
	a, b, c := testenv.USCC(t, "91110000MA0000041"), testenv.USCC(t, "91110000MA0000042"), testenv.USCC(t, "91110000MA0000043")
	legalRep := person(t, "11010519800101001")
	f := newFakeUpstream(t, []map[string]any{record(a, "(2026)京01执1号", legalRep), record(b, "(2026)京01执2号")},
		[]map[string]any{record(c, "(2026)京01执3号")})
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.active(), sorted(a, b, c); !slices.Equal(got, want) {
		t.Fatalf("after the first sync: %v, want %v", got, want)
	}
	// The legal representative is reached through the organisation.
	es, err := r.store.EntriesAffecting(t.Context(), legalRep)
	if err != nil || len(es) != 1 || es[0].Subject.Value != a {
		t.Fatalf("entries reaching the legal representative: %v %v", es, err)
	}
	if ans := r.check(legalRep, "government_procurement"); len(ans.Entries) != 1 || ans.Entries[0].Via == nil {
		t.Fatalf("the person's check: %+v", ans.Entries)
	}
	st := r.state()
	if st.Entries != 3 || st.Revision == "" || st.SyncedAt.IsZero() || st.LastError != "" {
		t.Fatalf("state: %+v", st)
	}
	// Same payload again: nothing changes but the sync time.
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if st2 := r.state(); st2.Revision != st.Revision || !st2.AppliedAt.Equal(st.AppliedAt) || st2.SyncedAt.Before(st.SyncedAt) {
		t.Fatalf("unchanged snapshot: %+v after %+v", st2, st)
	}
	// b leaves the upstream: its entry is revoked (kept as history).
	f.set("ok", []map[string]any{record(a, "(2026)京01执1号", legalRep)}, []map[string]any{record(c, "(2026)京01执3号")})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.active(), sorted(a, c); !slices.Equal(got, want) {
		t.Fatalf("after b left: %v, want %v", got, want)
	}
	gone, _ := r.store.EntriesAffecting(t.Context(), b)
	if len(gone) != 1 || gone[0].RevokedAt == nil || !strings.Contains(gone[0].RevocationReason, "court") {
		t.Fatalf("b's entry: %+v", gone)
	}
}

func sorted(ss ...string) []string {
	slices.Sort(ss)
	return ss
}

// TestUpstreamFailuresKeepLastGoodSnapshot: whatever goes wrong upstream,
// nothing of the bad fetch is applied, the snapshot in force stays, the
// error is recorded, and retries are bounded (transient failures only).
func TestUpstreamFailuresKeepLastGoodSnapshot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		mode      string
		pages     [][]map[string]any
		transient bool
		want      error
	}{
		{name: "slow", mode: "slow", transient: true, want: upstream.ErrTransient},
		{name: "connection dropped", mode: "down", transient: true, want: upstream.ErrTransient},
		{name: "500", mode: "500", transient: true, want: upstream.ErrTransient},
		{name: "404", mode: "404", want: upstream.ErrUpstreamRefused},
		{name: "garbage", mode: "garbage", want: upstream.ErrMalformed},
		{name: "bad check character", mode: "ok", want: service.ErrSnapshotRejected,
			pages: [][]map[string]any{{record("91110000MA00000410", "x")}}},
		{name: "one bad record among good ones", mode: "ok", want: service.ErrSnapshotRejected,
			pages: [][]map[string]any{{record(testenv.USCC(t, "91110000MA0000044"), "y"), {"tyshxydm": 12}}}},
		{name: "records not an array", mode: "ok", want: upstream.ErrMalformed,
			pages: [][]map[string]any{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			good := testenv.USCC(t, "91110000MA0000045")
			f := newFakeUpstream(t, []map[string]any{record(good, "(2026)京01执9号")})
			f.delay = 2 * time.Second
			r := newRig(t, httpSource(t, f), upstream.SourceConfig{Timeout: 200 * time.Millisecond, Retries: 2,
				Backoff: 10 * time.Millisecond, BreakerFailures: 10})
			if err := r.sync(); err != nil {
				t.Fatal(err)
			}
			before := r.state()
			f.set(tc.mode, tc.pages...)
			hits := f.hits.Load()
			err := r.sync()
			if !errors.Is(err, tc.want) {
				t.Fatalf("sync: %v, want %v", err, tc.want)
			}
			calls := f.hits.Load() - hits
			// net/http itself resends a GET once when a reused idle
			// connection drops before any answer: at most twice per attempt.
			if tc.transient && (calls < 3 || calls > 6 || (tc.mode != "down" && calls != 3)) {
				t.Fatalf("%d calls for a transient failure, want 1 + 2 retries", calls)
			}
			if !tc.transient && calls != 1 {
				t.Fatalf("%d calls for a permanent failure, want 1 (no retry)", calls)
			}
			if got := r.active(); !slices.Equal(got, []string{good}) {
				t.Fatalf("entries after the failed sync: %v, want the last good snapshot's", got)
			}
			after := r.state()
			if after.LastError == "" || after.Revision != before.Revision || !after.SyncedAt.Equal(before.SyncedAt) {
				t.Fatalf("state after the failed sync: %+v", after)
			}
			if strings.Contains(after.LastError, "upstream-token") {
				t.Fatal("the recorded error shows the upstream's token")
			}
		})
	}
}

// actionWithout returns a catalogue action that no measure of list governs.
func actionWithout(t *testing.T, cat *policy.Catalog, list string) string {
	t.Helper()
	governed := map[string]bool{}
	for _, m := range cat.Measures() {
		if m.List == list {
			for _, a := range m.Actions {
				governed[a] = true
			}
		}
	}
	for _, a := range cat.Actions() {
		if !governed[a.ID] {
			return a.ID
		}
	}
	t.Fatalf("every action is governed by %s", list)
	return ""
}

// TestBreakerOpensAnswersAgeThenUnverifiable: with the upstream failing,
// the breaker opens and stops calling it; answers rest on the last good
// snapshot, saying its age in data_as_of; past the source's bound the
// outcome is unverifiable for the actions the source matters to, clean
// subjects included, never clear. When the upstream heals, the probe
// closes the breaker and answers are fresh again.
func TestBreakerOpensAnswersAgeThenUnverifiable(t *testing.T) {
	t.Parallel()
	listed, clean := testenv.USCC(t, "91110000MA0000046"), testenv.USCC(t, "91110000MA0000047")
	f := newFakeUpstream(t, []map[string]any{record(listed, "(2026)京01执7号")})
	const maxAge = time.Hour
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{MaxAge: maxAge, Retries: 0, Timeout: time.Second,
		BreakerFailures: 2, BreakerOpenFor: 300 * time.Millisecond})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	synced := r.state().SyncedAt
	f.set("500")
	for range 2 {
		if err := r.sync(); err == nil {
			t.Fatal("a sync against a failing upstream succeeded")
		}
	}
	if st := r.runner.Breakers()["source:court"]; st != "open" {
		t.Fatalf("breaker %s after 2 failures, want open", st)
	}
	hits := f.hits.Load()
	if err := r.sync(); err == nil || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Fatalf("sync with the breaker open: %v", err)
	}
	if f.hits.Load() != hits {
		t.Fatal("the upstream was called with the breaker open")
	}
	status := r.runner.Status(t.Context()).(map[string]upstream.SourceStatus)["court"]
	if status.Breaker != "open" || status.LastError == "" || !status.Fresh {
		t.Fatalf("status: %+v", status)
	}

	// Within the bound: the last good snapshot, and its age.
	r.now.Store(synced.Add(maxAge / 2).UnixNano())
	a := r.check(listed, "government_procurement")
	if a.Outcome == policy.OutcomeClear || a.Outcome == policy.OutcomeUnverifiable {
		t.Fatalf("within the bound: %s", a.Outcome)
	}
	if !a.DataAsOf.Equal(synced) {
		t.Fatalf("data_as_of %v, want the last good snapshot's %v", a.DataAsOf, synced)
	}
	// Past the bound: unverifiable, for the listed and the clean alike.
	r.now.Store(synced.Add(maxAge + time.Minute).UnixNano())
	for _, s := range []string{listed, clean} {
		a := r.check(s, "government_procurement")
		if a.Outcome != policy.OutcomeUnverifiable || a.Unverifiable == nil ||
			a.Unverifiable.Reason != service.UnverifiableSourceStale || a.Unverifiable.Source != "court" {
			t.Fatalf("past the bound: %s %+v", a.Outcome, a.Unverifiable)
		}
		if a.Receipt == nil {
			t.Fatal("an unverifiable answer without evidence")
		}
	}
	// An action none of the source's lists governs does not depend on it.
	if a := r.check(clean, actionWithout(t, r.cat, "court_dishonest_debtor")); a.Outcome != policy.OutcomeClear {
		t.Fatalf("an action the source does not matter to: %s", a.Outcome)
	}

	f.set("ok")
	time.Sleep(350 * time.Millisecond) // the breaker's open period
	if err := r.sync(); err != nil {
		t.Fatalf("the probe after the upstream healed: %v", err)
	}
	if st := r.runner.Breakers()["source:court"]; st != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", st)
	}
	r.now.Store(time.Now().UnixNano())
	if a := r.check(clean, "government_procurement"); a.Outcome != policy.OutcomeClear {
		t.Fatalf("after recovery: %s", a.Outcome)
	}
}

func TestNeverSyncedSourceMakesAnswersUnverifiable(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	f.set("500")
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{Retries: 0, Timeout: time.Second})
	if err := r.sync(); err == nil {
		t.Fatal("sync against a failing upstream succeeded")
	}
	a := r.check(testenv.USCC(t, "91110000MA0000048"), "government_procurement")
	if a.Outcome != policy.OutcomeUnverifiable || a.Unverifiable.Reason != service.UnverifiableSourceNeverSynced {
		t.Fatalf("a source that never synced: %s %+v", a.Outcome, a.Unverifiable)
	}
}

// TestRestartRemembersLastGoodSnapshot: a new runner (a restart, or
// another replica) takes the last good snapshot's time from the store.
func TestRestartRemembersLastGoodSnapshot(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t, []map[string]any{record(testenv.USCC(t, "91110000MA0000049"), "z")})
	r := newRig(t, httpSource(t, f), upstream.SourceConfig{})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	synced := r.state().SyncedAt
	again, err := upstream.NewRunner(r.sources, []upstream.SourceConfig{{Name: "court", Lists: []string{"court_dishonest_debtor"},
		Source: httpSource(t, f), Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	f.set("500") // the first sync after the restart fails
	again.Start(t.Context())
	t.Cleanup(again.Close)
	if got := again.Freshness()[0].SyncedAt; !got.Equal(synced) {
		t.Fatalf("after a restart the source is synced at %v, want %v", got, synced)
	}
}
