package policy

import (
	"io/fs"
	"os"
	"testing"
	"testing/fstest"
	"time"
)

// cityFixture is the list of a placed city the cross-list, repair and
// objection mechanics are tested on (its comments say why); service's
// tests read the same file.
const cityFixture = "testdata/city_safety_blacklist.yaml"

// cityCat is the bundled catalogue with city_safety_blacklist added.
func cityCat(t testing.TB) *Catalog {
	t.Helper()
	city, err := os.ReadFile(cityFixture)
	if err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{"zz_city_fixture.yaml": {Data: city}}
	err = fs.WalkDir(BundledFiles(), ".", func(p string, d fs.DirEntry, err error) error {
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
