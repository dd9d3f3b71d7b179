package policy

import (
	"errors"
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

// TestSafetyBlacklistFollowsTheNationalRule: the national safety rule gives
// "联合惩戒和'黑名单'管理的期限为1年,自公布之日起计算" and exit at expiry on
// application (篇十二 第六条、第七条); the early repair (篇七 第五条(六)) and the
// red-list removal (篇七 第六条) are an xx市's own and bind no caller. So a
// repair applied for two days after publication is refused, entering the
// list removes no red entry, and the red entry's incentives are withheld,
// not removed, while the black entry is in force.
func TestSafetyBlacklistFollowsTheNationalRule(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	pub := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	prep := func(id, list string, at time.Time) Entry {
		e, err := c.PrepareEntry(Entry{ID: id, Subject: acceptanceOrg, List: list, OriginatingDepartment: "安监局",
			Reason: "事故", LegalBasis: "篇十二 第三条", DecidedAt: at, PublishedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	black := prep("blk1", "safety_production_blacklist", pub)
	_, err = c.ApplyRepair(black, "rep1", ApplicationInput{Grounds: "已整改"}, RepairHistory{Entries: []Entry{black}}, pub.AddDate(0, 0, 2))
	if !errors.Is(err, ErrRepairNotAllowed) {
		t.Errorf("repair two days after publication: %v, want ErrRepairNotAllowed", err)
	}
	red := prep("red1", "honest_exemplar_redlist", pub.AddDate(-1, 0, 0))
	changes, err := c.OnEnter(black, []Entry{red})
	if err != nil || len(changes) != 0 {
		t.Errorf("entering the safety black list changed %+v (%v), want nothing", changes, err)
	}
	d, err := Decide(c, Query{Subject: acceptanceOrg, Action: "bank_credit", At: pub.AddDate(0, 1, 0)}, []Entry{red, black})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range d.Measures {
		if m.Measure.Effect == EffectIncentive && m.Status == MeasureApplied {
			t.Errorf("incentive %s applied while the black entry is in force", m.Measure.ID)
		}
	}
}
