package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// TestReadyzAndMetricsShowDegradedParts: with Redis unreachable and an
// upstream failing, the replica stays ready (it answers from the store and
// the last good snapshots) while /readyz and /metrics show both open
// breakers, the cache's state and the source's error.
func TestReadyzAndMetricsShowDegradedParts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openSQLite(t)
	tier, err := cache.New(st, st, cache.WithRedis(&redis.Options{Addr: testenv.FreeAddr(t)}), cache.WithRedisBreaker(1, time.Minute),
		cache.WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tier.Start(ctx)
	t.Cleanup(tier.Close)
	if _, err := tier.LookupEntries(ctx, "91350100M000100Y43"); err != nil {
		t.Fatalf("a lookup with Redis down: %v", err)
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(up.Close)
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	feed, err := upstream.NewURLFeed(up.URL+"/feed.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	runner, err := upstream.NewRunner(service.NewSources(st, cat), []upstream.SourceConfig{{Name: "court",
		Lists: []string{"court_dishonest_debtor"}, Source: feed, BreakerFailures: 1, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.SyncNow(ctx, "court"); err == nil {
		t.Fatal("a sync against a failing upstream succeeded")
	}

	h := newHarness(t, withGateway(gateway.WithCollectors(tier.Collector(), runner.Collector()), gateway.WithBreakers(tier, runner),
		gateway.WithStatus("cache", tier), gateway.WithStatus("sources", runner)))

	res := h.do(http.MethodGet, "/readyz", "", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s (open breakers must not make the replica unready)", res.Status, res.Body)
	}
	m := res.json(t)
	breakers := m["breakers"].(map[string]any)
	if breakers["redis"] != "open" || breakers["source:court"] != "open" {
		t.Fatalf("breakers: %v", breakers)
	}
	if c := m["cache"].(map[string]any); c["redis"] != "down" || c["store_reachable"] != true || c["confirmed_at"] == nil {
		t.Fatalf("cache: %v", c)
	}
	src := m["sources"].(map[string]any)["court"].(map[string]any)
	if src["fresh"] != false || !strings.Contains(src["last_error"].(string), "503") {
		t.Fatalf("source: %v", src)
	}

	res = h.do(http.MethodGet, "/metrics", "", "", nil)
	for _, want := range []string{
		`credgate_circuit_breaker_state{breaker="redis",state="open"} 1`,
		`credgate_circuit_breaker_state{breaker="source:court",state="open"} 1`,
		`credgate_circuit_breaker_state{breaker="source:court",state="closed"} 0`,
		`credgate_cache_lookups_total{result="store"} 1`,
		`credgate_cache_redis_up 0`,
		`credgate_source_attempts_total{result="failed",source="court"} 1`,
		`credgate_source_syncs_total{result="failed",source="court"} 1`,
	} {
		if !strings.Contains(string(res.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestReadyzShowsTheListedFilter: /readyz (validated against the contract)
// and /metrics show the listed filter once it is ready, and its answers,
// and the watch of the store's change log.
func TestReadyzShowsTheListedFilter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openSQLite(t)
	tier, err := cache.New(st, st, cache.WithReconcileInterval(time.Hour), cache.WithListedFilter(st, 0),
		cache.WithChangeNotices(st))
	if err != nil {
		t.Fatal(err)
	}
	tier.Start(ctx)
	t.Cleanup(tier.Close)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st := tier.Status(ctx).(cache.Status)
		if st.ListedFilter == "ready" && st.ChangeNotices == "listening" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listed filter is %s, the notices %s", st.ListedFilter, st.ChangeNotices)
		}
	}
	if l, err := tier.LookupEntries(ctx, "91350100M000100Y43"); err != nil || len(l.Entries) != 0 {
		t.Fatalf("a clean subject: %v, %v", l.Entries, err)
	}
	h := newHarness(t, withGateway(gateway.WithCollectors(tier.Collector()), gateway.WithStatus("cache", tier)))
	res := h.do(http.MethodGet, "/readyz", "", "", nil)
	if c := res.json(t)["cache"].(map[string]any); c["listed_filter"] != "ready" || c["change_notices"] != "listening" {
		t.Fatalf("cache: %v", c)
	}
	res = h.do(http.MethodGet, "/metrics", "", "", nil)
	for _, want := range []string{
		`credgate_cache_lookups_total{result="listed"} 1`,
		`credgate_cache_lookups_total{result="store"} 0`,
		`credgate_cache_listed_filter_builds_total{result="ok"} 1`,
		`credgate_cache_listed_filter_subjects 0`,
		`credgate_cache_change_notices_total{result="ok"} 1`,
	} {
		if !strings.Contains(string(res.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// openSQLite opens a SQLite store in a temporary directory, closed when
// the test ends.
func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
