package service_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// scopeTestYAML adds to the bundled catalogue measures scoped to a region
// and an industry and a red-list measure granted by eligibility, with ids
// of their own so that the tests do not depend on the bundled measures.
const scopeTestYAML = `
regions:
  - {code: "650100", name: 乌鲁木齐市}
industries:
  - {id: test_coal_mining, name: 煤矿(测试)}
measures:
  - {id: test-local-procurement, list: safety_production_blacklist, actions: [government_procurement], effect: prohibit,
     mandatory: true, applies_to: [organization], text: 测试措施, legal_basis: 测试, authority: 乌鲁木齐市, source: test,
     scope: {regions: ["650100"], source: test 乌鲁木齐市}}
  - {id: test-coal, list: safety_production_blacklist, actions: [government_procurement], effect: strict_review,
     mandatory: true, applies_to: [organization], text: 煤矿测试措施, legal_basis: 测试, authority: 部, source: test,
     scope: {industries: [test_coal_mining], source: test 煤矿企业}}
  - {id: test-court-procurement, list: court_dishonest_debtor, actions: [government_procurement], effect: restrict,
     mandatory: true, applies_to: [organization], text: 测试限制, legal_basis: 测试, authority: 部, source: test}
  - {id: test-green-channel, list: honest_exemplar_redlist, actions: [tax_incentive], effect: incentive,
     mandatory: false, applies_to: [organization], text: 绿色通道测试, legal_basis: 测试, authority: 部, source: test,
     eligibility: {clean_record_years: 3, source: test 连续三年无不良信用记录}}
`

// scopeCatalog is the bundled catalogue with scopeTestYAML.
func scopeCatalog(t *testing.T) *policy.Catalog {
	t.Helper()
	cat := testenv.CatalogWith(t, scopeTestYAML)
	return cat
}

func measureOf(t *testing.T, a service.CheckAnswer, id string) service.MeasureView {
	t.Helper()
	for _, m := range a.Measures {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("measure %s not in the answer: %v", id, measureStates(a))
	return service.MeasureView{}
}

func partnerIn(region string) service.Caller {
	return service.Caller{ClientID: "cg_procurement", Role: service.RolePartner, Actions: []string{"government_procurement", "tax_incentive"},
		Region: region}
}

func TestCheckContextScopesMeasures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorldWith(t, cstAt(2026, 1, 4, 9), scopeCatalog(t))
	w.create(safetyEntry(cstAt(2026, 1, 5, 0)))
	w.clock.Set(cstAt(2026, 3, 1, 9))
	check := func(caller service.Caller, c policy.CheckContext) (service.CheckAnswer, error) {
		return w.checker.Check(ctx, caller, service.CheckRequest{Subject: lcOrg, Action: "government_procurement", Context: c})
	}

	// The registered region applies; the answer records it.
	a, err := check(partnerIn("650100"), policy.CheckContext{})
	if err != nil {
		t.Fatal(err)
	}
	if m := measureOf(t, a, "test-local-procurement"); m.Status != policy.MeasureApplied || a.Outcome != policy.OutcomeProhibit ||
		m.Scope == nil || m.Scope.Regions[0] != "650100" || a.Context.Region != "650100" {
		t.Fatalf("in region: %s %+v context %+v", a.Outcome, m, a.Context)
	}
	// Elsewhere, and without a region, the local measure is listed as not
	// applicable with the reason, and the outcome does not count it.
	for _, region := range []string{"440300", ""} {
		a, err := check(partnerIn(region), policy.CheckContext{})
		if err != nil {
			t.Fatal(err)
		}
		m := measureOf(t, a, "test-local-procurement")
		if m.Status != policy.MeasureNotApplicable || !strings.Contains(m.Reason, "650100 乌鲁木齐市") || a.Outcome == policy.OutcomeProhibit && !prohibitedElsewhere(a) {
			t.Fatalf("region %q: %s %+v", region, a.Outcome, m)
		}
		if a.Context.Region != region {
			t.Fatalf("region %q recorded as %q", region, a.Context.Region)
		}
	}
	// A partner narrows its region; the narrowed region is recorded.
	a, err = check(partnerIn("650000"), policy.CheckContext{Region: "650102"})
	if err != nil || a.Context.Region != "650102" || measureOf(t, a, "test-local-procurement").Status != policy.MeasureApplied {
		t.Fatalf("narrowed: %v %+v", err, a.Context)
	}
	// It may not widen it, nor name one without a registration.
	for _, tc := range []struct {
		registered, named string
	}{{"650100", "650000"}, {"650100", "440300"}, {"", "650100"}} {
		if _, err := check(partnerIn(tc.registered), policy.CheckContext{Region: tc.named}); !errors.Is(err, service.ErrRegionOutsideJurisdiction) {
			t.Errorf("registered %q naming %q: %v", tc.registered, tc.named, err)
		}
	}
	// Administrators name any region.
	if a, err := w.checker.Check(ctx, admin, service.CheckRequest{Subject: lcOrg, Action: "government_procurement",
		Context: policy.CheckContext{Region: "650100"}}); err != nil || measureOf(t, a, "test-local-procurement").Status != policy.MeasureApplied {
		t.Fatalf("admin in 650100: %v", err)
	}
	// Industry: stated, not stated, unknown.
	a, _ = check(partnerIn(""), policy.CheckContext{Industry: "test_coal_mining"})
	if measureOf(t, a, "test-coal").Status != policy.MeasureApplied || a.Context.Industry != "test_coal_mining" {
		t.Fatalf("coal mining: %v", measureStates(a))
	}
	a, _ = check(partnerIn(""), policy.CheckContext{})
	if m := measureOf(t, a, "test-coal"); m.Status != policy.MeasureNotApplicable || !strings.Contains(m.Reason, "states no industry") {
		t.Fatalf("no industry: %+v", m)
	}
	for c, want := range map[policy.CheckContext]error{
		{Industry: "fishing"}:       policy.ErrUnknownIndustry,
		{SubjectType: "x"}:          policy.ErrUnknownSubjectType,
		{EmployerType: "x"}:         policy.ErrUnknownEmployerType,
		{Region: "65010"}:           policy.ErrRegionInvalid,
		{Region: "650100000000000"}: policy.ErrRegionInvalid,
	} {
		if _, err := check(partnerIn("650100"), c); !errors.Is(err, want) {
			t.Errorf("%+v: %v, want %v", c, err, want)
		}
	}

	// A batch takes the same context.
	items, err := w.checker.CheckBatch(ctx, partnerIn("650100"), service.BatchRequest{Subjects: []string{lcOrg, lcOrg2},
		Action: "government_procurement", Context: policy.CheckContext{Region: "650102"}})
	if err != nil || items[0].Answer == nil || measureOf(t, *items[0].Answer, "test-local-procurement").Status != policy.MeasureApplied ||
		items[1].Answer.Context.Region != "650102" {
		t.Fatalf("batch: %v %+v", err, items)
	}
	if _, err := w.checker.CheckBatch(ctx, partnerIn("650100"), service.BatchRequest{Subjects: []string{lcOrg},
		Action: "government_procurement", Context: policy.CheckContext{Region: "440300"}}); !errors.Is(err, service.ErrRegionOutsideJurisdiction) {
		t.Fatalf("batch outside the jurisdiction: %v", err)
	}
}

// prohibitedElsewhere reports whether a national measure prohibits, so
// that the outcome check above does not depend on the bundled measures.
func prohibitedElsewhere(a service.CheckAnswer) bool {
	for _, m := range a.Measures {
		if m.Status == policy.MeasureApplied && m.Effect == policy.EffectProhibit {
			return true
		}
	}
	return false
}

// valid_at is what is known now about a past time; as_of what credgate
// knew then; both together, what it knew then about an earlier time.
func TestCheckValidAtAndAsOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLCWorldWith(t, cstAt(2026, 3, 10, 9), scopeCatalog(t))
	// The court listed the company on 1 March; credgate recorded it on 10 March.
	w.create(service.EntryInput{Subject: lcOrg, List: "court_dishonest_debtor", OriginatingDepartment: "某市中级人民法院",
		Reason: "有履行能力而拒不履行", LegalBasis: "《最高人民法院关于公布失信被执行人名单信息的若干规定》",
		DecidedAt: cstAt(2026, 2, 27, 0), PublishedAt: cstAt(2026, 3, 1, 0)})
	w.clock.Set(cstAt(2026, 4, 1, 9))
	award := cstAt(2026, 3, 5, 10) // the day of the award
	partner := partnerIn("")
	check := func(caller service.Caller, asOf, validAt *time.Time) service.CheckAnswer {
		t.Helper()
		a, err := w.checker.Check(ctx, caller, service.CheckRequest{Subject: lcOrg, Action: "government_procurement", AsOf: asOf, ValidAt: validAt})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	listed := func(a service.CheckAnswer) bool {
		for _, m := range a.Measures {
			if m.ID == "test-court-procurement" && m.Status == policy.MeasureApplied {
				return true
			}
		}
		return false
	}
	// A partner asks: was the bidder listed on the day of the award? Yes,
	// as known now.
	a := check(partner, nil, &award)
	if !listed(a) || a.ValidAt == nil || !a.ValidAt.Equal(award) || a.AsOf != nil {
		t.Fatalf("valid_at: %s %v valid_at %v", a.Outcome, measureStates(a), a.ValidAt)
	}
	// What credgate knew on that day: nothing yet.
	if a := check(admin, &award, nil); listed(a) || len(a.Entries) != 0 {
		t.Fatalf("as_of the award: %v", measureStates(a))
	}
	// Known on 20 March, about the day of the award: listed.
	later := cstAt(2026, 3, 20, 0)
	if a := check(admin, &later, &award); !listed(a) || !a.AsOf.Equal(later) || !a.ValidAt.Equal(award) {
		t.Fatalf("as_of 20 March, valid_at the award: %v", measureStates(a))
	}
	// Known on the award day, about the award day: nothing.
	if a := check(admin, &award, &award); listed(a) {
		t.Fatalf("as_of and valid_at the award: %v", measureStates(a))
	}
	// Before the publication the subject was not listed, as known now.
	before := cstAt(2026, 2, 28, 0)
	if a := check(partner, nil, &before); listed(a) || len(a.Entries) != 0 {
		t.Fatalf("valid_at before publication: %v", measureStates(a))
	}
	// A partner still may not ask what credgate knew; nobody asks about the future.
	if _, err := w.checker.Check(ctx, partner, service.CheckRequest{Subject: lcOrg, Action: "government_procurement", AsOf: &award}); !errors.Is(err, service.ErrAsOfNotAllowed) {
		t.Fatalf("partner as_of: %v", err)
	}
	future := cstAt(2026, 4, 2, 0)
	if _, err := w.checker.Check(ctx, partner, service.CheckRequest{Subject: lcOrg, Action: "government_procurement", ValidAt: &future}); !errors.Is(err, service.ErrInvalidValidAt) {
		t.Fatalf("future valid_at: %v", err)
	}
	if _, err := w.checker.CheckBatch(ctx, partner, service.BatchRequest{Subjects: []string{lcOrg}, Action: "government_procurement", ValidAt: &future}); !errors.Is(err, service.ErrInvalidValidAt) {
		t.Fatalf("future valid_at in a batch: %v", err)
	}
	items, err := w.checker.CheckBatch(ctx, partner, service.BatchRequest{Subjects: []string{lcOrg}, Action: "government_procurement", ValidAt: &award})
	if err != nil || !listed(*items[0].Answer) {
		t.Fatalf("batch valid_at: %v", err)
	}

	// The subject status: entries known at `at`, standing at valid_at.
	st, err := w.checker.SubjectStatusOf(ctx, admin, lcOrg, service.StatusQuery{At: &later, ValidAt: &before})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Entries) != 1 || st.Entries[0].Status != policy.StatusPending || !st.ValidAt.Equal(before) || !st.At.Equal(later) {
		t.Fatalf("status valid_at before publication: %+v", st)
	}
	st, err = w.checker.SubjectStatusOf(ctx, admin, lcOrg, service.StatusQuery{ValidAt: &award})
	if err != nil || len(st.Entries) != 1 || st.Entries[0].Status != policy.StatusActive || len(st.Actions) == 0 {
		t.Fatalf("status valid_at the award: %v %+v", err, st)
	}
	if _, err := w.checker.SubjectStatusOf(ctx, admin, lcOrg, service.StatusQuery{ValidAt: &future}); !errors.Is(err, service.ErrInvalidValidAt) {
		t.Fatalf("status future valid_at: %v", err)
	}
}

// countingViolations counts reads and can fail.
type countingViolations struct {
	next  service.ViolationReader
	reads atomic.Int32
	fail  atomic.Bool
}

func (c *countingViolations) ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return nil, errors.New("store down")
	}
	return c.next.ViolationRecords(ctx, subject, knownAt)
}

func TestCheckEligibilityReadsViolations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cat := scopeCatalog(t)
	vr := &countingViolations{}
	w := newLCWorldWith(t, cstAt(2026, 3, 3, 12), cat, service.WithViolations(vr))
	vr.next = w.store
	partner := partnerIn("")
	check := func(action string) service.CheckAnswer {
		t.Helper()
		a, err := w.checker.Check(ctx, partner, service.CheckRequest{Subject: lcOrg2, Action: action})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// A clean subject is eligible: the measure applies by eligibility,
	// without an entry.
	a := check("tax_incentive")
	m := measureOf(t, a, "test-green-channel")
	if m.Status != policy.MeasureApplied || m.Basis != policy.BasisEligibility || m.EntryID != "" || !strings.Contains(m.Reason, "no violation recorded since 2023-03-03") {
		t.Fatalf("clean subject: %+v", m)
	}
	if vr.reads.Load() != 1 {
		t.Fatalf("%d violation reads for an eligibility action, want 1", vr.reads.Load())
	}
	// An action without an eligibility measure reads no violations.
	if !cat.HasEligibility("government_procurement") {
		check("government_procurement")
		if vr.reads.Load() != 1 {
			t.Fatalf("government_procurement read violation records")
		}
	}

	// A violation recorded a year ago ends the eligibility.
	if _, err := w.lifecycle.RecordViolation(ctx, service.ViolationInput{Subject: lcOrg2, Item: "um-g-10", DecidedAt: cstAt(2025, 3, 3, 10),
		Department: "市城管局", Reference: "城管罚决字"}); err != nil {
		t.Fatal(err)
	}
	m = measureOf(t, check("tax_incentive"), "test-green-channel")
	if m.Status != policy.MeasureNotApplicable || !strings.Contains(m.Reason, "a violation was recorded on 2025-03-03") {
		t.Fatalf("after a violation: %+v", m)
	}
	// Asked about a time before that violation it was eligible: the
	// window ends at valid_at.
	v := cstAt(2025, 3, 1, 0)
	a, err := w.checker.Check(ctx, partner, service.CheckRequest{Subject: lcOrg2, Action: "tax_incentive", ValidAt: &v})
	if err != nil || measureOf(t, a, "test-green-channel").Status != policy.MeasureApplied {
		t.Fatalf("valid_at before the violation: %v %v", err, measureStates(a))
	}
	// Records that cannot be read establish no eligibility; the check
	// still answers.
	vr.fail.Store(true)
	m = measureOf(t, check("tax_incentive"), "test-green-channel")
	if m.Status != policy.MeasureNotApplicable || !strings.Contains(m.Reason, "could not be read") {
		t.Fatalf("records unreadable: %+v", m)
	}
}

func TestPartnerRegion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	p, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "深圳市公共资源交易中心", Actions: []string{"public_tendering"}, Region: "440300"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Region != "440300" || service.CallerOf(p).Region != "440300" {
		t.Fatalf("created: %+v", p)
	}
	for _, in := range []service.NewPartnerInput{
		{Name: "x", Actions: []string{"bank_credit"}, Region: "4403"},
		{Name: "x", Actions: []string{"bank_credit"}, Region: "440012"},
		{Name: "x", Role: service.RoleAuditor, Region: "440300"},
	} {
		if _, _, err := f.partners.Create(ctx, in); !errors.Is(err, service.ErrInvalidPartner) {
			t.Errorf("%+v: %v", in, err)
		}
	}
	if _, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "x", Actions: []string{"bank_credit"}, Region: "44030"}); !errors.Is(err, policy.ErrRegionInvalid) {
		t.Errorf("malformed region is not ErrRegionInvalid: %v", err)
	}
	narrowed := "440304"
	u, err := f.partners.Update(ctx, p.ClientID, service.PartnerPatch{Region: &narrowed})
	if err != nil || u.Region != "440304" {
		t.Fatalf("update: %v %+v", err, u)
	}
	bad := "44"
	if _, err := f.partners.Update(ctx, p.ClientID, service.PartnerPatch{Region: &bad}); !errors.Is(err, policy.ErrRegionInvalid) {
		t.Fatalf("update to a bad region: %v", err)
	}
	got, err := f.partners.Get(ctx, p.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Region != "440304" {
		t.Fatalf("region after a store round trip = %q, want 440304", got.Region)
	}
}
