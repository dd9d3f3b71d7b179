package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// A decision cannot have been taken in the future: an entry whose
// decided_at is later than now (beyond DecisionSkew) is refused as an
// invalid entry by every door — create, patch, an upheld objection's
// correction, an import in memory and a streamed import file (naming the
// line, nothing kept) — while a publication date ahead (pending) is
// accepted, and so is a decision stamped within the skew.
func TestServiceRefusesDecisionInTheFuture(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		now := cstAt(2026, 3, 10, 9)
		w := newRevWorld(t, st, now)
		future := now.Add(2 * time.Hour)
		wantFuture := func(t *testing.T, what string, err error) {
			t.Helper()
			if !errors.Is(err, service.ErrDecidedInFuture) || !errors.Is(err, policy.ErrInvalidEntry) {
				t.Fatalf("%s: %v, want an invalid entry decided in the future", what, err)
			}
		}

		in := safetyEntry(future)
		in.DecidedAt = future
		_, err := w.entries.Create(ctx, in)
		wantFuture(t, "create", err)

		// Published later (pending) is fine; decided within the skew too.
		pending := safetyEntry(now.AddDate(0, 1, 0))
		pending.DecidedAt = now
		e, err := w.entries.Create(ctx, pending)
		if err != nil {
			t.Fatalf("pending entry: %v", err)
		}
		skewed := safetyEntry(now.Add(service.DecisionSkew))
		skewed.DecidedAt = now.Add(service.DecisionSkew)
		skewed.Subject = lcOrg2
		if _, err := w.entries.Create(ctx, skewed); err != nil {
			t.Fatalf("decided within the skew: %v", err)
		}

		_, err = w.entries.Patch(ctx, e.ID, service.EntryPatch{DecidedAt: &future}, 0)
		wantFuture(t, "patch", err)

		_, o, err := w.lifecycle.FileObjection(ctx, e.ID, service.ObjectionInput{FiledBy: "administrator", Grounds: "决定日期有误"})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = w.lifecycle.DecideObjection(ctx, o.ID, service.ObjectionDecisionInput{Decision: "upheld", Remedy: "corrected",
			Correction: &service.EntryPatch{DecidedAt: &future}})
		wantFuture(t, "correction", err)
		if got, _ := w.entries.Get(ctx, e.ID); got.OpenObjection() == nil || !got.DecidedAt.Equal(now) {
			t.Fatalf("a refused correction changed the entry: decided %v, objections %+v", got.DecidedAt, got.Objections)
		}

		good := safetyEntry(now.Add(-24 * time.Hour))
		good.Subject = lcOrg2
		_, err = w.entries.Import(ctx, []service.EntryInput{good, in}, []int{2, 3})
		var ie *service.ImportError
		if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 3 {
			t.Fatalf("import: %v", err)
		}
		wantFuture(t, "import line", ie.Lines[0].Err)

		header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
		row := func(subject string, decided time.Time) string {
			return fmt.Sprintf("%s,safety_production_blacklist,应急管理局,发生较大生产安全责任事故,《安全生产法》,%s,%s\n",
				subject, decided.Format(time.RFC3339), decided.AddDate(0, 0, 1).Format(time.RFC3339))
		}
		nd := func(subject string, decided time.Time) string {
			return fmt.Sprintf(`{"subject_id":%q,"list":"safety_production_blacklist","originating_department":"应急管理局","reason":"事故","legal_basis":"《安全生产法》","decided_at":%q,"published_at":%q}`+"\n",
				subject, decided.Format(time.RFC3339), decided.AddDate(0, 0, 1).Format(time.RFC3339))
		}
		for _, tc := range []struct {
			format service.ImportFormat
			file   string
			line   int
		}{
			{service.FormatCSV, header + row(lcOrg2, now.Add(-time.Hour)) + row(lcOrg2, future), 3},
			{service.FormatNDJSON, nd(lcOrg2, now.Add(-time.Hour)) + "\n" + nd(lcOrg2, future), 3},
		} {
			_, err := w.entries.ImportFile(ctx, strings.NewReader(tc.file), tc.format, nil)
			var ie *service.ImportError
			if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != tc.line {
				t.Fatalf("%s import file: %v", tc.format, err)
			}
			wantFuture(t, string(tc.format)+" import line", ie.Lines[0].Err)
		}
		if es, err := w.entries.List(ctx, service.EntryFilter{}); err != nil || len(es) != 2 {
			t.Fatalf("entries stored: %d, want the pending and the skewed one (%v)", len(es), err)
		}
	})
}
