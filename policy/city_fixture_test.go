package policy

import (
	"io/fs"
	"testing"
	"testing/fstest"
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
