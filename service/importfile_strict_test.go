package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/strictjson"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// gbk is 重大事故 in GBK, as Excel on Chinese Windows saves a CSV file.
const gbk = "\xd6\xd8\xb4\xf3\xca\xc2\xb9\xca"

// TestImportFileRefusesWhatABodyWould: a line of an import file is read
// as strictly as a JSON body (a key twice, a key in another case, bytes
// that are not UTF-8, a lone surrogate) and as CSV must be UTF-8; one such
// line refuses the whole file, naming the line, and nothing is stored.
func TestImportFileRefusesWhatABodyWould(t *testing.T) {
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(service.NewAudit(app)))
	a := testenv.USCC(t, "91110000MA00MPRA0")
	b := testenv.USCC(t, "91110000MA00MPRB0")
	nd := func(subject, extra string) string {
		return fmt.Sprintf(`{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"有履行能力而拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"%s}`+"\n", subject, extra)
	}
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	row := func(subject, reason string) string {
		return fmt.Sprintf("%s,safety_production_blacklist,应急管理部,%s,《安全生产法》,2026-01-01,2026-01-02\n", subject, reason)
	}
	for _, tc := range []struct {
		name   string
		format service.ImportFormat
		file   string
		line   int
		kind   error
	}{
		{"ndjson key twice", service.FormatNDJSON, nd(a, "") + nd(b, fmt.Sprintf(`,"subject_id":%q`, a)), 2, strictjson.ErrDuplicateKey},
		{"ndjson key in another case", service.FormatNDJSON, nd(a, "") + strings.Replace(nd(b, ""), `"subject_id"`, `"Subject_ID"`, 1), 2, strictjson.ErrMalformed},
		{"ndjson not utf-8", service.FormatNDJSON, nd(a, "") + nd(b, `,"evidence_refs":["UTF`+"\xff"+`"]`), 2, strictjson.ErrInvalidUTF8},
		{"ndjson gbk", service.FormatNDJSON, nd(a, "") + strings.Replace(nd(b, ""), "有履行能力而拒不履行", gbk, 1), 2, strictjson.ErrInvalidUTF8},
		{"ndjson lone surrogate", service.FormatNDJSON, nd(a, "") + nd(b, `,"evidence_refs":["\ud800"]`), 2, strictjson.ErrInvalidUTF8},
		{"ndjson line too long", service.FormatNDJSON, nd(a, "") + nd(b, `,"evidence_refs":["`+strings.Repeat("x", 64<<10)+`"]`), 2, service.ErrLineTooLong},
		{"csv gbk field", service.FormatCSV, header + row(a, "重大事故") + row(b, gbk), 3, strictjson.ErrInvalidUTF8},
		{"csv gbk header", service.FormatCSV, strings.Replace(header, "reason", gbk, 1) + row(a, "重大事故"), 1, strictjson.ErrInvalidUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := entries.ImportFile(context.Background(), strings.NewReader(tc.file), tc.format, nil)
			var imp *service.ImportError
			if !errors.As(err, &imp) || len(imp.Lines) != 1 {
				t.Fatalf("want one bad line, got %v", err)
			}
			if l := imp.Lines[0]; l.Line != tc.line || !errors.Is(l.Err, tc.kind) {
				t.Fatalf("line %d: %v; want line %d, %v", l.Line, l.Err, tc.line, tc.kind)
			}
			if strings.Contains(imp.Lines[0].Err.Error(), "\xff") || strings.Contains(imp.Lines[0].Err.Error(), gbk) {
				t.Fatalf("the error repeats the bad bytes: %q", imp.Lines[0].Err)
			}
			for _, s := range []string{a, b} {
				es, err := st.ListEntries(context.Background(), service.EntryFilter{Subject: s, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(es) != 0 {
					t.Fatalf("a refused import stored %d entries of %s", len(es), s)
				}
			}
		})
	}

	// A UTF-8 byte order mark (Excel's "CSV UTF-8") is still accepted.
	res, err := entries.ImportFile(context.Background(), strings.NewReader("\ufeff"+header+row(a, "重大事故")), service.FormatCSV, nil)
	if err != nil || res.Count != 1 {
		t.Fatalf("UTF-8 with a BOM: %v, %+v", err, res)
	}
	es, err := st.ListEntries(context.Background(), service.EntryFilter{Subject: a, Limit: 10})
	if err != nil || len(es) != 1 || es[0].Reason != "重大事故" {
		t.Fatalf("stored %+v (%v)", es, err)
	}
}
