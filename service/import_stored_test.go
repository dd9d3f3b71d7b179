package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// A file imported a second time (a department re-running yesterday's
// import, a client retrying an import whose answer it lost) is refused
// whole, on either store: each line that repeats a stored entry (the same
// subject, list, originating department and decided_at, however the time
// is written; revoked or not) is an invalid entry naming the stored
// entry's id, lines of streamed lists and of lists with cross-list rules
// (held to the end) alike. Nothing of the file is kept, and no import
// act is recorded for it. Two imports of one new file at once store it
// once.
func TestServiceImportRefusesStoredEntries(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 6, 1, 9))
		const (
			court  = "court_dishonest_debtor"      // streamed
			safety = "safety_production_blacklist" // held: cross-list rules
		)
		header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
		row := func(subject, list, dept, decided string) string {
			return fmt.Sprintf("%s,%s,%s,事由,依据,%s,2026-05-20\n", subject, list, dept, decided)
		}
		first := header +
			row(lcOrg, court, "某法院", "2026-05-10") +
			"\n" +
			row(lcOrg2, court, "某法院", "2026-05-10") +
			row(lcOrg, safety, "应急管理局", "2026-05-11")
		res, err := w.entries.ImportFile(ctx, strings.NewReader(first), service.FormatCSV, nil)
		if err != nil || res.Count != 3 {
			t.Fatalf("first import: %+v %v", res, err)
		}
		ids := res.IDs // in line order: lines 2, 4, 5
		if _, err := w.entries.Revoke(ctx, ids[1], "异议成立"); err != nil {
			t.Fatal(err)
		}
		imports := func() int {
			n := 0
			for _, b := range w.audit.bodies(t) {
				if b.Act == service.ActEntriesImported {
					n++
				}
			}
			return n
		}
		acts := imports()

		nd := func(subject, list, dept, decided string) string {
			return fmt.Sprintf(`{"subject_id":%q,"list":%q,"originating_department":%q,"reason":"另一事由","legal_basis":"依据","decided_at":%q,"published_at":"2026-05-20T00:00:00+08:00"}`+"\n",
				subject, list, dept, decided)
		}
		for _, tc := range []struct {
			name   string
			format service.ImportFormat
			file   string
			want   [][2]any // line, the stored id it names
		}{
			{"the same file", service.FormatCSV, first, [][2]any{{2, ids[0]}, {4, ids[1]}, {5, ids[2]}}},
			{"the same decisions, other times and text, and a new one", service.FormatNDJSON,
				nd(lcOrg, court, " 某法院 ", "2026-05-09T16:00:00Z") +
					nd(lcOrg, court, "某法院", "2026-05-12T00:00:00+08:00") +
					nd(lcOrg, safety, "应急管理局", "2026-05-11T00:00:00+08:00"),
				[][2]any{{1, ids[0]}, {3, ids[2]}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := w.entries.ImportFile(ctx, strings.NewReader(tc.file), tc.format, nil)
				var ie *service.ImportError
				if !errors.As(err, &ie) || len(ie.Lines) != len(tc.want) {
					t.Fatalf("want %d lines naming stored entries, got %v", len(tc.want), err)
				}
				for i, l := range ie.Lines {
					if l.Line != tc.want[i][0] || !errors.Is(l.Err, service.ErrDuplicateEntry) || !errors.Is(l.Err, policy.ErrInvalidEntry) ||
						!strings.Contains(l.Err.Error(), tc.want[i][1].(string)) {
						t.Errorf("line %d: %v; want line %d naming %s", l.Line, l.Err, tc.want[i][0], tc.want[i][1])
					}
				}
				if es, err := w.entries.List(ctx, service.EntryFilter{}); err != nil || len(es) != 3 {
					t.Fatalf("a refused file changed the entries: %d (%v)", len(es), err)
				}
				if n := imports(); n != acts {
					t.Fatalf("%d import acts after a refused file, want %d", n, acts)
				}
			})
		}

		// Two imports of one new file at once: one stores it, the other
		// waits for it and is refused.
		again := header + row(lcOrg2, court, "某法院", "2026-05-13") + row(lcOrg2, safety, "应急管理局", "2026-05-13")
		var (
			wg     sync.WaitGroup
			errs   [2]error
			counts [2]int64
		)
		for i := range 2 {
			wg.Go(func() {
				r, err := w.entries.ImportFile(ctx, strings.NewReader(again), service.FormatCSV, nil)
				errs[i], counts[i] = err, r.Count
			})
		}
		wg.Wait()
		ok, refused := 0, 0
		for i, err := range errs {
			var ie *service.ImportError
			switch {
			case err == nil && counts[i] == 2:
				ok++
			case errors.As(err, &ie) && len(ie.Lines) == 2 && errors.Is(ie.Lines[0].Err, service.ErrDuplicateEntry):
				refused++
			default:
				t.Errorf("import %d: %d, %v", i, counts[i], err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("two imports of one file at once: %d stored, %d refused; want 1 and 1", ok, refused)
		}
		if es, err := w.entries.List(ctx, service.EntryFilter{}); err != nil || len(es) != 5 {
			t.Fatalf("after two imports of one file at once: %d entries (%v), want 5", len(es), err)
		}
	})
}
