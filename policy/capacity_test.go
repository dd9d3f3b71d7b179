package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFullCapacityRequired: 篇四 第二条 defines the 个人 of Nanning's lists as
// "年满18周岁,具有完全民事行为能力的成年人", so a person under 18 at the decision
// date cannot be listed there; lists whose texts say nothing of it take
// persons of any age.
func TestFullCapacityRequired(t *testing.T) {
	c := bundledCat(t)
	for _, id := range []string{"nanning_yellow", "nanning_red", "nanning_black"} {
		if l, _ := c.List(id); !l.RequiresFullCapacity {
			t.Errorf("%s: requires_full_capacity not set (篇四 第二条)", id)
		}
	}
	if l, _ := c.List("court_dishonest_debtor"); l.RequiresFullCapacity {
		t.Errorf("court_dishonest_debtor requires full capacity; its sources do not say so")
	}
	cst := time.FixedZone("CST", 8*3600)
	born := func(yyyymmdd string) SubjectID {
		return SubjectID{Kind: KindPerson, Value: identRefResident("450102" + yyyymmdd + "123")}
	}
	tests := []struct {
		name    string
		list    string
		subject SubjectID
		decided time.Time
		refused bool
	}{
		{"17 the day before the birthday", "nanning_black", born("20080315"), time.Date(2026, 3, 14, 23, 59, 0, 0, cst), true},
		{"18 on the birthday, in China's zone", "nanning_black", born("20080315"), time.Date(2026, 3, 15, 0, 0, 0, 0, cst), false},
		{"still 17 at 23:00 UTC the day before", "nanning_yellow", born("20080315"), time.Date(2026, 3, 14, 15, 59, 0, 0, time.UTC), true},
		{"born 29 February, 18 on 1 March", "nanning_red", born("20080229"), time.Date(2026, 3, 1, 0, 0, 0, 0, cst), false},
		{"born 29 February, 17 on 28 February", "nanning_red", born("20080229"), time.Date(2026, 2, 28, 12, 0, 0, 0, cst), true},
		{"adult long ago", "nanning_black", born("19491231"), time.Date(2026, 1, 5, 0, 0, 0, 0, cst), false},
		{"minor on a list without the rule", "court_dishonest_debtor", born("20150101"), time.Date(2026, 1, 5, 0, 0, 0, 0, cst), false},
		{"organisation", "nanning_black", SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}, time.Date(2026, 1, 5, 0, 0, 0, 0, cst), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.PrepareEntry(Entry{
				ID: "e", Subject: tt.subject, List: tt.list, OriginatingDepartment: "南宁市城市管理局", Reason: "失信事由", LegalBasis: "篇四",
				DecidedAt: tt.decided, PublishedAt: tt.decided.Add(time.Hour),
			})
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFullCapacityRequired) || !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("err = %v, want ErrFullCapacityRequired and ErrInvalidEntry", err)
			}
			if strings.Contains(err.Error(), tt.subject.Value[6:14]) {
				t.Errorf("error %q reveals the birth date", err)
			}
		})
	}
}

func TestRequiresFullCapacityValidated(t *testing.T) {
	_, err := LoadCatalog(mapFS(`
lists:
  - id: orgs
    name: organisations only
    kind: black
    subject_kinds: [organization]
    requires_full_capacity: true
    source: test
`))
	if !errors.Is(err, ErrCatalogInvalid) || !strings.Contains(err.Error(), `list "orgs"`) || !strings.Contains(err.Error(), "requires_full_capacity") {
		t.Fatalf("err = %v, want the list and the flag named", err)
	}
}

// TestActualControllerReached: Jinan's coal-mine text applies 联合惩戒 and
// the black list to "煤矿企业董事长、总经理,煤矿矿长、实际控制人" (篇十 第二条), so
// both safety production tiers reach the 实际控制人 of a listed mine, and an
// entry may name one; lists whose texts do not name the role refuse it.
func TestActualControllerReached(t *testing.T) {
	c := bundledCat(t)
	if !slices.Contains(Roles(), RoleActualController) {
		t.Fatal("actual_controller is not a role")
	}
	mine := SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	controller := ResponsiblePerson{ID: identRefResident("37010219700101123"), Role: RoleActualController}
	pub := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for _, list := range []string{"safety_production_blacklist", "safety_production_key_attention"} {
		l, _ := c.List(list)
		if !slices.Contains(l.Reaches, RoleActualController) {
			t.Errorf("%s does not reach actual_controller (篇十 第二条)", list)
		}
		e := listed(t, c, "e-"+list, list, mine, pub, controller)
		if e.ResponsiblePersons[0].Role != RoleActualController {
			t.Errorf("%s: role %q", list, e.ResponsiblePersons[0].Role)
		}
	}
	_, err := c.PrepareEntry(Entry{
		ID: "e", Subject: mine, List: "court_dishonest_debtor", OriginatingDepartment: "法院", Reason: "r", LegalBasis: "b",
		DecidedAt: pub, PublishedAt: pub, ResponsiblePersons: []ResponsiblePerson{controller},
	})
	if !errors.Is(err, ErrRoleNotReached) {
		t.Fatalf("court_dishonest_debtor with an actual controller: %v, want ErrRoleNotReached", err)
	}
}

// TestResponsiblePersonLegacyID: a responsible person recorded with a
// first-generation 15-digit number is stored in its 18-digit form, so a
// check on the 18-digit number finds the entry.
func TestResponsiblePersonLegacyID(t *testing.T) {
	c := bundledCat(t)
	mine := SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	e := listed(t, c, "e", "safety_production_blacklist", mine, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		ResponsiblePerson{ID: identLegacyExample, Role: RoleLegalRepresentative})
	if got := e.ResponsiblePersons[0].ID; got != identGB11643Example {
		t.Fatalf("stored %q, want %q", got, identGB11643Example)
	}
}

// A rule set whose lists require full capacity (Nanning's points, 篇四 第二条)
// does not score a person under 18 at the act's decision date; other rule
// sets do.
func TestViolationFullCapacityRequired(t *testing.T) {
	c := bundledCat(t)
	minor := SubjectID{Kind: KindPerson, Value: identRefResident("45010220100315001")}
	decided := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var nanning, urban string
	for _, it := range c.ViolationItems() {
		if it.RuleSet == "nanning_urban_management" && nanning == "" {
			nanning = it.ID
		}
		if it.RuleSet == "urban_management" && urban == "" {
			urban = it.ID
		}
	}
	if nanning == "" || urban == "" {
		t.Fatal("no violation items for the rule sets")
	}
	rec := func(item string, s SubjectID) ViolationRecord {
		return ViolationRecord{ID: "v", Subject: s, Item: item, Department: "城管", Reference: "r", DecidedAt: decided, RecordedAt: decided}
	}
	if _, err := c.PrepareViolation(rec(nanning, minor)); !errors.Is(err, ErrFullCapacityRequired) || !errors.Is(err, ErrInvalidViolation) {
		t.Fatalf("Nanning record for a minor: %v", err)
	}
	if _, err := c.PrepareViolation(rec(urban, minor)); err != nil {
		t.Fatalf("urban management record for a minor: %v", err)
	}
	adult := SubjectID{Kind: KindPerson, Value: identGB11643Example}
	if _, err := c.PrepareViolation(rec(nanning, adult)); err != nil {
		t.Fatalf("Nanning record for an adult: %v", err)
	}
}

// TestActualControllerOnlyInJinan: 实际控制人 is named only by 篇十 (Jinan's
// coal-mine measures, 第二条、第五条), so a measure that reaches that role
// must be scoped to Jinan; a national measure reaching it would apply a
// local text's reach everywhere (篇四 第二十四条).
func TestActualControllerOnlyInJinan(t *testing.T) {
	reaching := measuresReaching(t, RoleActualController)
	for _, m := range reaching {
		if !slices.Contains(m.Scope.Regions, "370100") {
			t.Errorf("measure %s reaches actual_controller but is not scoped to Jinan (370100): %+v", m.ID, m.Scope)
		}
	}
	if len(reaching) == 0 {
		t.Fatal("no measure reaches actual_controller: 篇十's person measures lost it")
	}
}

// measuresReaching is the bundled catalogue's person measures that reach
// role: those naming it, and those naming no roles on a list reaching it.
func measuresReaching(t *testing.T, role Role) []Measure {
	t.Helper()
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	var out []Measure
	for _, m := range c.Measures() {
		if !slices.Contains(m.AppliesTo, KindPerson) {
			continue
		}
		l, _ := c.List(m.List)
		roles := m.Roles
		if len(roles) == 0 {
			roles = l.Reaches
		}
		if slices.Contains(roles, role) {
			out = append(out, m)
		}
	}
	return out
}

// TestSeniorManagerOnlyInHonours: 高级管理人员 are named only where honours
// are revoked (篇三 三(七), 篇五(九)); the other measures reach the persons
// of 篇三(十一) "法定代表人、主要负责人和其他负有直接责任人员". A person
// measure that names no roles reaches every role its list reaches, so on
// lists reaching senior_manager it must name its own.
func TestSeniorManagerOnlyInHonours(t *testing.T) {
	reaching := measuresReaching(t, RoleSeniorManager)
	for _, m := range reaching {
		if !slices.Equal(m.Actions, []string{"honors"}) {
			t.Errorf("measure %s (actions %v) reaches senior_manager, which only the honours measures name", m.ID, m.Actions)
		}
	}
	if len(reaching) == 0 {
		t.Fatal("no measure reaches senior_manager: the honours measures lost it")
	}
}
