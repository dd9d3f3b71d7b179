package upstream_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func feedCSV(subjects ...string) string {
	var b strings.Builder
	b.WriteString("subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n")
	for _, s := range subjects {
		fmt.Fprintf(&b, "%s,safety_production_blacklist,应急管理部,发生重大生产安全责任事故,《安全生产法》,2026-01-01,2026-01-02\n", s)
	}
	return b.String()
}

func write(t *testing.T, path, body string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// TestDirFeed: the newest complete file in the directory is the snapshot;
// a newer file replaces it whole; a malformed one is rejected whole with
// the previous snapshot kept; files being written are ignored.
func TestDirFeed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	feed, err := upstream.NewDirFeed(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, feed, upstream.SourceConfig{Lists: []string{"safety_production_blacklist"}, Retries: 0})
	if err := r.sync(); !errors.Is(err, upstream.ErrNoFeedFile) {
		t.Fatalf("an empty directory: %v", err)
	}
	a, b, c := testenv.USCC(t, "91110000MA0000051"), testenv.USCC(t, "91110000MA0000052"), testenv.USCC(t, "91110000MA0000053")
	base := time.Now().Add(-time.Hour)
	write(t, filepath.Join(dir, "2026-01-01.csv"), feedCSV(a, b), base)
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if got := r.active(); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("first file: %v", got)
	}
	write(t, filepath.Join(dir, "2026-01-02.csv"), feedCSV(a, c), base.Add(time.Minute))
	write(t, filepath.Join(dir, "2026-01-03.csv.part"), feedCSV(a), base.Add(2*time.Minute))
	write(t, filepath.Join(dir, ".2026-01-03.csv"), feedCSV(a), base.Add(2*time.Minute))
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if got := r.active(); !slices.Equal(got, sorted(a, c)) {
		t.Fatalf("second file: %v, want a and c (b revoked, partial files ignored)", got)
	}
	// A malformed file: nothing of it is applied, the error is recorded.
	write(t, filepath.Join(dir, "2026-01-04.csv"), feedCSV(a)+"not,enough,columns\n", base.Add(3*time.Minute))
	err = r.sync()
	var se *service.SnapshotError
	if !errors.As(err, &se) || len(se.Lines) != 1 || se.Lines[0].Line != 3 {
		t.Fatalf("malformed file: %v", err)
	}
	if got := r.active(); !slices.Equal(got, sorted(a, c)) {
		t.Fatalf("after the malformed file: %v, want the previous snapshot", got)
	}
	if st := r.state(); !strings.Contains(st.LastError, "line 3") {
		t.Fatalf("recorded error: %q", st.LastError)
	}
	// A file on a list the source may not feed is refused whole.
	write(t, filepath.Join(dir, "2026-01-05.csv"), strings.ReplaceAll(feedCSV(a), "safety_production_blacklist", "court_dishonest_debtor"), base.Add(4*time.Minute))
	if err := r.sync(); !errors.Is(err, service.ErrSnapshotRejected) {
		t.Fatalf("a list the source may not feed: %v", err)
	}
}

func TestURLFeed(t *testing.T) {
	t.Parallel()
	a := testenv.USCC(t, "91110000MA0000054")
	body := fmt.Sprintf(`{"subject_id":"%s","list":"safety_production_blacklist","originating_department":"应急管理部","reason":"r","legal_basis":"b","decided_at":"2026-01-01T00:00:00+08:00","published_at":"2026-01-02T00:00:00+08:00"}`+"\n", a)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	feed, err := upstream.NewURLFeed(srv.URL+"/feed?sig=secret", "")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, feed, upstream.SourceConfig{Lists: []string{"safety_production_blacklist"}})
	if err := r.sync(); err != nil {
		t.Fatal(err)
	}
	if got := r.active(); !slices.Equal(got, []string{a}) {
		t.Fatalf("entries: %v", got)
	}
	srv.Close()
	err = r.sync()
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("sync after the server went away: %v (it must fail, without the URL's query)", err)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"COURT_TOKEN": "Bearer t0k3n"}
	getenv := func(k string) string { return env[k] }
	good := `{"sources": [
	  {"name": "court", "kind": "http", "lists": ["court_dishonest_debtor"], "url": "https://platform.example/api",
	   "headers": {"Authorization": "$COURT_TOKEN"}, "interval": "5m", "max_age": "12h", "retries": 0,
	   "breaker": {"failures": 5, "open_for": "30s"},
	   "mapping": {"records": "data", "fields": {"subject_id": "code", "reason": "why", "legal_basis": "basis",
	     "decided_at": "d", "published_at": "p"}, "constants": {"list": "court_dishonest_debtor", "originating_department": "法院"}}},
	  {"name": "safety", "kind": "file", "lists": ["safety_production_blacklist"], "dir": "/var/feeds/safety"}
	]}`
	cfgs, err := upstream.LoadConfig(strings.NewReader(good), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[0].Interval != 5*time.Minute || cfgs[0].MaxAge != 12*time.Hour || cfgs[0].Retries != 0 ||
		cfgs[0].BreakerFailures != 5 || cfgs[1].Retries != upstream.DefaultRetries {
		t.Fatalf("configs: %+v", cfgs)
	}
	for name, bad := range map[string]string{
		"unknown field":     `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "dir": "/d", "colour": "red"}]}`,
		"unknown kind":      `{"sources": [{"name": "x", "kind": "ftp", "lists": ["a"]}]}`,
		"dir and url":       `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "dir": "/d", "url": "https://h/f.csv"}]}`,
		"missing env":       `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "url": "https://h/f.csv", "headers": {"X": "$NOPE"}}]}`,
		"bad duration":      `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "dir": "/d", "interval": "soon"}]}`,
		"mapping gap":       `{"sources": [{"name": "x", "kind": "http", "lists": ["a"], "url": "https://h/", "mapping": {"fields": {"subject_id": "c"}}}]}`,
		"http without map":  `{"sources": [{"name": "x", "kind": "http", "lists": ["a"], "url": "https://h/"}]}`,
		"not http":          `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "url": "file:///etc/passwd"}]}`,
		"too many retries":  `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "dir": "/d", "retries": 99}]}`,
		"trailing garbage?": `{"sources": [{"name": "x", "kind": "file", "lists": ["a"], "dir": "/d"}], "extra": 1}`,
	} {
		if _, err := upstream.LoadConfig(strings.NewReader(bad), getenv); !errors.Is(err, upstream.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestRunnerRefusesBoundBelowInterval(t *testing.T) {
	t.Parallel()
	feed, err := upstream.NewDirFeed(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = upstream.NewRunner(nil, []upstream.SourceConfig{{Name: "x", Lists: []string{"l"}, Source: feed,
		Interval: time.Hour, MaxAge: time.Hour}})
	if err == nil || !strings.Contains(err.Error(), "max_age") {
		t.Fatalf("max_age equal to the interval: %v", err)
	}
}
