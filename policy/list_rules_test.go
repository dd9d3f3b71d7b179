package policy

import (
	"testing"
	"time"
)

// TestUrbanGeneralRecordLapsesAfterFiveYears: 篇十三 第十六条 "对不申请信用修复
// 的失信主体,其失信信息将自公布之日起满五年自动撤销" covers a general-level
// record as well, so an entry recorded in 2015 no longer stands against the
// green channel's 连续三年无不良信用记录 (篇三 二(一)) in 2026, while one
// recorded in 2022 still does.
func TestUrbanGeneralRecordLapsesAfterFiveYears(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		published time.Time
		want      MeasureStatus
	}{
		{time.Date(2015, 3, 1, 0, 0, 0, 0, time.UTC), MeasureApplied},
		{time.Date(2022, 3, 1, 0, 0, 0, 0, time.UTC), MeasureNotApplicable},
	} {
		e, err := c.PrepareEntry(Entry{
			ID: "ug-1", Subject: acceptancePerson, List: "urban_management_general", OriginatingDepartment: "城管局",
			Reason: "擅自占道经营", LegalBasis: "篇十三 第六条", DecidedAt: tc.published, PublishedAt: tc.published,
		})
		if err != nil {
			t.Fatal(err)
		}
		if e.ValidUntil == nil || !e.ValidUntil.Equal(tc.published.AddDate(5, 0, 0)) {
			t.Errorf("published %s: valid until %v, want five years later", tc.published.Format(time.DateOnly), e.ValidUntil)
		}
		d, err := Decide(c, Query{Subject: acceptancePerson, Action: "administrative_licensing", At: acceptanceAt}, []Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		got := MeasureStatus("")
		for _, m := range d.Measures {
			if m.Measure.ID == "red-p3-01-green-channel" {
				got = m.Status
			}
		}
		if got != tc.want {
			t.Errorf("published %s: red-p3-01-green-channel %q, want %q (%+v)", tc.published.Format(time.DateOnly), got, tc.want, d.Measures)
		}
	}
}
