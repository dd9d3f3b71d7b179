package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// CheckSearchStore is a store an auditor can search the checks of.
type CheckSearchStore interface {
	service.Store
	service.CheckFinder
}

// RunCheckSearch runs the conformance tests of the auditor's check search
// (GET /v1/admin/checks): filters, the half-open period, the order newest
// first and keyset pages.
func RunCheckSearch(t *testing.T, open func(t *testing.T) CheckSearchStore) {
	runEach(t, open, "CheckSearch/", []named[CheckSearchStore]{
		{"FiltersAndPages", testCheckSearch},
	})
}

func testCheckSearch(t *testing.T, s CheckSearchStore) {
	ctx := t.Context()
	h := func(n int) time.Time { return followUpBase.Add(time.Duration(n) * time.Hour) }
	// In log order; c3 and c4 share a time (one batch), c6 was answered
	// before c5 but appended after it.
	appendAll(t, s,
		checkBody("c0", "p1", "S1", "bank_credit", "clear", "440300", h(0)),
		checkBody("c1", "p1", "S2", "procurement", "restrict", "440300", h(1), "black"),
		checkBody("c2", "p2", "S1", "bank_credit", "restrict", "110000", h(2), "black"),
		checkBody("c3", "p1", "S3", "bank_credit", "restrict", "", h(3), "black"),
		checkBody("c4", "p1", "S4", "bank_credit", "clear", "", h(3)),
		checkBody("c5", "p1", "S5", "bank_credit", "clear", "", h(5)),
		checkBody("c6", "p1", "S6", "bank_credit", "clear", "", h(4)),
	)
	ids := func(q service.CheckQuery) []string {
		t.Helper()
		var out []string
		for range 10 {
			page, err := s.FindChecks(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				out = append(out, c.CheckID)
			}
			if len(page) < q.Limit {
				return out
			}
			last := page[len(page)-1]
			q.After = &service.CheckCursor{CheckedAt: last.CheckedAt, Index: last.LogIndex}
		}
		t.Fatalf("%+v: more than 10 pages", q)
		return nil
	}
	all := service.CheckQuery{From: h(0), To: h(6), Limit: 100}
	for _, tc := range []struct {
		name string
		edit func(*service.CheckQuery)
		want []string
	}{
		{"all", func(*service.CheckQuery) {}, []string{"c5", "c6", "c4", "c3", "c2", "c1", "c0"}},
		{"pages of 2", func(q *service.CheckQuery) { q.Limit = 2 }, []string{"c5", "c6", "c4", "c3", "c2", "c1", "c0"}},
		{"pages of 1", func(q *service.CheckQuery) { q.Limit = 1 }, []string{"c5", "c6", "c4", "c3", "c2", "c1", "c0"}},
		{"partner", func(q *service.CheckQuery) { q.Partner = "p2" }, []string{"c2"}},
		{"action", func(q *service.CheckQuery) { q.Action = "procurement" }, []string{"c1"}},
		{"outcome", func(q *service.CheckQuery) { q.Outcome = "restrict"; q.Limit = 1 }, []string{"c3", "c2", "c1"}},
		{"partner action outcome", func(q *service.CheckQuery) {
			q.Partner, q.Action, q.Outcome = "p1", "bank_credit", "clear"
		}, []string{"c5", "c6", "c4", "c0"}},
		{"half-open", func(q *service.CheckQuery) { q.From, q.To = h(1), h(3) }, []string{"c2", "c1"}},
		{"unknown partner", func(q *service.CheckQuery) { q.Partner = "nobody" }, nil},
	} {
		q := all
		tc.edit(&q)
		if got := ids(q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	page, err := s.FindChecks(ctx, service.CheckQuery{Partner: "p2", From: h(0), To: h(6), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := service.FoundCheck{CheckID: "c2", LogIndex: 2, Partner: "p2", Action: "bank_credit", Outcome: "restrict",
		Region: "110000", CheckedAt: stored(h(2))}
	if len(page) != 1 || page[0] != want {
		t.Fatalf("found %+v, want %+v", page, want)
	}
}
