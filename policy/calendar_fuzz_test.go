package policy

import (
	"errors"
	"slices"
	"testing"
)

// FuzzWithHolidays: a holidays file is outside input (an operator's file).
// For any bytes, WithHolidays does not panic; it either refuses with
// ErrCatalogInvalid or returns a catalogue whose calendar covers the
// catalogue's years plus the file's new ones, leaving the original
// catalogue unchanged. The seed corpus is in testdata/fuzz/FuzzWithHolidays.
func FuzzWithHolidays(f *testing.F) {
	f.Add([]byte(holidays2027))
	f.Add([]byte("calendar:\n  covers: [2026]\n"))
	f.Add([]byte("calendar: {covers: [2027], holidays: [2027-02-30]}\n"))
	f.Add([]byte(""))
	c, err := BundledCatalog()
	if err != nil {
		f.Fatal(err)
	}
	base := c.Calendar().Covered()
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := c.WithHolidays("f.yaml", data)
		if !slices.Equal(c.Calendar().Covered(), base) || c.Holidays().Name != "" {
			t.Fatal("the original catalogue changed")
		}
		if err != nil {
			if !errors.Is(err, ErrCatalogInvalid) {
				t.Fatalf("error %v does not wrap ErrCatalogInvalid", err)
			}
			return
		}
		got := h.Calendar().Covered()
		for _, y := range base {
			if !slices.Contains(got, y) {
				t.Fatalf("covered %v lost %d", got, y)
			}
		}
		if len(h.Holidays().Covers) == 0 || len(got) != len(base)+len(h.Holidays().Covers) || h.Revision() == c.Revision() {
			t.Fatalf("merged %v, file %+v, revision %s", got, h.Holidays(), h.Revision())
		}
	})
}
