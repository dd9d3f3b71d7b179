package policy

import (
	"errors"
	"strings"
	"testing"
)

// The lifecycle rules are catalogue data: a broken rule fails the load,
// naming the file and the list or rule set at fault.
func TestCatalogLifecycleRuleErrors(t *testing.T) {
	const list = `lists:
  - id: lc
    name: 生命周期测试名单
    kind: yellow
    subject_kinds: [organization]
    source: test
`
	const rs = `rule_sets:
  - id: rs
    name: 测试积分
    legal_basis: 法
    source: test
    severities: [{id: general, name: 一般, points: 2}]
    cycle: {calendar_year: true, clear_below: 4, source: test}
    levels: [{points: 4, list: lc}]
`
	cases := []struct {
		name, file, entry, want string
		files                   map[string]string
	}{
		{"lock without source", "lc.yaml", `"lc"`, "locks[0]", map[string]string{"lc.yaml": list +
			"    repair: {source: s, locks: [{from_listing: 1, period: {years: 1}}]}\n"}},
		{"lock from listing 0", "lc.yaml", `"lc"`, "from_listing", map[string]string{"lc.yaml": list +
			"    repair: {source: s, locks: [{from_listing: 0, period: {years: 1}, source: s}]}\n"}},
		{"both review periods", "lc.yaml", `"lc"`, "review", map[string]string{"lc.yaml": list +
			"    repair: {source: s, review_days: 20, review_working_days: 15}\n"}},
		{"repair needing records of an unknown rule set", "lc.yaml", `"lc"`, "nowhere", map[string]string{"lc.yaml": list +
			"    repair: {source: s, requires_no_new_records: nowhere}\n"}},
		{"exit without validity", "lc.yaml", `"lc"`, "validity", map[string]string{"lc.yaml": list +
			"    exit: {apply_within_working_days: 30, source: s}\n"}},
		{"remove from an unknown kind", "lc.yaml", `"lc"`, "purple", map[string]string{"lc.yaml": list +
			"    on_enter_remove_from_kinds: [purple]\n"}},
		{"remove from an unknown list", "lc.yaml", `"lc"`, "ghost", map[string]string{"lc.yaml": list +
			"    on_enter_remove_from_lists: [ghost]\n"}},
		{"escalate to a weaker list", "lc.yaml", `"lc"`, "not stronger", map[string]string{"lc.yaml": list +
			"    escalate: {to: red, rule_set: rs, on_new_act: [general], source: s}\n", "rs.yaml": rs}},
		{"escalate on an unknown severity", "lc.yaml", `"lc"`, "grave", map[string]string{"lc.yaml": list +
			"    escalate: {to: black, rule_set: rs, on_new_act: [grave], source: s}\n", "rs.yaml": rs}},
		{"escalate to a list not holding the subject kind", "lc2.yaml", `"lc2"`, "person", map[string]string{"lc2.yaml": strings.ReplaceAll(strings.ReplaceAll(list, "lc\n", "lc2\n"), "[organization]", "[organization, person]") +
			"    escalate: {to: red2, rule_set: rs, on_new_act: [general], source: s}\n  - {id: red2, name: 黑2, kind: black, subject_kinds: [organization], source: t}\n",
			"rs.yaml": strings.Replace(rs, "    levels: [{points: 4, list: lc}]\n", "", 1)}},
		{"levels not ascending", "rs.yaml", `"rs"`, "ascending", map[string]string{"lc.yaml": list, "rs.yaml": strings.Replace(rs,
			"levels: [{points: 4, list: lc}]", "levels: [{points: 4, list: lc}, {points: 3, list: black}]", 1)}},
		{"level on a red list", "rs.yaml", `"rs"`, "red list", map[string]string{"lc.yaml": list, "rs.yaml": strings.Replace(rs, "list: lc", "list: red", 1)}},
		{"level on an unknown list", "rs.yaml", `"rs"`, "nolist", map[string]string{"lc.yaml": list, "rs.yaml": strings.Replace(rs, "list: lc", "list: nolist", 1)}},
		{"cycle with both kinds", "rs.yaml", `"rs"`, "exactly one", map[string]string{"lc.yaml": list, "rs.yaml": strings.Replace(rs,
			"cycle: {calendar_year: true,", "cycle: {window: {years: 1}, calendar_year: true,", 1)}},
		{"same item with an unknown severity", "rs.yaml", `"rs"`, "same_item", map[string]string{"lc.yaml": list, "rs.yaml": rs +
			"    same_item: {times: 3, points: 12, severities: [minor], source: s}\n"}},
		{"item of an unknown rule set", "items.yaml", `"it1"`, "nors", map[string]string{"lc.yaml": list, "rs.yaml": rs,
			"items.yaml": "violation_items:\n  - {id: it1, rule_set: nors, severity: general, text: t, source: s}\n"}},
		{"item of an unknown severity", "items.yaml", `"it1"`, "grave", map[string]string{"lc.yaml": list, "rs.yaml": rs,
			"items.yaml": "violation_items:\n  - {id: it1, rule_set: rs, severity: grave, text: t, source: s}\n"}},
		{"calendar twice", "cal2.yaml", "calendar", "cal1.yaml", map[string]string{
			"cal1.yaml": "calendar: {utc_offset_hours: 8, covers: [2026], holidays: [], working_days: [], source: s}\n",
			"cal2.yaml": "calendar: {utc_offset_hours: 8, covers: [2026], holidays: [], working_days: [], source: s}\n"}},
		{"make-up day on a weekday", "cal1.yaml", "calendar", "2026-03-02", map[string]string{
			"cal1.yaml": "calendar: {utc_offset_hours: 8, covers: [2026], holidays: [], working_days: [2026-03-02], source: s}\n"}},
		{"date that does not exist", "cal1.yaml", "2026-02-30", "YYYY-MM-DD", map[string]string{
			"cal1.yaml": "calendar: {utc_offset_hours: 8, covers: [2026], holidays: [2026-02-30], working_days: [], source: s}\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCatalog(testFS(tc.files))
			if !errors.Is(err, ErrCatalogInvalid) {
				t.Fatalf("err = %v, want ErrCatalogInvalid", err)
			}
			for _, s := range []string{tc.file, tc.entry, tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// Every list the bundled rules name exists and the Nanning lists are
// there, valid one year, with their own names.
func TestBundledLifecycleData(t *testing.T) {
	c := bundledCat(t)
	for id, name := range map[string]string{
		"nanning_yellow": "南宁市城市管理领域失信黄名单",
		"nanning_red":    "南宁市城市管理领域失信红名单",
		"nanning_black":  "南宁市城市管理领域失信黑名单",
	} {
		l, ok := c.List(id)
		if !ok || l.Name != name || l.Validity != (Validity{Years: 1}) || l.ObjectionWorkingDays != 20 || l.Repair == nil {
			t.Errorf("list %s: %+v", id, l)
		}
	}
	if l, _ := c.List("nanning_red"); l.Kind == ListRed {
		t.Error("Nanning's 红名单 is a punitive list, not a red list of trust")
	}
	um, ok := c.RuleSet("urban_management")
	if !ok || um.Cap != 12 || um.SameItem == nil || um.SameItem.Times != 3 || len(um.Levels) != 3 {
		t.Errorf("urban_management: %+v", um)
	}
	sie, _ := c.List("serious_illegal_enterprise")
	var ban *Measure
	for i := range c.Measures() {
		if c.Measures()[i].ID == "sie-12-executive-ban" {
			ban = &c.Measures()[i]
		}
	}
	if ban == nil || ban.Term != (Validity{Years: 3}) || !sie.Validity.IsZero() {
		t.Errorf("executive ban: %+v, list validity %+v", ban, sie.Validity)
	}
	// No national text removes a black-listed subject from red lists (篇七 第六条 is an
	// xx市's): the red list is in no cross-list rule; the safety tiers are (篇十二 第三条).
	if c.CrossListInvolved("honest_exemplar_redlist") || !c.CrossListInvolved("safety_production_blacklist") || c.CrossListInvolved("court_dishonest_debtor") {
		t.Error("cross-list index")
	}
	for _, it := range c.ViolationItems() {
		if !strings.HasPrefix(it.Source, "篇") {
			t.Errorf("item %s: source %q does not point into the source texts", it.ID, it.Source)
		}
	}
	if n := len(c.ViolationItems()); n < 40 {
		t.Errorf("only %d violation items", n)
	}
}
