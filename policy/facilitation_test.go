package policy

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// A commitment kind's facilitation must be one an incentive measure names:
// misspelt, the bundled catalogue would load and hold every 容缺受理
// commitment to the fallback (any clear answer) instead of the measure.
func TestCommitmentFacilitationNamedByAMeasure(t *testing.T) {
	bundled := func(edit func(string) string) fstest.MapFS {
		files := fstest.MapFS{}
		err := fs.WalkDir(BundledFiles(), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(BundledFiles(), p)
			if p == "actions.yaml" {
				data = []byte(edit(string(data)))
			}
			files[p] = &fstest.MapFile{Data: data}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	c, err := LoadCatalog(bundled(func(s string) string { return s }))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.CommitmentKind("missing_materials"); !ok || k.Facilitation != "容缺受理" {
		t.Fatalf("missing_materials: %+v", k)
	}
	misspelt := bundled(func(s string) string {
		return strings.Replace(s, "facilitation: 容缺受理", "facilitation: 容缺受里", 1)
	})
	if _, err := LoadCatalog(misspelt); !errors.Is(err, ErrCatalogInvalid) || !strings.Contains(err.Error(), "容缺受里") {
		t.Fatalf("a facilitation no measure names: %v", err)
	}
}
