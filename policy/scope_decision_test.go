package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// scopeCatalogYAML adds to testCatalogYAML measures scoped by region,
// industry, subject type and employer type, an eligibility measure and the
// vocabularies they name.
const scopeCatalogYAML = `
regions:
  - {code: "370000", name: 山东省}
  - {code: "370100", name: 济南市}
industries:
  - {id: coal_mining, name: 煤矿, source: 篇十}
  - {id: construction, name: 建设工程}
subject_types:
  - {id: state_owned_enterprise, name: 国有企业}
employer_types:
  - {id: public_institution, name: 事业单位}
`

const scopeMeasuresYAML = `
  - {id: m-jinan, list: black, actions: [government_procurement], effect: prohibit, mandatory: true, applies_to: [organization], text: 济南, legal_basis: 法, authority: 济南市, source: 篇十, scope: {regions: ["370100"], source: 篇十 济南市}}
  - {id: m-coal, list: black, actions: [government_procurement], effect: strict_review, mandatory: true, applies_to: [organization], text: 煤矿, legal_basis: 法, authority: 部, source: 篇十, scope: {industries: [coal_mining], source: 煤矿企业}}
  - {id: m-soe, list: black, actions: [executive_appointment], effect: restrict, mandatory: true, applies_to: [person], text: 国企高管, legal_basis: 法, authority: 部, source: 篇五, scope: {subject_types: [state_owned_enterprise], source: 国企}}
  - {id: m-emp, list: attention, actions: [honors], effect: reference, mandatory: false, applies_to: [organization], text: 事业单位, legal_basis: 法, authority: 部, source: test, scope: {employer_types: [public_institution], source: test}}
  - {id: m-green, list: red, actions: [administrative_licensing], effect: incentive, mandatory: false, applies_to: [organization, person], text: 容缺受理, legal_basis: 法, authority: 部, source: 篇五 二(二), eligibility: {clean_record_years: 3, source: 篇五 二(二) 连续三年无不良信用记录}}
  - {id: m-green-jinan, list: red, actions: [administrative_licensing], effect: incentive, mandatory: false, applies_to: [organization], text: 绿色通道, legal_basis: 法, authority: 济南市, source: 篇十, scope: {regions: ["370100"], source: 篇十 济南市}, eligibility: {clean_record_years: 3, source: 篇十}}
  - {id: m-lic, list: black, actions: [administrative_licensing], effect: restrict, mandatory: true, applies_to: [organization], text: 限制许可, legal_basis: 法, authority: 部, source: test}
`

func scopeCatalog(t testing.TB) *Catalog {
	t.Helper()
	yaml := strings.Replace(testCatalogYAML, "actions:\n", "actions:\n  - {id: administrative_licensing, name: 行政许可}\n", 1)
	c, err := LoadCatalog(mapFS(scopeCatalogYAML + yaml + scopeMeasuresYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func measureOf(t *testing.T, d Decision, id string) AppliedMeasure {
	t.Helper()
	for _, m := range d.Measures {
		if m.Measure.ID == id {
			return m
		}
	}
	t.Fatalf("measure %s not in the decision: %+v", id, d.Measures)
	return AppliedMeasure{}
}

func TestDecideScope(t *testing.T) {
	c := scopeCatalog(t)
	black := entry("e1", "black", org, day0, c)
	at := day0.AddDate(0, 1, 0)
	q := func(ctx CheckContext) Query {
		return Query{Subject: org, Action: "government_procurement", At: at, Context: ctx}
	}
	for _, tc := range []struct {
		name      string
		ctx       CheckContext
		want      Outcome
		statuses  map[string]MeasureStatus
		reasonHas map[string]string
	}{
		{"no region: national only", CheckContext{}, OutcomeRestrict,
			map[string]MeasureStatus{"m-proc": MeasureApplied, "m-jinan": MeasureNotApplicable, "m-coal": MeasureNotApplicable},
			map[string]string{"m-jinan": "applies only in 370100 济南市; the caller has no region", "m-coal": "applies only to industry coal_mining 煤矿; the check states no industry"}},
		{"Shenzhen caller", CheckContext{Region: "440300"}, OutcomeRestrict,
			map[string]MeasureStatus{"m-proc": MeasureApplied, "m-jinan": MeasureNotApplicable},
			map[string]string{"m-jinan": "applies only in 370100 济南市; the caller's region is 440300"}},
		{"Jinan caller", CheckContext{Region: "370100"}, OutcomeProhibit,
			map[string]MeasureStatus{"m-proc": MeasureApplied, "m-jinan": MeasureApplied}, nil},
		{"a district of Jinan", CheckContext{Region: "370102"}, OutcomeProhibit,
			map[string]MeasureStatus{"m-jinan": MeasureApplied}, nil},
		{"the province around Jinan is wider than Jinan", CheckContext{Region: "370000"}, OutcomeRestrict,
			map[string]MeasureStatus{"m-jinan": MeasureNotApplicable}, nil},
		{"Qingdao is not Jinan", CheckContext{Region: "370200"}, OutcomeRestrict,
			map[string]MeasureStatus{"m-jinan": MeasureNotApplicable}, nil},
		{"another industry", CheckContext{Industry: "construction"}, OutcomeRestrict,
			map[string]MeasureStatus{"m-coal": MeasureNotApplicable},
			map[string]string{"m-coal": "the check states construction"}},
		{"coal mining", CheckContext{Industry: "coal_mining"}, OutcomeRestrict,
			map[string]MeasureStatus{"m-coal": MeasureApplied}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(c, q(tc.ctx), []Entry{black})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", d.Outcome, tc.want)
			}
			for id, st := range tc.statuses {
				if m := measureOf(t, d, id); m.Status != st {
					t.Errorf("%s: status %s, want %s (%s)", id, m.Status, st, m.Reason)
				}
			}
			for id, r := range tc.reasonHas {
				if m := measureOf(t, d, id); !strings.Contains(m.Reason, r) {
					t.Errorf("%s: reason %q does not say %q", id, m.Reason, r)
				}
			}
			for _, m := range d.Measures {
				if m.Status == MeasureApplied && m.Reason != "" {
					t.Errorf("%s applied with a reason %q", m.Measure.ID, m.Reason)
				}
			}
		})
	}

	// Only applied measures count: a decision with nothing but
	// out-of-scope measures is clear.
	e := entry("e2", "attention", org, day0, c)
	d, _ := Decide(c, Query{Subject: org, Action: "honors", At: at}, []Entry{e})
	if d.Outcome != OutcomeClear || measureOf(t, d, "m-emp").Status != MeasureNotApplicable {
		t.Fatalf("employer type not stated: %s %+v", d.Outcome, d.Measures)
	}
	d, _ = Decide(c, Query{Subject: org, Action: "honors", At: at, Context: CheckContext{EmployerType: "public_institution"}}, []Entry{e})
	if d.Outcome != OutcomeReference {
		t.Fatalf("employer type stated: %s", d.Outcome)
	}

	// Subject type reaches persons too (担任国企高管).
	pe := entry("e3", "black", org, day0, c)
	pe.ResponsiblePersons = []ResponsiblePerson{{ID: person.Value, Role: RoleLegalRepresentative}}
	d, _ = Decide(c, Query{Subject: person, Action: "executive_appointment", At: at}, []Entry{pe})
	if measureOf(t, d, "m-soe").Status != MeasureNotApplicable || d.Outcome != OutcomeProhibit {
		t.Fatalf("no subject type: %s %+v", d.Outcome, d.Measures)
	}
	d, _ = Decide(c, Query{Subject: person, Action: "executive_appointment", At: at, Context: CheckContext{SubjectType: "state_owned_enterprise"}}, []Entry{pe})
	if measureOf(t, d, "m-soe").Status != MeasureApplied {
		t.Fatalf("state-owned enterprise: %+v", d.Measures)
	}
}

func TestDecideOutOfScopeUnderObjection(t *testing.T) {
	c := scopeCatalog(t)
	e := entry("e1", "black", org, day0, c)
	e.Objections = []Objection{{ID: "o1", FiledAt: day0.AddDate(0, 0, 5)}}
	d, _ := Decide(c, Query{Subject: org, Action: "government_procurement", At: day0.AddDate(0, 1, 0)}, []Entry{e})
	if m := measureOf(t, d, "m-jinan"); m.Status != MeasureNotApplicable {
		t.Errorf("out of scope under objection: %s", m.Status)
	}
	if m := measureOf(t, d, "m-proc"); m.Status != MeasureSuspended || m.Reason == "" {
		t.Errorf("in scope under objection: %s %q", m.Status, m.Reason)
	}
	if d.Outcome != OutcomeClear {
		t.Errorf("outcome %s", d.Outcome)
	}
}

func TestDecideIncentivesWithheld(t *testing.T) {
	c := scopeCatalog(t)
	at := day0.AddDate(0, 1, 0)
	red := entry("r1", "red", org, day0, c)
	black := entry("b1", "black", org, day0, c)

	// The black entry carries no measure for honors, yet the incentive is
	// withheld: the entry is in force.
	d, _ := Decide(c, Query{Subject: org, Action: "honors", At: at}, []Entry{red, black})
	m := measureOf(t, d, "m-red")
	if m.Status != MeasureOverridden || !strings.Contains(m.Reason, "b1") || !strings.Contains(m.Reason, "黑名单") {
		t.Fatalf("incentive beside a black entry: %s %q", m.Status, m.Reason)
	}
	if d.Outcome != OutcomeClear {
		t.Fatalf("outcome %s, want clear", d.Outcome)
	}

	// Under objection and awaiting exit are in force too.
	obj := black
	obj.Objections = []Objection{{ID: "o1", FiledAt: day0.AddDate(0, 0, 3)}}
	// Verification suspends the entry's measures (篇三(十六)), not the
	// listing: the reason says which.
	if d, _ := Decide(c, Query{Subject: org, Action: "honors", At: at}, []Entry{red, obj}); measureOf(t, d, "m-red").Status != MeasureOverridden ||
		!strings.Contains(measureOf(t, d, "m-red").Reason, "under objection, which suspends its measures but does not withdraw it") {
		t.Fatalf("black entry under objection: %+v", measureOf(t, d, "m-red"))
	}
	held := black
	held.ExitByApplication = true
	if d, _ := Decide(c, Query{Subject: org, Action: "honors", At: day0.AddDate(1, 1, 0)}, []Entry{red, held}); measureOf(t, d, "m-red").Status != MeasureOverridden {
		t.Fatal("black entry awaiting exit does not withhold")
	}
	// Expired, revoked or repaired: the incentive applies again.
	if d, _ := Decide(c, Query{Subject: org, Action: "honors", At: day0.AddDate(1, 1, 0)}, []Entry{red, black}); d.Outcome != OutcomeIncentive {
		t.Fatalf("after the black entry expired: %s", d.Outcome)
	}
	revoked := black
	rt := day0.AddDate(0, 0, 10)
	revoked.RevokedAt = &rt
	if d, _ := Decide(c, Query{Subject: org, Action: "honors", At: at}, []Entry{red, revoked}); d.Outcome != OutcomeIncentive {
		t.Fatalf("after revocation: %s", d.Outcome)
	}
	// A key-attention entry does not withhold by itself (no punitive
	// measure for honors without the employer type) …
	att := entry("a1", "attention", org, day0, c)
	if d, _ := Decide(c, Query{Subject: org, Action: "honors", At: at}, []Entry{red, att}); d.Outcome != OutcomeIncentive {
		t.Fatalf("key attention alone: %s", d.Outcome)
	}
	// … but its applied punitive measure outranks the incentive.
	d, _ = Decide(c, Query{Subject: org, Action: "honors", At: at, Context: CheckContext{EmployerType: "public_institution"}}, []Entry{red, att})
	if m := measureOf(t, d, "m-red"); m.Status != MeasureOverridden || !strings.Contains(m.Reason, "m-emp") || d.Outcome != OutcomeReference {
		t.Fatalf("outranked: %s %s %q", d.Outcome, m.Status, m.Reason)
	}
	// A black entry reaching a person through an organisation withholds
	// the person's incentives too (落实到人).
	pb := entry("b2", "black", org, day0, c)
	pb.ResponsiblePersons = []ResponsiblePerson{{ID: person.Value, Role: RolePrincipal}}
	d, _ = Decide(c, Query{Subject: person, Action: "administrative_licensing", At: at}, []Entry{pb})
	if m := measureOf(t, d, "m-green"); m.Status != MeasureNotApplicable || !strings.Contains(m.Reason, "b2") {
		t.Fatalf("person reached by a black entry: %s %q", m.Status, m.Reason)
	}
}

func TestDecideEligibility(t *testing.T) {
	c := scopeCatalog(t)
	at := day0.AddDate(3, 0, 0)
	q := Query{Subject: org, Action: "administrative_licensing", At: at}

	// A clean subject is eligible: no entry, no violation.
	d, err := Decide(c, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := measureOf(t, d, "m-green")
	if d.Outcome != OutcomeIncentive || m.Status != MeasureApplied || m.Basis != BasisEligibility || m.EntryID != "" {
		t.Fatalf("clean subject: %s %+v", d.Outcome, m)
	}
	if want := "no violation recorded since " + at.AddDate(-3, 0, 0).Format(time.DateOnly); !strings.Contains(m.Reason, want) {
		t.Errorf("reason %q does not say %q", m.Reason, want)
	}
	// The Jinan-only eligibility measure is out of scope for a caller
	// elsewhere and applies in Jinan.
	if m := measureOf(t, d, "m-green-jinan"); m.Status != MeasureNotApplicable || !strings.Contains(m.Reason, "370100") {
		t.Errorf("jinan eligibility elsewhere: %+v", m)
	}
	jq := q
	jq.Context.Region = "370102"
	if d, _ := Decide(c, jq, nil); measureOf(t, d, "m-green-jinan").Status != MeasureApplied {
		t.Error("jinan eligibility in Jinan not applied")
	}

	// A violation inside the window makes the subject ineligible; one
	// before it, or after the time asked about, does not.
	for _, tc := range []struct {
		name     string
		ago      time.Duration
		eligible bool
	}{
		{"violation a year ago", 365 * 24 * time.Hour, false},
		{"violation just inside three years", 3*365*24*time.Hour - 48*time.Hour, false},
		{"violation four years ago", 4 * 365 * 24 * time.Hour, true},
		{"violation after the time asked about", -24 * time.Hour, true},
	} {
		vq := q
		vq.Violations = []time.Time{at.Add(-tc.ago)}
		d, _ := Decide(c, vq, nil)
		m := measureOf(t, d, "m-green")
		if got := m.Status == MeasureApplied; got != tc.eligible {
			t.Errorf("%s: status %s (%s), eligible want %v", tc.name, m.Status, m.Reason, tc.eligible)
		}
		if !tc.eligible && (!strings.Contains(m.Reason, "violation was recorded on") || d.Outcome != OutcomeClear) {
			t.Errorf("%s: %s %q", tc.name, d.Outcome, m.Reason)
		}
	}

	// Unknown violation records establish no eligibility.
	uq := q
	uq.ViolationsUnknown = true
	if d, _ := Decide(c, uq, nil); measureOf(t, d, "m-green").Status != MeasureNotApplicable || d.Outcome != OutcomeClear {
		t.Fatalf("violations unknown: %s %+v", d.Outcome, d.Measures)
	}

	// A black entry in force now: restricted, not eligible.
	now := entry("b1", "black", org, at.AddDate(0, -1, 0), c)
	d, _ = Decide(c, q, []Entry{now})
	if m := measureOf(t, d, "m-green"); d.Outcome != OutcomeRestrict || m.Status != MeasureNotApplicable || !strings.Contains(m.Reason, "b1") {
		t.Fatalf("black entry in force: %s %+v", d.Outcome, m)
	}
	// A black entry that expired two years ago (in force within the
	// window) still makes the subject ineligible; one that expired more
	// than three years ago does not.
	old := entry("b2", "black", org, at.AddDate(-3, 0, 0), c) // expired at-2y
	if d, _ := Decide(c, q, []Entry{old}); measureOf(t, d, "m-green").Status != MeasureNotApplicable || d.Outcome != OutcomeClear {
		t.Fatalf("black entry expired within the window: %s %+v", d.Outcome, d.Measures)
	}
	older := entry("b3", "black", org, at.AddDate(-5, 0, 0), c) // expired at-4y
	if d, _ := Decide(c, q, []Entry{older}); measureOf(t, d, "m-green").Status != MeasureApplied {
		t.Fatalf("black entry expired before the window: %+v", d.Measures)
	}
	// A listing revoked last month (a court's removal once the debt is
	// paid) was in force within the window: still not three clean years
	// (篇三 二(一) 连续三年无不良信用记录).
	rv := entry("b4", "black", org, at.AddDate(0, -6, 0), c)
	rt := at.AddDate(0, -1, 0)
	rv.RevokedAt, rv.RevocationReason = &rt, "法院决定删除失信信息"
	if d, _ := Decide(c, q, []Entry{rv}); measureOf(t, d, "m-green").Status != MeasureNotApplicable || !strings.Contains(measureOf(t, d, "m-green").Reason, "b4") {
		t.Fatalf("listing revoked within the window not counted: %+v", d.Measures)
	}
	// One revoked before the window does not count, nor one revoked
	// before it was published (never in force).
	rvOld := entry("b5", "black", org, at.AddDate(-5, 0, 0), c)
	rtOld := at.AddDate(-4, 0, 0)
	rvOld.RevokedAt = &rtOld
	rvNever := entry("b6", "black", org, at.AddDate(0, -2, 0), c)
	rtNever := rvNever.PublishedAt.Add(-time.Hour)
	rvNever.RevokedAt = &rtNever
	if d, _ := Decide(c, q, []Entry{rvOld, rvNever}); measureOf(t, d, "m-green").Status != MeasureApplied {
		t.Fatalf("listing revoked before the window, or before publication, counted: %+v", d.Measures)
	}
	// A listing voided by an upheld objection was an error and does not
	// count (篇二 (三)2; 篇十三 第十一条 恢复其名誉).
	vd := entry("b7", "black", org, at.AddDate(0, -6, 0), c)
	vd.RevokedAt, vd.RevocationCause = &rt, &Cause{Rule: RuleObjectionUpheld, ObjectionID: "o1"}
	if d, _ := Decide(c, q, []Entry{vd}); measureOf(t, d, "m-green").Status != MeasureApplied {
		t.Fatalf("voided listing counted: %+v", d.Measures)
	}
	// A key-attention entry in the window is a bad credit record too.
	att := entry("a1", "attention", org, at.AddDate(0, -2, 0), c)
	if d, _ := Decide(c, q, []Entry{att}); measureOf(t, d, "m-green").Status != MeasureNotApplicable {
		t.Fatal("key-attention entry ignored by eligibility")
	}
	// A subject with a red entry gets the measure through its entry, once.
	red := entry("r1", "red", org, at.AddDate(0, -2, 0), c)
	d, _ = Decide(c, q, []Entry{red})
	n := 0
	for _, m := range d.Measures {
		if m.Measure.ID == "m-green" {
			n++
			if m.EntryID != "r1" || m.Basis != "" {
				t.Errorf("red entry's measure: %+v", m)
			}
		}
	}
	if n != 1 {
		t.Errorf("m-green listed %d times", n)
	}
	// Other actions read no eligibility.
	if c.HasEligibility("government_procurement") || !c.HasEligibility("administrative_licensing") || c.HasEligibility("nope") {
		t.Error("HasEligibility")
	}
	// Persons are eligible when the measure applies to persons.
	if d, _ := Decide(c, Query{Subject: person, Action: "administrative_licensing", At: at}, nil); measureOf(t, d, "m-green").Status != MeasureApplied {
		t.Error("person not eligible")
	}
}

func TestValidateContext(t *testing.T) {
	c := scopeCatalog(t)
	for _, tc := range []struct {
		ctx  CheckContext
		want error
	}{
		{CheckContext{}, nil},
		{CheckContext{Region: "440300", Industry: "coal_mining", SubjectType: "state_owned_enterprise", EmployerType: "public_institution"}, nil},
		{CheckContext{Region: "4403"}, ErrRegionInvalid},
		{CheckContext{Region: "440012"}, ErrRegionInvalid},
		{CheckContext{Industry: "fishing"}, ErrUnknownIndustry},
		{CheckContext{SubjectType: "x"}, ErrUnknownSubjectType},
		{CheckContext{EmployerType: strings.Repeat("x", 500)}, ErrUnknownEmployerType},
	} {
		if err := c.ValidateContext(tc.ctx); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%+v: %v, want %v", tc.ctx, err, tc.want)
		}
	}
}

// BenchmarkDecideScoped is BenchmarkDecide with scoped measures, out of
// scope for the caller, and an action with an eligibility measure.
func BenchmarkDecideScoped(b *testing.B) {
	c := scopeCatalog(b)
	entries := []Entry{entry("e1", "black", org, day0, c), entry("e2", "attention", org, day0, c), entry("e3", "red", org, day0, c)}
	q := Query{Subject: org, Action: "government_procurement", At: day0.AddDate(0, 1, 0), Context: CheckContext{Region: "440300"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, q, entries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideEligibility(b *testing.B) {
	c := scopeCatalog(b)
	q := Query{Subject: org, Action: "administrative_licensing", At: day0, Violations: []time.Time{day0.AddDate(-5, 0, 0)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(c, q, nil); err != nil {
			b.Fatal(err)
		}
	}
}
