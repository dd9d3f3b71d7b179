package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/strictjson"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestImportFileRefusesControlCharacters: a CSV field or header holding
// NUL or another control character (not tab, line feed, carriage return)
// refuses the file at its line, as a JSON body holding one is refused, on
// both stores: PostgreSQL cannot store U+0000, and the import failed there
// with a 500 while SQLite stored it. Nothing is stored.
func TestImportFileRefusesControlCharacters(t *testing.T) {
	eachNarrowStore(t, func(t *testing.T, w *narrowWorld) {
		a := testenv.USCC(t, "91110000MA00MPRA0")
		b := testenv.USCC(t, "91110000MA00MPRB0")
		header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
		row := func(subject, reason string) string {
			return fmt.Sprintf("%s,safety_production_blacklist,应急管理部,%s,《安全生产法》,2026-01-01,2026-01-02\n", subject, reason)
		}
		for _, tc := range []struct {
			name string
			file string
			line int
		}{
			{"nul in reason", header + row(a, "重大事故") + row(b, "重大\x00事故"), 3},
			{"escape in reason", header + row(a, "重大事故") + row(b, "重大\x1b[31m事故"), 3},
			{"nul in header", strings.Replace(header, "reason", "reason\x00", 1) + row(a, "重大事故"), 1},
		} {
			_, err := w.entries.ImportFile(context.Background(), strings.NewReader(tc.file), service.FormatCSV, nil)
			var imp *service.ImportError
			if !errors.As(err, &imp) || len(imp.Lines) != 1 {
				t.Fatalf("%s: want one bad line, got %v", tc.name, err)
			}
			if l := imp.Lines[0]; l.Line != tc.line || !errors.Is(l.Err, strictjson.ErrControlCharacter) {
				t.Fatalf("%s: line %d: %v; want line %d, a control character", tc.name, l.Line, l.Err, tc.line)
			}
			for _, s := range []string{a, b} {
				es, err := w.store.ListEntries(context.Background(), service.EntryFilter{Subject: s, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(es) != 0 {
					t.Fatalf("%s: a refused import stored %d entries of %s", tc.name, len(es), s)
				}
			}
		}
		// Tab, line feed (in a quoted field) and carriage return are text.
		res, err := w.entries.ImportFile(context.Background(), strings.NewReader(header+row(a, "\"重大\t事故\n第二行\"")), service.FormatCSV, nil)
		if err != nil || res.Count != 1 {
			t.Fatalf("a reason with tab and line feed: %v, %+v", err, res)
		}
	})
}

// TestPartnerNameRefusesControlCharacters: a partner's name holding NUL or
// another control character is refused at registration and on rename,
// from the console as from the API, on both stores (PostgreSQL could not
// store U+0000 and failed with a 500).
func TestPartnerNameRefusesControlCharacters(t *testing.T) {
	eachNarrowStore(t, func(t *testing.T, w *narrowWorld) {
		for _, name := range []string{"某\x00银行", "某\x1b[2J银行"} {
			_, _, err := w.partners.Create(context.Background(), service.NewPartnerInput{Name: name, Role: service.RoleAdmin})
			if !errors.Is(err, service.ErrInvalidPartner) || !strings.Contains(err.Error(), "name ") {
				t.Fatalf("create named %q: %v, want ErrInvalidPartner naming the name", name, err)
			}
		}
		p := w.fullPartner("某银行")
		bad := "某\x00银行"
		if _, err := w.partners.Update(context.Background(), p.ClientID, service.PartnerPatch{Name: &bad}); !errors.Is(err, service.ErrInvalidPartner) {
			t.Fatalf("rename: %v, want ErrInvalidPartner", err)
		}
	})
}
