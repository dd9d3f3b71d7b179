package policy

import (
	"fmt"
	"testing"
	"time"
)

// FuzzStanding: whatever records come in (any items, any dates, any
// order), points stay within [0, cap], the level is the highest threshold
// the points reach, Nanning's rolling points are exactly the sum of the
// window, and one more record in the same urban cycle never lowers the
// points.
func FuzzStanding(f *testing.F) {
	f.Add([]byte{0, 0, 0, 10, 0, 20, 0, 30})
	f.Add([]byte{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6})
	f.Add([]byte{200, 0, 201, 90, 202, 180, 203, 250})
	f.Add([]byte{7, 255, 7, 254, 7, 253})
	c, err := BundledCatalog()
	if err != nil {
		f.Fatal(err)
	}
	var urban, nanning []ViolationItem
	for _, it := range c.ViolationItems() {
		switch it.RuleSet {
		case "urban_management":
			urban = append(urban, it)
		case "nanning_urban_management":
			nanning = append(nanning, it)
		}
	}
	points := map[string]int{"minor": 1, "serious": 3, "grave": 6}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, cst)
	at := start.AddDate(2, 0, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			return
		}
		var um, nn []ViolationRecord
		for i := 0; i+1 < len(data); i += 2 {
			pick, day := int(data[i]), int(data[i+1])
			decided := start.AddDate(0, 0, day*3) // up to ~2 years
			id := fmt.Sprintf("r%03d", i/2)
			um = append(um, ViolationRecord{ID: id, RuleSet: "urban_management", Item: urban[pick%len(urban)].ID,
				Severity: urban[pick%len(urban)].Severity, DecidedAt: decided})
			nn = append(nn, ViolationRecord{ID: id, RuleSet: "nanning_urban_management", Item: nanning[pick%len(nanning)].ID,
				Severity: nanning[pick%len(nanning)].Severity, DecidedAt: decided})
		}
		for _, tc := range []struct {
			rs      string
			records []ViolationRecord
		}{{"urban_management", um}, {"nanning_urban_management", nn}} {
			set, _ := c.RuleSet(tc.rs)
			st, err := c.Standing(tc.rs, tc.records, at)
			if err != nil {
				t.Fatal(err)
			}
			if st.Points < 0 || (set.Cap > 0 && st.Points > set.Cap) {
				t.Fatalf("%s: %d points", tc.rs, st.Points)
			}
			want := ""
			for _, lv := range set.Levels {
				if st.Points >= lv.Points {
					want = lv.List
				}
			}
			if st.Level != want {
				t.Fatalf("%s: %d points at level %q, want %q", tc.rs, st.Points, st.Level, want)
			}
		}
		sum := 0
		for _, r := range nn {
			if r.DecidedAt.After(at.AddDate(-1, 0, 0)) && !r.DecidedAt.After(at) {
				sum += points[r.Severity]
			}
		}
		if st, _ := c.Standing("nanning_urban_management", nn, at); st.Points != sum {
			t.Fatalf("nanning: %d points, want %d", st.Points, sum)
		}
		if len(um) > 0 {
			before, _ := c.Standing("urban_management", um[:len(um)-1], at)
			after, _ := c.Standing("urban_management", um, at)
			last := um[len(um)-1].DecidedAt.In(cst).Year()
			if last == at.In(cst).Year() && after.Points < before.Points {
				t.Fatalf("a record in the current cycle lowered the points: %d → %d", before.Points, after.Points)
			}
		}
	})
}
