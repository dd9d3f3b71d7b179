package policy

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"
)

// cityBlackYAML is a list of a place whose own text provides what the
// national safety rule does not: removal from red lists on entry and a
// reviewed repair before expiry (as 篇七 第五条(六), 第六条 do for an xx市 that
// cannot be placed). The bundled catalogue does not carry these rules on
// the national safety black list (JUDGEMENTS.md, "List rules"); a
// deployment that knows its place adds such a list with its own catalogue,
// and the cross-list and repair mechanics are tested on it.
const cityBlackYAML = `
lists:
  - id: city_safety_blacklist
    name: 本市安全生产不良记录"黑名单"
    kind: black
    subject_kinds: [organization, person]
    validity: {years: 1}
    objection_working_days: 15
    reaches: [legal_representative, principal, safety_head, directly_responsible]
    source: test (a placed city's own rules)
    on_enter_remove_from_kinds: [red]
    objection_extends_validity:
      text: 异议投诉被驳回的,其联合惩戒时限从异议投诉被驳回之日起继续计算。
      source: test (a placed city's own rules, as 篇二 (三)2)
    exit:
      apply_within_working_days: 30
      source: test (a placed city's own rules)
    repair:
      requires_review: true
      source: test (a placed city's own rules)
measures:
  - {id: city-tendering, list: city_safety_blacklist, actions: [public_tendering], effect: restrict, mandatory: true, applies_to: [organization], text: 限制参与工程招投标。, legal_basis: test, authority: test, source: test}
`

// cityCat is the bundled catalogue with city_safety_blacklist added.
func cityCat(t testing.TB) *Catalog {
	t.Helper()
	files := fstest.MapFS{"zz_city_fixture.yaml": {Data: []byte(cityBlackYAML)}}
	err := fs.WalkDir(BundledFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(BundledFiles(), p)
		files[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadCatalog(files)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestObjectionExtendsValidityWhereTheListSaysSo: a list whose text counts
// the punishment period on from the rejection (objection_extends_validity)
// ends later by the suspension; the national safety list, counted "自公布
// 之日起" (篇十二 第六条), does not.
func TestObjectionExtendsValidityWhereTheListSaysSo(t *testing.T) {
	c := cityCat(t)
	pub, filed, rejected := at8(2026, 1, 5, 0), at8(2026, 3, 2, 10), at8(2026, 3, 12, 10)
	for list, want := range map[string]time.Time{
		"city_safety_blacklist":       at8(2027, 1, 15, 0),
		"safety_production_blacklist": at8(2027, 1, 5, 0),
	} {
		e := listed(t, c, "e1", list, orgA, pub)
		e, err := c.FileObjection(e, "o1", FiledByAdministrator, ApplicationInput{Grounds: "有误"}, filed)
		if err != nil {
			t.Fatal(err)
		}
		if e, err = c.DecideObjection(e, "o1", ObjectionDecision{Decision: DecisionRejected}, rejected); err != nil {
			t.Fatal(err)
		}
		if e, err = c.PrepareEntry(e); err != nil {
			t.Fatal(err)
		}
		if !e.ValidUntil.Equal(want) {
			t.Errorf("%s: valid until %s after a 10-day suspension, want %s", list, e.ValidUntil.In(cst), want.In(cst))
		}
	}
}
