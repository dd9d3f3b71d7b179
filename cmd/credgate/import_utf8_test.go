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

// TestImportCommandRefusesNonUTF8: a file saved in GBK (as Excel on
// Chinese Windows saves CSV) is refused with the line, not stored as
// mojibake; so is an NDJSON line with a key twice.
func TestImportCommandRefusesNonUTF8(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	a := testenv.USCC(t, "91110000MA00CLRA0")
	const gbk = "\xd6\xd8\xb4\xf3\xca\xc2\xb9\xca" // 重大事故
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	ndjson := fmt.Sprintf(`{"subject_id":%q,"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"}`+"\n", a, a)
	for name, content := range map[string]string{
		"gbk.csv":      header + a + ",safety_production_blacklist,应急管理部," + gbk + ",《安全生产法》,2026-01-01,2026-01-02\n",
		"dup.ndjson":   "\n" + ndjson,
		"latin1.jsonl": "\n" + strings.Replace(ndjson, "拒不履行", "\xe9t\xe9", 1),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"import", "--data-dir", dataDir, p}, &out, &errOut); code != 1 {
			t.Fatalf("%s: exit %d; stderr:\n%s", name, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), name+":2:") || strings.Contains(errOut.String(), gbk) {
			t.Errorf("%s: stderr does not name line 2, or repeats the bytes:\n%s", name, errOut.String())
		}
	}
	st, err := sqlite.Open(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if es, err := st.ListEntries(context.Background(), service.EntryFilter{Limit: 10}); err != nil || len(es) != 0 {
		t.Fatalf("refused files left %d entries (%v)", len(es), err)
	}
}
