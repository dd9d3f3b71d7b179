package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// FuzzCoverage feeds approvals files to coverage over a real store holding
// two checks: whatever the file, it is refused with a file error or
// answered with figures that add up, never a panic or a store error.
func FuzzCoverage(f *testing.F) {
	ctx := context.Background()
	cat, err := policy.BundledCatalog()
	if err != nil {
		f.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlitetest.Dir(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	at := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	for i, c := range []struct{ subject, outcome string }{{"91350100M000100Y43", "restrict"}, {"914403001922038216", "clear"}} {
		body := fmt.Sprintf(`{"check_id":"c%d","subject":{"id":%q,"kind":"organization"},"action":"government_procurement","outcome":%q,"measures":[],"context":{}}`,
			i, c.subject, c.outcome)
		r := evidence.Record{ID: fmt.Sprint("c", i), Kind: evidence.KindCheck, Partner: "p1", At: at, Body: []byte(body)}
		if err := r.Seal(); err != nil {
			f.Fatal(err)
		}
		if _, err := st.AppendBatch(ctx, []evidence.Record{r}); err != nil {
			f.Fatal(err)
		}
	}
	cov := service.NewCoverage(cat, st, nil)
	f.Add([]byte("subject_id,action,approved_at,reference\n91350100M000100Y43,government_procurement,2026-11-21T10:00:00+08:00,采购 1\n"))
	f.Add([]byte("subject_id,action,approved_at\n914403001922038216,government_procurement,2026-11-21T10:00:00Z\n"))
	f.Add([]byte("\ufeffsubject_id,action,approved_at\n\"91350100M000100Y43\",bank_credit,2026-11-21T10:00:00Z\nx,y\n"))
	f.Add([]byte("subject_id,action,approved_at\n\"unterminated,government_procurement,2026-11-21T10:00:00Z\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := cov.Run(ctx, bytes.NewReader(file), "", 30)
		if err != nil {
			if !errors.Is(err, service.ErrInvalidCoverage) && !errors.Is(err, service.ErrCoverageTooLarge) {
				t.Fatalf("not a file error: %v", err)
			}
			return
		}
		if rep.Checked+rep.NoCheck+rep.Invalid != rep.Rows || rep.Unexplained > rep.Checked {
			t.Fatalf("figures do not add up: %+v", rep)
		}
		if len(rep.Findings) > service.MaxCoverageFindings || int64(len(rep.Findings)) != min(rep.NoCheck+rep.Unexplained+rep.Invalid, service.MaxCoverageFindings) {
			t.Fatalf("%d findings for %+v", len(rep.Findings), rep)
		}
	})
}
