package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	a := testenv.USCC(t, "91110000MA00CLRA0")
	b := testenv.USCC(t, "91110000MA00CLRB0")
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	line := func(s, list string) string {
		return fmt.Sprintf("%s,%s,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02\n", s, list)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dataDir := filepath.Join(dir, "data")
	count := func() int {
		st, err := sqlite.Open(context.Background(), dataDir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		es, err := st.ListEntries(context.Background(), service.EntryFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	// A file with bad lines: each reported with its number, nothing applied.
	badFile := write("bad.csv", header+line(a, "safety_production_blacklist")+line(b[:17]+"0", "safety_production_blacklist")+line(b, "no_such_list")+"x,y\n")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, badFile}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d for a bad file; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"bad.csv:3:", "bad.csv:4:", "bad.csv:5:", "nothing was imported"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("a rejected file left %d entries", n)
	}

	// A good file goes in whole.
	goodFile := write("good.csv", header+line(a, "safety_production_blacklist")+line(b, "court_dishonest_debtor"))
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, goodFile}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "imported 2 entries") {
		t.Fatalf("stdout %q", out.String())
	}
	if n := count(); n != 2 {
		t.Fatalf("%d entries after import, want 2", n)
	}

	if code := run(context.Background(), []string{"import", "--data-dir", dataDir, write("x.txt", "")}, &out, &errOut); code == 0 {
		t.Fatal("a file of unknown format was accepted")
	}
}
