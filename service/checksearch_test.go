package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// finder is a FollowUpStore that only searches checks: it notes the query.
type finder struct {
	service.FollowUpStore
	got   service.CheckQuery
	found []service.FoundCheck
}

func (f *finder) FindChecks(_ context.Context, q service.CheckQuery) ([]service.FoundCheck, error) {
	f.got = q
	return f.found, nil
}

func TestFindChecksDefaultsAndCursor(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	at := time.Date(2026, 3, 30, 8, 0, 0, 123456000, time.UTC)
	f := &finder{found: []service.FoundCheck{{CheckID: "c9", LogIndex: 9, CheckedAt: at}}}
	s := service.NewStats(nil, f, service.WithStatsClock(func() time.Time { return now }))
	page, err := s.FindChecks(t.Context(), service.CheckSearch{Partner: "p1", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !f.got.To.Equal(now) || !f.got.From.Equal(now.Add(-service.DefaultCheckWindow)) || f.got.Partner != "p1" || f.got.After != nil {
		t.Fatalf("query %+v", f.got)
	}
	if page.Next == "" {
		t.Fatal("a full page without next")
	}
	if _, err := s.FindChecks(t.Context(), service.CheckSearch{After: page.Next, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if c := f.got.After; c == nil || !c.CheckedAt.Equal(at) || c.Index != 9 {
		t.Fatalf("cursor read back as %+v", c)
	}
	if _, err := s.FindChecks(t.Context(), service.CheckSearch{Limit: 2}); err != nil || f.got.Limit != 2 {
		t.Fatal(err)
	}
	for _, r := range []service.CheckSearch{
		{Outcome: "denied"},
		{After: "!!"},
		{After: "MTIz"},
		{Limit: 1001},
		{From: now, To: now},
		{From: now.AddDate(-2, 0, 0), To: now},
	} {
		if _, err := s.FindChecks(t.Context(), r); !errors.Is(err, service.ErrInvalidCheckSearch) {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
