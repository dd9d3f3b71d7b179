package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// One import file that lists the same entry twice (the same subject,
// list, originating department and decided_at, however the time is
// written) is refused whole, naming both lines, as an invalid entry, on
// either store, in either format and through either door; nothing is
// kept. The same subject on the same list by another decision (another
// day, another department) is not a duplicate.
func TestServiceImportRefusesDuplicateLines(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 6, 1, 9))
		header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
		row := func(subject, list, dept, decided, reason string) string {
			return fmt.Sprintf("%s,%s,%s,%s,依据,%s,2026-05-20\n", subject, list, dept, reason, decided)
		}
		nd := func(subject, list, dept, decided, reason string) string {
			return fmt.Sprintf(`{"subject_id":%q,"list":%q,"originating_department":%q,"reason":%q,"legal_basis":"依据","decided_at":%q,"published_at":"2026-05-20T00:00:00+08:00"}`+"\n",
				subject, list, dept, reason, decided)
		}
		const (
			court  = "court_dishonest_debtor"
			safety = "safety_production_blacklist"
		)
		for _, tc := range []struct {
			name   string
			format service.ImportFormat
			file   string
			lines  [][2]int // bad line, the earlier line it names
		}{
			{"csv identical rows", service.FormatCSV, header +
				row(lcOrg, court, "某法院", "2026-05-10", "拒不履行") +
				row(lcOrg2, court, "某法院", "2026-05-10", "拒不履行") +
				row(lcOrg, court, "某法院", "2026-05-10", "拒不履行"), [][2]int{{4, 2}}},
			{"csv same decision, other reason and time zone", service.FormatCSV, header +
				row(lcOrg, safety, "应急管理局", "2026-05-10", "事故") +
				"\n" +
				row(lcOrg, safety, " 应急管理局 ", "2026-05-09T16:00:00Z", "另一事由"), [][2]int{{4, 2}}},
			{"ndjson, twice repeated", service.FormatNDJSON,
				nd(lcOrg, court, "某法院", "2026-05-10T00:00:00+08:00", "拒不履行") +
					nd(lcOrg2, court, "某法院", "2026-05-10T00:00:00+08:00", "拒不履行") +
					nd(lcOrg, court, "某法院", "2026-05-10T00:00:00+08:00", "拒不履行") +
					nd(lcOrg, court, "某法院", "2026-05-09T16:00:00Z", "拒不履行"), [][2]int{{3, 1}, {4, 1}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := w.entries.ImportFile(ctx, strings.NewReader(tc.file), tc.format, nil)
				wantDuplicates(t, err, tc.lines)
				inputs, lines, bad, err := service.ParseImport(strings.NewReader(tc.file), tc.format, nil)
				if err != nil || len(bad) != 0 {
					t.Fatalf("parse: %v %v", err, bad)
				}
				_, err = w.entries.Import(ctx, inputs, lines)
				wantDuplicates(t, err, tc.lines)
				if es, err := w.entries.List(ctx, service.EntryFilter{}); err != nil || len(es) != 0 {
					t.Fatalf("a refused file stored %d entries (%v)", len(es), err)
				}
			})
		}

		// Other decisions about the same subject and list are not duplicates.
		file := header +
			row(lcOrg, court, "某法院", "2026-05-10", "拒不履行") +
			row(lcOrg, court, "某法院", "2026-05-11", "拒不履行") +
			row(lcOrg, court, "另一法院", "2026-05-10", "拒不履行") +
			row(lcOrg2, court, "某法院", "2026-05-10", "拒不履行")
		res, err := w.entries.ImportFile(ctx, strings.NewReader(file), service.FormatCSV, nil)
		if err != nil || res.Count != 4 {
			t.Fatalf("distinct decisions: %+v %v", res, err)
		}
	})
}

func wantDuplicates(t *testing.T, err error, want [][2]int) {
	t.Helper()
	var ie *service.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != len(want) {
		t.Fatalf("want %d duplicate lines, got %v", len(want), err)
	}
	for i, l := range ie.Lines {
		if l.Line != want[i][0] || !errors.Is(l.Err, service.ErrDuplicateEntry) || !errors.Is(l.Err, policy.ErrInvalidEntry) ||
			!strings.Contains(l.Err.Error(), fmt.Sprintf("line %d", want[i][1])) {
			t.Fatalf("line %d: %v; want line %d, a duplicate of line %d", l.Line, l.Err, want[i][0], want[i][1])
		}
	}
}
