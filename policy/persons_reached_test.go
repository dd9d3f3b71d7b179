package policy

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// TestPersonsReachedThroughOrganisation checks, on the bundled catalogue,
// that the opinion's licensing and fiscal-funding measures (篇三 三(七))
// reach the persons responsible for a listed organisation in the roles
// the texts name, and no others. The acceptance format has no
// responsible-person role, so these cases are written here, each with
// the passage it comes from.
func TestPersonsReachedThroughOrganisation(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		source, list string
		role         Role
		action       string
		want         Outcome
		applied      []string // applied, reached through role
		notApplied   []string
	}{
		{
			source: `篇三 三(七) "…安全生产领域失信生产经营单位及其有关人员…严格限制申请财政性资金项目"; 篇十一 一 "法定代表人、主要负责人、分管安全的负责人、负有直接责任的有关人员"`,
			list:   "safety_production_blacklist", role: RoleLegalRepresentative, action: "fiscal_funding",
			want: OutcomeRestrict, applied: []string{"sp-p3-08-fiscal-funding"},
		},
		{
			source: `篇三 三(七) "…从严审核行政许可审批项目"; 篇十一 一 "分管安全的负责人"`,
			list:   "safety_production_blacklist", role: RoleSafetyHead, action: "administrative_licensing",
			want: OutcomeStrictReview, applied: []string{"sp-p3-02-licensing"},
		},
		{
			source: `篇十 第二条 names 实际控制人 for Jinan's coal mines only; 篇十一 一 does not`,
			list:   "safety_production_blacklist", role: RoleActualController, action: "fiscal_funding",
			notApplied: []string{"sp-p3-08-fiscal-funding"},
		},
		{
			source: `篇三 三(七) "对被列入…失信被执行人…等严重失信主体,…从严审核行政许可审批项目"; 篇三(十一) "法定代表人、主要负责人和其他负有直接责任人员"`,
			list:   "court_dishonest_debtor", role: RoleLegalRepresentative, action: "administrative_licensing",
			want: OutcomeStrictReview, applied: []string{"court-p3-02-licensing"},
		},
		{
			source: `篇三 三(七) "…严格限制申请财政性资金项目"; 篇五(十三) "其他负有直接责任人员"`,
			list:   "court_dishonest_debtor", role: RoleDirectlyResponsible, action: "fiscal_funding",
			want: OutcomeRestrict, applied: []string{"court-p3-08-fiscal-funding", "court-subsidy"},
		},
		{
			source: `篇三 三(七) names 高级管理人员 for honours only; 篇三(十一) does not name them`,
			list:   "court_dishonest_debtor", role: RoleSeniorManager, action: "administrative_licensing",
			want: OutcomeClear, notApplied: []string{"court-p3-02-licensing"},
		},
		{
			source: `篇三 三(七) "对被列入…重大税收违法案件当事人…等严重失信主体,…严格限制申请财政性资金项目"; 篇三(十一) "主要负责人"`,
			list:   "tax_major_violation", role: RolePrincipal, action: "fiscal_funding",
			// tax-fiscal-funding (篇五 三(九)) stays with the organisation.
			want: OutcomeRestrict, applied: []string{"tax-p3-08-fiscal-funding"}, notApplied: []string{"tax-fiscal-funding"},
		},
		{
			source: `篇三 三(七) "…从严审核行政许可审批项目"; 篇三(十一) "法定代表人"`,
			list:   "tax_major_violation", role: RoleLegalRepresentative, action: "administrative_licensing",
			want: OutcomeStrictReview, applied: []string{"tax-p3-02-licensing"},
		},
		{
			source: `篇三 三(七) "对被列入…严重违法失信企业…等严重失信主体,…严格限制申请财政性资金项目"; 篇三(十一) "法定代表人"`,
			list:   "serious_illegal_enterprise", role: RoleLegalRepresentative, action: "fiscal_funding",
			want: OutcomeRestrict, applied: []string{"sie-08-fiscal-funding"},
		},
		{
			source: `篇三 三(七) "…从严审核行政许可审批项目"; 篇三(十一) "其他负有直接责任人员"`,
			list:   "serious_illegal_enterprise", role: RoleDirectlyResponsible, action: "administrative_licensing",
			want: OutcomeStrictReview, applied: []string{"sie-02-licensing"},
		},
		{
			// persons_through_organization keeps the market ban on persons reached
			// through the enterprise (a person listed in his own name is not: acceptance
			// persons_reached.yaml).
			source: `篇三 三(七) "对严重失信企业及其法定代表人、主要负责人和对失信行为负有直接责任的注册执业人员等实施市场和行业禁入措施"`,
			list:   "tax_major_violation", role: RoleLegalRepresentative, action: "market_access",
			want: OutcomeProhibit, applied: []string{"tax-p3-11-market-ban"},
		},
		{
			source: `篇三 三(七) "及时撤销严重失信企业及其法定代表人、负责人、高级管理人员…的荣誉称号"`,
			list:   "court_dishonest_debtor", role: RoleSeniorManager, action: "honors",
			want: OutcomeProhibit, applied: []string{"court-p3-12-honors", "court-honors"},
		},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.list, tc.role, tc.action), func(t *testing.T) {
			e, err := c.PrepareEntry(Entry{
				ID: "via-1", Subject: acceptanceOrg, List: tc.list, OriginatingDepartment: "acceptance",
				Reason: tc.source, LegalBasis: tc.source,
				ResponsiblePersons: []ResponsiblePerson{{ID: acceptancePerson.Value, Role: tc.role}},
				DecidedAt:          acceptanceAt.AddDate(0, 0, -31), PublishedAt: acceptanceAt.AddDate(0, 0, -30),
			})
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decide(c, Query{Subject: acceptancePerson, Action: tc.action, At: acceptanceAt}, []Entry{e})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && d.Outcome != tc.want {
				t.Errorf("%s: outcome %s, want %s", tc.source, d.Outcome, tc.want)
			}
			applied := map[string]*Via{}
			for _, m := range d.Measures {
				if m.Status == MeasureApplied {
					applied[m.Measure.ID] = m.Via
				}
			}
			for _, id := range tc.applied {
				via, ok := applied[id]
				switch {
				case !ok:
					t.Errorf("%s: %s not applied (applied: %v)", tc.source, id, slices.Sorted(maps.Keys(applied)))
				case via == nil || via.Organization != acceptanceOrg.Value || via.Role != tc.role:
					t.Errorf("%s: %s reached through %+v, want %s of %s", tc.source, id, via, tc.role, acceptanceOrg.Value)
				}
			}
			for _, id := range tc.notApplied {
				if _, ok := applied[id]; ok {
					t.Errorf("%s: %s applied to a %s", tc.source, id, tc.role)
				}
			}
		})
	}
}
