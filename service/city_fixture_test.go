package service_test

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// cityBlackYAML is a black list of a placed city whose own text provides
// what the national safety rule does not (篇十二 第六、七条): removal from red
// lists on entry and a reviewed repair before expiry, like 篇七 第五条(六)、
// 第六条 for an xx市 that cannot be placed. The bundled catalogue does not
// carry them (policy/catalog/JUDGEMENTS.md, "List rules"); the cross-list
// and repair tests run on this list.
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

// cityCatalog is the bundled catalogue with city_safety_blacklist added.
func cityCatalog(t testing.TB) *policy.Catalog {
	t.Helper()
	files := fstest.MapFS{"zz_city_fixture.yaml": {Data: []byte(cityBlackYAML)}}
	b := policy.BundledFiles()
	names, err := fs.Glob(b, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := fs.ReadFile(b, n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = &fstest.MapFile{Data: data}
	}
	cat, err := policy.LoadCatalog(files)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// citySafetyEntry is safetyEntry on city_safety_blacklist.
func citySafetyEntry(published time.Time, persons ...policy.ResponsiblePerson) service.EntryInput {
	in := safetyEntry(published, persons...)
	in.List = "city_safety_blacklist"
	return in
}

// newCityRevWorld is newRevWorld over cityCatalog.
func newCityRevWorld(t *testing.T, st revStore, start time.Time) *revWorld {
	t.Helper()
	cat := cityCatalog(t)
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	w := &revWorld{clock: testenv.NewClock(start), store: st, audit: &spy{next: app}}
	w.entries = service.NewEntries(st, cat, service.WithEntriesClock(w.clock.Now), service.WithEntriesAudit(service.NewAudit(w.audit)))
	w.lifecycle = service.NewLifecycle(w.entries, st)
	return w
}
