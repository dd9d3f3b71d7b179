package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

// linesOf finds the line of each key the store names, in the first run
// held in memory and across runs written to the file alike, whatever
// zone the key's time is in; a key of no line is line 0.
func TestImportDuplicatesLinesOf(t *testing.T) {
	at := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	entry := func(i int) policy.Entry {
		return policy.Entry{Subject: policy.SubjectID{Value: fmt.Sprintf("S%07d", i)}, List: "l", OriginatingDepartment: "d", DecidedAt: at}
	}
	for _, n := range []int{10, 3*dupRun + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := newImportDuplicates()
			defer d.close()
			for i := range n {
				d.add(entry(i), 2*i+2) // a header, a blank line between
			}
			if _, err := d.lines(); err != nil {
				t.Fatal(err)
			}
			if (d.f != nil) != (n > dupRun) {
				t.Fatalf("runs in a file: %v, with %d lines", d.f != nil, n)
			}
			cst := entry(n - 1)
			cst.DecidedAt = cst.DecidedAt.In(time.FixedZone("CST", 8*3600))
			other := entry(0)
			other.List = "m"
			keys := []EntryKey{KeyOf(entry(n / 2)), KeyOf(entry(0)), KeyOf(cst), KeyOf(other)}
			got, err := d.linesOf(keys)
			if err != nil {
				t.Fatal(err)
			}
			want := []int{2*(n/2) + 2, 2, 2*(n-1) + 2, 0}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("lines %v, want %v", got, want)
			}
		})
	}
}
