package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// writeEntriesCSV writes an import file of n entries on distinct subjects
// (benchSubject 0..n-1); a line number badAt > 0 gets a subject with a
// wrong check character.
func writeEntriesCSV(tb testing.TB, path string, n, badAt int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at,responsible_persons")
	for i := range n {
		s, err := benchSubject(i)
		if err != nil {
			tb.Fatal(err)
		}
		if i+2 == badAt {
			s = s[:17] + map[bool]string{true: "1", false: "0"}[s[17] == '0']
		}
		persons := ""
		if i%10 == 0 {
			persons = "legal_representative:11010519491231002X"
		}
		fmt.Fprintf(w, "%s,court_dishonest_debtor,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02,%s\n", s, persons)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestImportCommandStreamsAllOrNothing: on SQLite a file past several
// staged chunks streams in whole; the same kind of file with one bad line
// near its end leaves nothing, and the bad line is named. A file past the
// former 100,000-line cap is TestImportPostgresAllOrNothing's (120,000
// lines): the cap was the shared reader's, and SQLite under the race
// detector, which instruments the whole database engine, took over four
// minutes of every CI run to load 100,001 lines here.
func TestImportCommandStreamsAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 30,001 entries")
	}
	longTest(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	const n = 30_001
	bad := filepath.Join(dir, "bad.csv")
	// Past two staged chunks, so that staged rows are discarded.
	const nBad = 25_000
	writeEntriesCSV(t, bad, nBad, nBad-5)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, bad}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d for a bad file; stderr:\n%s", code, errOut.String())
	}
	if want := "bad.csv:" + strconv.Itoa(nBad-5) + ":"; !strings.Contains(errOut.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, errOut.String())
	}
	if got := countEntries(t, dataDir); got != 0 {
		t.Fatalf("a rejected file left %d entries", got)
	}

	good := filepath.Join(dir, "good.csv")
	writeEntriesCSV(t, good, n, 0)
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, good}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if want := fmt.Sprintf("imported %d entries", n); !strings.Contains(out.String(), want) {
		t.Fatalf("stdout %q, want %q", out.String(), want)
	}
	// Not a terminal: plain progress lines, not a bar.
	if strings.Contains(errOut.String(), "\r") {
		t.Fatalf("carriage returns in a non-terminal's progress: %q", errOut.String())
	}
	if got := countEntries(t, dataDir); got != n {
		t.Fatalf("%d entries after the import, want %d", got, n)
	}
}

func countEntries(t *testing.T, dataDir string) int {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	after := ""
	for {
		es, err := st.ListEntries(context.Background(), listAfter(after))
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
		if len(es) == 0 {
			return n
		}
		after = es[len(es)-1].ID
	}
}

// BenchmarkImportPostgres imports a file of CREDGATE_BENCH_IMPORT_ENTRIES
// entries (default 200,000) with `credgate import` into a fresh PostgreSQL
// database, and reports entries per second. docs/PERFORMANCE.md records
// the 10,000,000-entry run.
func BenchmarkImportPostgres(b *testing.B) {
	n := 200_000
	if v := os.Getenv("CREDGATE_BENCH_IMPORT_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	file := filepath.Join(b.TempDir(), "entries.csv")
	writeEntriesCSV(b, file, n, 0)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		url := testenv.FreshDatabase(b, "credgate_import")
		b.StartTimer()
		start := time.Now()
		var out, errOut bytes.Buffer
		if code := run(b.Context(), []string{"import", "--postgres-url", url, "--data-dir", b.TempDir(), file}, &out, &errOut); code != 0 {
			b.Fatalf("exit %d: %s", code, errOut.String())
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "entries/s")
}

func listAfter(after string) service.EntryFilter {
	return service.EntryFilter{After: after, Limit: service.MaxPage}
}
