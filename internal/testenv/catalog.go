package testenv

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/credgate/credgate/policy"
)

// CatalogWith returns the bundled catalogue with one more file, extraYAML,
// loaded and validated with it: how a test adds measures (a scoped one,
// an eligibility one) without touching the catalogue the binary embeds.
func CatalogWith(tb testing.TB, extraYAML string) *policy.Catalog {
	tb.Helper()
	bundled := policy.BundledFiles()
	names, err := fs.Glob(bundled, "*.yaml")
	if err != nil || len(names) == 0 {
		tb.Fatalf("bundled catalogue files: %v", err)
	}
	files := fstest.MapFS{"zz_test.yaml": {Data: []byte(extraYAML)}}
	for _, n := range names {
		b, err := fs.ReadFile(bundled, n)
		if err != nil {
			tb.Fatal(err)
		}
		files[n] = &fstest.MapFile{Data: b}
	}
	cat, err := policy.LoadCatalog(files)
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}
