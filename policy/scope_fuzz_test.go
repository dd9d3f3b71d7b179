package policy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzRegion checks, for any region a caller or an administrator may send,
// that validation does not panic, that what it accepts is six digits whose
// containment is consistent (a region lies within itself, its prefecture
// and its province), and that ValidateContext refuses exactly what
// ValidRegion refuses. The seed corpus is in testdata/fuzz/FuzzRegion.
func FuzzRegion(f *testing.F) {
	for _, s := range []string{"440300", "370102", "370000", "000000", "440012", "4403", "44030０", "", "abcdef", "4403001"} {
		f.Add(s)
	}
	c := scopeCatalog(f)
	f.Fuzz(func(t *testing.T, code string) {
		err := ValidRegion(code)
		if cerr := c.ValidateContext(CheckContext{Region: code}); (err == nil) != (cerr == nil) && code != "" {
			t.Fatalf("ValidRegion %v but ValidateContext %v", err, cerr)
		}
		if err != nil {
			if !errors.Is(err, ErrRegionInvalid) {
				t.Fatalf("error %v does not wrap ErrRegionInvalid", err)
			}
			return
		}
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("accepted %q", code)
		}
		province, prefecture := code[:2]+"0000", code[:4]+"00"
		if !RegionWithin(code, code) || !RegionWithin(code, province) {
			t.Fatalf("%s not within itself or its province", code)
		}
		if ValidRegion(prefecture) == nil && !RegionWithin(code, prefecture) {
			t.Fatalf("%s not within its prefecture %s", code, prefecture)
		}
		if code != province && RegionWithin(province, code) {
			t.Fatalf("province %s within %s", province, code)
		}
		// Decide copes with any valid region against scoped measures.
		if _, err := Decide(c, Query{Subject: org, Action: "government_procurement", Context: CheckContext{Region: code}}, nil); err != nil {
			t.Fatal(err)
		}
	})
}
