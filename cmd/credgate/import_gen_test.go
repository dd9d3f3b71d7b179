package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
)

// The import file generator: deterministic, valid entries for measuring
// bulk loads of any size without committing the file. Entry i has a
// distinct USCC (genUSCC) and every tenth a legal representative with a
// distinct resident ID (genResidentID). Run it with
//
//	CREDGATE_GEN_IMPORT=/tmp/entries.csv CREDGATE_GEN_IMPORT_ENTRIES=10000000 \
//	    go test -count=1 -run '^TestGenerateImportFile$' ./cmd/credgate/

// genList is the generated entries' list: one without cross-list rules,
// so that an import streams it rather than holding it until the end.
const genList = "court_dishonest_debtor"

const genUSCCAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// genUSCC returns a valid unified social credit code for i < 31^7: a
// Beijing division, an organisation code with letters (never read as a
// resident ID) ending in i in base 31, and its GB 32100 check character.
func genUSCC(i int) string {
	var b [18]byte
	copy(b[:], "91110108MB")
	for k := 16; k >= 10; k-- {
		b[k] = genUSCCAlphabet[i%31]
		i /= 31
	}
	sum, w := 0, 1
	for k := range 17 {
		sum += indexUSCC(b[k]) * w
		w = w * 3 % 31
	}
	b[17] = genUSCCAlphabet[(31-sum%31)%31]
	return string(b[:])
}

func indexUSCC(c byte) int {
	for v := range len(genUSCCAlphabet) {
		if genUSCCAlphabet[v] == c {
			return v
		}
	}
	panic("indexUSCC: " + string(c))
}

// genResidentID returns a valid resident ID for i < 10^7: a Beijing
// division, a birth date in 1960-1999 spread by i, a sequence number from
// i, and its GB 11643 check character.
func genResidentID(i int) string {
	day := i % (40 * 365)
	birth := fmt.Sprintf("%04d%02d%02d", 1960+day/365, 1+day%365/31%12, 1+day%28)
	body := "110105" + birth + fmt.Sprintf("%03d", (i/(40*365))%1000)
	sum := 0
	for k := range 17 {
		sum += int(body[k]-'0') * ((1 << (17 - k)) % 11)
	}
	for a := range 11 {
		if (sum+a)%11 == 1 {
			if a == 10 {
				return body + "X"
			}
			return body + strconv.Itoa(a)
		}
	}
	panic("unreachable")
}

// writeGenEntries writes n generated entries as an import CSV.
func writeGenEntries(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	fmt.Fprintln(bw, "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at,responsible_persons")
	for i := range n {
		persons := ""
		if i%10 == 0 {
			persons = "legal_representative:" + genResidentID(i/10)
		}
		fmt.Fprintf(bw, "%s,%s,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02,%s\n", genUSCC(i), genList, persons)
	}
	return bw.Flush()
}

// TestGenerateImportFile writes the file named by CREDGATE_GEN_IMPORT with
// CREDGATE_GEN_IMPORT_ENTRIES entries (default 1,000,000); it skips
// without them.
func TestGenerateImportFile(t *testing.T) {
	path := os.Getenv("CREDGATE_GEN_IMPORT")
	if path == "" {
		t.Skip("CREDGATE_GEN_IMPORT names no file to write")
	}
	n := 1_000_000
	if v := os.Getenv("CREDGATE_GEN_IMPORT_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("CREDGATE_GEN_IMPORT_ENTRIES=%q: a positive count", v)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeGenEntries(f, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d entries to %s", n, path)
}

// TestGeneratedEntriesValid: the generator's identifiers pass credgate's
// own validation and are distinct, and its list streams.
func TestGeneratedEntriesValid(t *testing.T) {
	for _, i := range []int{0, 30, 31, 961, 999_999, 9_999_999, 27_512_614} {
		s := genUSCC(i)
		if id, err := policy.ParseUSCC(s); err != nil || id.Value != s {
			t.Fatalf("genUSCC(%d) = %s: %v", i, s, err)
		}
	}
	seen := map[string]bool{}
	for i := range 20_000 {
		s := genUSCC(i)
		if seen[s] {
			t.Fatalf("genUSCC(%d) = %s repeats", i, s)
		}
		seen[s] = true
		r := genResidentID(i * 37)
		if id, err := policy.ParseResidentID(r); err != nil || id.Value != r {
			t.Fatalf("genResidentID(%d) = %s: %v", i*37, r, err)
		}
	}
	for _, i := range []int{0, 14_599, 14_600, 999_999} {
		if _, err := policy.ParseResidentID(genResidentID(i)); err != nil {
			t.Fatalf("genResidentID(%d): %v", i, err)
		}
	}
	if genResidentID(0) == genResidentID(14_600) {
		t.Fatal("genResidentID repeats across birth-date cycles")
	}
	cat, err := loadCatalog(config.Catalog{})
	if err != nil {
		t.Fatal(err)
	}
	if cat.CrossListInvolved(genList) {
		t.Fatalf("%s has cross-list rules: its entries would be held in memory", genList)
	}
}

// TestImportPostgresAllOrNothing: on PostgreSQL a load copies straight into
// entries in its own transaction. A file whose last line is bad leaves
// nothing (entries, history, outbox, person links, change log); the good
// file, past the size at which the change log stops taking a row per
// subject, loads whole and marks the change log pruned past itself, so
// that every cache drops everything.
func TestImportPostgresAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 120,000 entries")
	}
	longTest(t)
	url := testenv.FreshDatabase(t, "credgate_import_aon")
	dir := t.TempDir()
	const n = 120_000
	bad := filepath.Join(dir, "bad.csv")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeGenEntries(f, n); err != nil {
		t.Fatal(err)
	}
	wrong := genUSCC(n)
	wrong = wrong[:17] + map[bool]string{true: "1", false: "0"}[wrong[17] == '0']
	fmt.Fprintf(f, "%s,%s,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02,\n", wrong, genList)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := []string{"import", "--postgres-url", url, "--data-dir", filepath.Join(dir, "data")}
	if code := run(t.Context(), append(args, bad), &out, &errOut); code != 1 {
		t.Fatalf("exit %d for a file whose last line is bad; stderr:\n%s", code, errOut.String())
	}
	if want := fmt.Sprintf("bad.csv:%d:", n+2); !strings.Contains(errOut.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, errOut.String())
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func(table string) int64 {
		t.Helper()
		var c int64
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, table := range []string{"entries", "entry_versions", "entry_persons", "event_outbox", "subject_changes"} {
		if c := count(table); c != 0 {
			t.Errorf("a rejected file left %d rows in %s", c, table)
		}
	}
	var pruned string
	if err := conn.QueryRow(t.Context(), "SELECT xid::text FROM subject_changes_pruned").Scan(&pruned); err != nil || pruned != "0" {
		t.Fatalf("a rejected file moved the change log's pruned mark: %s, %v", pruned, err)
	}

	good := filepath.Join(dir, "good.csv")
	f, err = os.Create(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeGenEntries(f, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), append(args, good), &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	for table, want := range map[string]int64{"entries": n, "entry_versions": n, "event_outbox": n, "entry_persons": n / 10} {
		if c := count(table); c != want {
			t.Errorf("%s: %d rows after the import, want %d", table, c, want)
		}
	}
	if c := count("subject_changes"); c >= n {
		t.Errorf("%d change rows for %d entries: the change log was not skipped past its size", c, n)
	}
	if err := conn.QueryRow(t.Context(), "SELECT xid::text FROM subject_changes_pruned").Scan(&pruned); err != nil || pruned == "0" {
		t.Fatalf("the change log's pruned mark after a large load: %s, %v", pruned, err)
	}
}
