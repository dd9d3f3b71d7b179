package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// requiredActionIDs are the business actions other components rely on by id.
var requiredActionIDs = []string{
	"administrative_licensing", "production_license", "project_approval", "market_access",
	"executive_appointment", "stock_issuance", "bond_issuance", "bank_credit",
	"financial_institution_setup", "internet_information_service", "fiscal_funding",
	"public_tendering", "government_procurement", "concession", "honors", "land_supply",
	"customs_certification", "advertising", "insurance_premium", "tax_incentive",
	"science_project", "exit_country", "real_estate_purchase", "air_travel",
	"high_speed_rail", "star_hotel", "tourism",
}

// requiredLists maps the list ids other components rely on to their kind.
var requiredLists = map[string]ListKind{
	"safety_production_blacklist":     ListBlack,
	"safety_production_key_attention": ListKeyAttention,
	"court_dishonest_debtor":          ListBlack,
	"tax_major_violation":             ListBlack,
	"urban_management_general":        ListGeneral,
	"urban_management_yellow":         ListYellow,
	"urban_management_black":          ListBlack,
	"honest_exemplar_redlist":         ListRed,
}

func loadBundled(t *testing.T) *Catalog {
	t.Helper()
	c, err := BundledCatalog()
	if err != nil {
		t.Fatalf("BundledCatalog: %v", err)
	}
	return c
}

func TestBundledCatalogLoads(t *testing.T) {
	c := loadBundled(t)
	if len(c.Actions()) == 0 || len(c.Lists()) == 0 || len(c.Measures()) == 0 {
		t.Fatalf("empty catalogue: %d actions, %d lists, %d measures",
			len(c.Actions()), len(c.Lists()), len(c.Measures()))
	}
	if !strings.HasPrefix(c.Revision(), "cat-") {
		t.Errorf("revision %q lacks the cat- prefix", c.Revision())
	}
}

// The safety production memorandum (篇十一) has 29 items 二(一)…(二十九); every
// item is transcribed, on the black list and — 篇十二 第八条 applies the
// memorandum to 纳入联合惩戒对象和"黑名单"管理的 units — on the key-attention
// list. Items whose parts differ in strength are split (二(一), (二), (二十)).
func TestCatalogSafetyProductionMemorandumHas29Items(t *testing.T) {
	c := loadBundled(t)
	items := map[string]map[string]bool{}
	for _, m := range c.Measures() {
		if !strings.HasPrefix(m.Source, "篇十一") {
			continue
		}
		if m.List != "safety_production_blacklist" && m.List != "safety_production_key_attention" {
			t.Errorf("measure %s from 篇十一 is on list %s", m.ID, m.List)
			continue
		}
		if items[m.List] == nil {
			items[m.List] = map[string]bool{}
		}
		items[m.List][m.Source] = true
	}
	for _, l := range []string{"safety_production_blacklist", "safety_production_key_attention"} {
		if len(items[l]) != 29 {
			t.Errorf("%s: %d items of 篇十一, want 29", l, len(items[l]))
		}
	}
	// Spot checks of the mapping the texts fix.
	for id, want := range map[string]struct {
		action string
		effect Effect
	}{
		"sp-01-supervision":        {"supervision", EffectStrictReview},
		"sp-01-market-ban":         {"market_access", EffectProhibit},
		"sp-02-major-projects":     {"project_approval", EffectProhibit},
		"sp-07-science-projects":   {"science_project", EffectProhibit},
		"sp-03-tendering":          {"construction_tendering", EffectRestrict},
		"sp-10-executive-ban":      {"executive_appointment", EffectProhibit},
		"sp-13-bank-credit":        {"bank_credit", EffectReference},
		"sp-18-procurement":        {"government_procurement", EffectRestrict},
		"sp-20-appraisal":          {"executive_appointment", EffectReference},
		"sp-20-honors":             {"honors", EffectRestrict},
		"sp-26-eia":                {"project_approval", EffectStrictReview},
		"sp-24-production-license": {"production_license", EffectRestrict},
		"spk-18-procurement":       {"government_procurement", EffectRestrict},
	} {
		m := findMeasure(t, c, id)
		if !slices.Contains(m.Actions, want.action) || m.Effect != want.effect {
			t.Errorf("%s: actions %v effect %s, want %s/%s", id, m.Actions, m.Effect, want.action, want.effect)
		}
	}
	if m := findMeasure(t, c, "sp-03-tendering"); slices.Contains(m.Actions, "public_tendering") {
		t.Errorf("sp-03-tendering widens 建设工程招投标 to all tendering: %v", m.Actions)
	}
	if m := findMeasure(t, c, "sp-10-executive-ban"); !slices.Equal(m.AppliesTo, []SubjectKind{KindPerson}) {
		t.Errorf("sp-10-executive-ban applies to %v, want [person]", m.AppliesTo)
	}
}

func findMeasure(t *testing.T, c *Catalog, id string) Measure {
	t.Helper()
	for _, m := range c.Measures() {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("measure %s not found", id)
	return Measure{}
}

func TestCatalogRequiredActionsAndListsExist(t *testing.T) {
	c := loadBundled(t)
	for _, id := range requiredActionIDs {
		a, ok := c.Action(id)
		if !ok {
			t.Errorf("action %s missing", id)
			continue
		}
		if a.Name == "" {
			t.Errorf("action %s has no name", id)
		}
	}
	for id, kind := range requiredLists {
		l, ok := c.List(id)
		if !ok {
			t.Errorf("list %s missing", id)
			continue
		}
		if l.Kind != kind {
			t.Errorf("list %s has kind %s, want %s", id, l.Kind, kind)
		}
		if l.ObjectionWorkingDays <= 0 {
			t.Errorf("list %s has no objection deadline", id)
		}
	}
	// Rules the brief fixes for the safety production black list.
	sp, _ := c.List("safety_production_blacklist")
	if sp.Validity != (Validity{Years: 1}) {
		t.Errorf("safety_production_blacklist validity %+v, want 1 year", sp.Validity)
	}
	for _, r := range []Role{RoleLegalRepresentative, RolePrincipal, RoleSafetyHead, RoleDirectlyResponsible} {
		if !slices.Contains(sp.Reaches, r) {
			t.Errorf("safety_production_blacklist does not reach %s", r)
		}
	}
}

func TestCatalogEveryListHasMeasures(t *testing.T) {
	c := loadBundled(t)
	count := map[string]int{}
	for _, m := range c.Measures() {
		count[m.List]++
	}
	for _, l := range c.Lists() {
		if count[l.ID] == 0 {
			t.Errorf("list %s has no measure", l.ID)
		}
	}
}

func TestCatalogMeasuresAreComplete(t *testing.T) {
	c := loadBundled(t)
	for _, m := range c.Measures() {
		if strings.TrimSpace(m.LegalBasis) == "" {
			t.Errorf("measure %s has no legal_basis", m.ID)
		}
		if strings.TrimSpace(m.Authority) == "" {
			t.Errorf("measure %s has no authority", m.ID)
		}
		if !strings.HasPrefix(m.Source, "篇") {
			t.Errorf("measure %s: source %q does not point into the source texts", m.ID, m.Source)
		}
		if m.ID != strings.ToLower(m.ID) || strings.ContainsAny(m.ID, " _") {
			t.Errorf("measure id %q is not lowercase-with-dashes", m.ID)
		}
		l, _ := c.List(m.List)
		if (m.Effect == EffectIncentive) != (l.Kind == ListRed) {
			t.Errorf("measure %s: effect %s on list kind %s", m.ID, m.Effect, l.Kind)
		}
	}
}

// --- LoadCatalog on synthetic catalogues -----------------------------------

const testActionsYAML = `actions:
  - id: licensing
    name: 行政许可
  - id: tendering
    name: 招标投标
`

const testListsYAML = `lists:
  - id: black
    name: 黑名单
    kind: black
    subject_kinds: [organization, person]
    reaches: [legal_representative]
    source: test
  - id: red
    name: 红名单
    kind: red
    subject_kinds: [organization]
    source: test
`

// testMeasure renders one measure; extra lines are inserted right after the id.
func testMeasure(id, list, actions, effect, extra string) string {
	return "  - id: " + id + "\n" + extra +
		"    list: " + list + "\n" +
		"    actions: [" + actions + "]\n" +
		"    effect: " + effect + "\n" +
		"    mandatory: true\n" +
		"    applies_to: [organization]\n" +
		"    text: 依法限制参与招投标。\n" +
		"    legal_basis: 《招标投标法实施条例》第六十七条\n" +
		"    authority: 发展改革委\n" +
		"    source: test\n"
}

func testFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"actions.yaml": {Data: []byte(testActionsYAML)},
		"lists.yaml":   {Data: []byte(testListsYAML)},
	}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

func validMeasures() string {
	return "measures:\n" +
		testMeasure("m-black", "black", "tendering", "restrict", "") +
		testMeasure("m-red", "red", "licensing", "incentive", "")
}

func TestCatalogLoadSynthetic(t *testing.T) {
	c, err := LoadCatalog(testFS(map[string]string{"measures.yaml": validMeasures()}))
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	if got := len(c.Measures()); got != 2 {
		t.Fatalf("got %d measures, want 2", got)
	}
	if ms := c.measuresFor("black", "tendering"); len(ms) != 1 || ms[0].ID != "m-black" {
		t.Errorf("measuresFor(black, tendering) = %v", ms)
	}
}

func TestCatalogRevision(t *testing.T) {
	files := map[string]string{"measures.yaml": validMeasures()}
	a, err := LoadCatalog(testFS(files))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadCatalog(testFS(files))
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision() != b.Revision() {
		t.Errorf("same content, different revisions: %s vs %s", a.Revision(), b.Revision())
	}

	changed := map[string]string{"measures.yaml": strings.Replace(validMeasures(), "依法限制参与招投标", "依法禁止参与招投标", 1)}
	c, err := LoadCatalog(testFS(changed))
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision() == a.Revision() {
		t.Errorf("content changed but revision stayed %s", a.Revision())
	}

	renamed := map[string]string{"other.yaml": validMeasures()}
	d, err := LoadCatalog(testFS(renamed))
	if err != nil {
		t.Fatal(err)
	}
	if d.Revision() == a.Revision() {
		t.Errorf("file renamed but revision stayed %s", a.Revision())
	}

	// The bundled catalogue is stable across loads too.
	if x, y := loadBundled(t), loadBundled(t); x.Revision() != y.Revision() {
		t.Errorf("bundled revision unstable: %s vs %s", x.Revision(), y.Revision())
	}
}

func TestCatalogValidationErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		file  string // file the error must name
		entry string // measure id the error must name
		is    error  // extra sentinel, if any
		want  string // further text the message must contain
	}{
		{
			name:  "unknown action",
			files: map[string]string{"broken.yaml": "measures:\n" + testMeasure("m-bad-action", "black", "no_such_action", "restrict", "")},
			file:  "broken.yaml", entry: "m-bad-action", is: ErrUnknownAction, want: "no_such_action",
		},
		{
			name:  "unknown list",
			files: map[string]string{"broken.yaml": "measures:\n" + testMeasure("m-bad-list", "no_such_list", "tendering", "restrict", "")},
			file:  "broken.yaml", entry: "m-bad-list", is: ErrUnknownList, want: "no_such_list",
		},
		{
			name:  "unknown effect",
			files: map[string]string{"broken.yaml": "measures:\n" + testMeasure("m-bad-effect", "black", "tendering", "forbid", "")},
			file:  "broken.yaml", entry: "m-bad-effect", want: "forbid",
		},
		{
			name:  "incentive on a black list",
			files: map[string]string{"broken.yaml": "measures:\n" + testMeasure("m-black-incentive", "black", "tendering", "incentive", "")},
			file:  "broken.yaml", entry: "m-black-incentive", want: "incentive",
		},
		{
			name:  "punitive effect on a red list",
			files: map[string]string{"broken.yaml": "measures:\n" + testMeasure("m-red-restrict", "red", "tendering", "restrict", "")},
			file:  "broken.yaml", entry: "m-red-restrict", want: "restrict",
		},
		{
			name: "role not reached by the list",
			files: map[string]string{"broken.yaml": "measures:\n" +
				testMeasure("m-bad-role", "black", "tendering", "restrict", "    roles: [safety_head]\n")},
			file: "broken.yaml", entry: "m-bad-role", want: "safety_head",
		},
		{
			name: "duplicate measure id across files",
			files: map[string]string{
				"a_measures.yaml": "measures:\n" + testMeasure("m-dup", "black", "tendering", "restrict", ""),
				"b_measures.yaml": "measures:\n" + testMeasure("m-dup", "black", "licensing", "restrict", ""),
			},
			file: "b_measures.yaml", entry: "m-dup", want: "a_measures.yaml",
		},
		{
			name: "list defined twice",
			files: map[string]string{
				"more_lists.yaml": "lists:\n  - {id: black, name: 又一个黑名单, kind: black, subject_kinds: [organization], source: test}\n",
			},
			file: "more_lists.yaml", entry: "black", want: "defined twice",
		},
		{
			// LoadCatalog reports YAML decoding errors with the file name, the line and
			// an excerpt of the surrounding source; the entry is named through that
			// excerpt, so the unknown field sits next to the id here (see the report on
			// catalog.go: an unknown field far below the id line is located by line only).
			name: "unknown YAML field",
			files: map[string]string{"broken.yaml": "measures:\n" +
				testMeasure("m-unknown-field", "black", "tendering", "restrict", "    colour: red\n")},
			file: "broken.yaml", entry: "m-unknown-field", want: "colour",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCatalog(testFS(tc.files))
			if err == nil {
				t.Fatal("LoadCatalog accepted a broken catalogue")
			}
			if !errors.Is(err, ErrCatalogInvalid) {
				t.Errorf("error %v is not ErrCatalogInvalid", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			msg := err.Error()
			for _, s := range []string{tc.file, tc.entry, tc.want} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %q", msg, s)
				}
			}
		})
	}
}

func TestCatalogRejectsEmptyFS(t *testing.T) {
	_, err := LoadCatalog(fstest.MapFS{})
	if !errors.Is(err, ErrCatalogInvalid) {
		t.Fatalf("empty catalogue: got %v, want ErrCatalogInvalid", err)
	}
}

// TestPersonsThroughOrganizationNeedsPersons: the flag narrows how a
// measure reaches persons, so it is refused on a measure that reaches
// none or on a list through which no person is reached.
func TestPersonsThroughOrganizationNeedsPersons(t *testing.T) {
	for name, measure := range map[string]string{
		"organisation only": `{id: m, list: black, actions: [honors], effect: prohibit, mandatory: true, applies_to: [organization], persons_through_organization: true, text: 撤销, legal_basis: x, authority: x, source: test}`,
		"list reaches none": `{id: m, list: attention, actions: [honors], effect: prohibit, mandatory: true, applies_to: [organization, person], persons_through_organization: true, text: 撤销, legal_basis: x, authority: x, source: test}`,
	} {
		doc := `
actions:
  - {id: honors, name: 评先评优}
lists:
  - {id: black, name: 黑名单, kind: black, subject_kinds: [organization, person], reaches: [legal_representative], source: test}
  - {id: attention, name: 重点关注, kind: key_attention, subject_kinds: [organization, person], source: test}
measures:
  - ` + measure + "\n"
		if _, err := LoadCatalog(fstest.MapFS{"c.yaml": {Data: []byte(doc)}}); !errors.Is(err, ErrCatalogInvalid) {
			t.Errorf("%s: LoadCatalog = %v, want ErrCatalogInvalid", name, err)
		}
	}
}
