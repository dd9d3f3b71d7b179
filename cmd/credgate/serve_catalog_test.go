package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

const holidays2027 = `calendar:
  covers: [2027]
  source: 国务院办公厅关于2027年部分节假日安排的通知 (test data)
  holidays: [2027-01-01, 2027-10-01]
  working_days: [2027-10-09]
`

// exportTo runs credgate catalog export into a fresh directory.
func exportTo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "catalog")
	var out, errOut bytes.Buffer
	if err := catalogExport([]string{dir}, &out, &errOut); err != nil {
		t.Fatalf("export: %v\n%s", err, errOut.String())
	}
	return dir
}

func TestCatalogExport(t *testing.T) {
	t.Parallel()
	dir := exportTo(t)
	bundled, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	copied, err := policy.LoadCatalog(os.DirFS(dir))
	if err != nil || copied.Revision() != bundled.Revision() {
		t.Fatalf("exported copy: %v, revision %v; want %s", err, copied, bundled.Revision())
	}
	// A second export does not overwrite the reviewed copy.
	if err := catalogExport([]string{dir}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("export over a copy: %v", err)
	}
	if err := catalogExport(nil, &bytes.Buffer{}, &bytes.Buffer{}); err != errUsage {
		t.Fatalf("export without DIR: %v", err)
	}
}

func TestCatalogConfigLoad(t *testing.T) {
	t.Parallel()
	dir := exportTo(t)
	hol := filepath.Join(t.TempDir(), "holidays-2027.yaml")
	if err := os.WriteFile(hol, []byte(holidays2027), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := loadCatalog(config.Catalog{})
	if err != nil || cat.Origin() != "embedded" {
		t.Fatalf("embedded: %v", err)
	}
	embedded := cat.Revision()
	cat, err = loadCatalog(config.Catalog{Dir: dir, Holidays: hol})
	if err != nil {
		t.Fatal(err)
	}
	if abs, _ := filepath.Abs(dir); cat.Origin() != abs || !cat.Calendar().Covers(2027) || cat.Revision() == embedded || cat.Holidays().BaseRevision != embedded {
		t.Fatalf("dir and holidays: origin %s covers %v revision %s", cat.Origin(), cat.Calendar().Covered(), cat.Revision())
	}

	// A bad catalogue names the file and the entry.
	bad := exportTo(t)
	measure := `measures:
  - id: zz-01
    list: court_dishonest_debtor
    actions: [government_procurement]
    effect: forbid
    mandatory: false
    applies_to: [organization]
    text: 从严审核。
    legal_basis: b
    authority: a
    source: s
`
	if err := os.WriteFile(filepath.Join(bad, "zz_region.yaml"), []byte(measure), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cfg  config.Catalog
		want []string
	}{
		"bad measure":       {config.Catalog{Dir: bad}, []string{"zz_region.yaml", `measure "zz-01"`, `unknown effect "forbid"`}},
		"missing dir":       {config.Catalog{Dir: filepath.Join(dir, "nope")}, []string{"nope"}},
		"overlapping years": {config.Catalog{Holidays: writeTemp(t, "calendar:\n  covers: [2026]\n")}, []string{"2026 is already covered"}},
		"missing holidays":  {config.Catalog{Holidays: filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
	} {
		if _, err := loadCatalog(c.cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %v does not name %q", name, err, w)
				}
			}
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveUntilListening runs serve on dataDir until it listens, and returns
// its base URL and a function that stops it.
func serveUntilListening(t *testing.T, dataDir string, args ...string) (string, func()) {
	t.Helper()
	base, _, stop := serveInProcess(t, dataDir, args...)
	return base, stop
}

// serveInProcess runs `credgate serve` (the real wiring) in this process on
// dataDir until it listens, and returns its base URL, its logs and a
// function that stops it.
func serveInProcess(t *testing.T, dataDir string, args ...string) (string, *testenv.SyncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--evidence-origin", testOrigin, "--shutdown-timeout", "5s"}, args...)
	go func() { done <- serve(ctx, args, out, logs) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("serve did not stop")
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1], logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every start records the catalogue it applies; an auditor reads, from the
// evidence log, which revision, origin, calendar years and holidays file
// each start ran with.
func TestServeRecordsCatalogInUse(t *testing.T) {
	dataDir := t.TempDir()
	_, stop := serveUntilListening(t, dataDir)
	stop()

	dir := exportTo(t)
	hol := writeTemp(t, holidays2027)
	base, stop := serveUntilListening(t, dataDir, "--catalog", dir, "--holidays", hol)
	defer stop()
	_, token := adminToken(t, base, dataDir)
	var page struct {
		Acts []struct {
			Act     string         `json:"act"`
			Actor   string         `json:"actor"`
			Target  string         `json:"target"`
			Details map[string]any `json:"details"`
		} `json:"acts"`
	}
	if code := getJSON(t, base, "/v1/admin/acts?limit=1000", token, &page); code != 200 {
		t.Fatalf("acts: %d", code)
	}
	var inUse []map[string]any
	for _, a := range page.Acts {
		if a.Act == "catalog_in_use" {
			if a.Actor != "credgate" || a.Target != a.Details["revision"] {
				t.Errorf("act %+v", a)
			}
			inUse = append(inUse, a.Details)
		}
	}
	if len(inUse) != 2 {
		t.Fatalf("%d catalog_in_use acts, want one per start", len(inUse))
	}
	bundled, _ := policy.BundledCatalog()
	first, second := inUse[0], inUse[1]
	if first["origin"] != "embedded" || first["revision"] != bundled.Revision() || first["holidays"] != nil {
		t.Errorf("first start: %v", first)
	}
	years := func(d map[string]any) []int {
		var out []int
		for _, y := range d["calendar_years"].([]any) {
			out = append(out, int(y.(float64)))
		}
		return out
	}
	if !slices.Equal(years(first), []int{2025, 2026}) || !slices.Equal(years(second), []int{2025, 2026, 2027}) {
		t.Errorf("calendar years %v then %v", years(first), years(second))
	}
	abs, _ := filepath.Abs(dir)
	sum := sha256.Sum256([]byte(holidays2027))
	h, _ := second["holidays"].(map[string]any)
	if second["origin"] != abs || second["revision"] == bundled.Revision() || h == nil ||
		h["digest"] != "sha256:"+hex.EncodeToString(sum[:]) || h["base_revision"] != bundled.Revision() || h["file"] != hol {
		t.Errorf("second start: %v", second)
	}
	// /v1/catalog shows the revision in use and the merged calendar.
	var catView struct {
		Revision string `json:"revision"`
		Calendar struct {
			Covers []int `json:"covers"`
		} `json:"calendar"`
	}
	if code := getJSON(t, base, "/v1/catalog", token, &catView); code != 200 || catView.Revision != second["revision"] || !slices.Contains(catView.Calendar.Covers, 2027) {
		t.Errorf("/v1/catalog: %d %+v", code, catView)
	}
}

// A bad catalogue stops serve and import before anything is written.
func TestBadCatalogueStopsBeforeWriting(t *testing.T) {
	t.Parallel()
	bad := exportTo(t)
	if err := os.WriteFile(filepath.Join(bad, "extra.yaml"), []byte("measures:\n  - id: x-01\n    list: no_such_list\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	err := serve(context.Background(), []string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--catalog", bad}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "extra.yaml") || !strings.Contains(err.Error(), `measure "x-01"`) {
		t.Fatalf("serve with a bad catalogue: %v", err)
	}
	imp := writeTemp(t, "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n")
	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, "--catalog", bad, "--format", "csv", imp}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "extra.yaml") {
		t.Fatalf("import with a bad catalogue: exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the data dir was created: %v", err)
	}
}
