package service

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

// Duplicates are found across the sorted runs, each later line naming the
// first line with its key, in line order; keys that differ in any part
// (or the time, not the way it is written) are not duplicates.
func TestImportDuplicatesAcrossRuns(t *testing.T) {
	d := newImportDuplicates()
	defer d.close()
	at := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	entry := func(i int) policy.Entry {
		return policy.Entry{Subject: policy.SubjectID{Value: fmt.Sprintf("S%07d", i)}, List: "l", OriginatingDepartment: "d", DecidedAt: at}
	}
	n := 3*dupRun + 17
	for i := range n {
		d.add(entry(i), i+1)
	}
	// Line n+1 repeats line 1 (first run), n+2 repeats line 2*dupRun+5
	// (third run) in another time zone, n+3 repeats n+1's key again.
	d.add(entry(0), n+1)
	e := entry(2*dupRun + 4)
	e.DecidedAt = e.DecidedAt.In(time.FixedZone("CST", 8*3600))
	d.add(e, n+2)
	d.add(entry(0), n+3)
	// Not duplicates: another list, department, time.
	for i, change := range []func(*policy.Entry){
		func(e *policy.Entry) { e.List = "m" },
		func(e *policy.Entry) { e.OriginatingDepartment = "d2" },
		func(e *policy.Entry) { e.DecidedAt = e.DecidedAt.Add(time.Microsecond) },
	} {
		e := entry(7)
		change(&e)
		d.add(e, n+4+i)
	}
	got, err := d.lines()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{n + 1, 1}, {n + 2, 2*dupRun + 5}, {n + 3, 1}}
	if len(got) != len(want) {
		t.Fatalf("%d duplicate lines, want %d: %v", len(got), len(want), got)
	}
	for i, l := range got {
		if l.Line != want[i][0] || !errors.Is(l.Err, ErrDuplicateEntry) || !strings.Contains(l.Err.Error(), fmt.Sprintf("as line %d ", want[i][1])) {
			t.Errorf("line %d: %v; want line %d naming line %d", l.Line, l.Err, want[i][0], want[i][1])
		}
	}
}

// A file repeating one entry on every line names only the earliest
// MaxImportErrors repeats, whatever its length: the merge keeps no more.
func TestImportDuplicatesKeepTheEarliest(t *testing.T) {
	d := newImportDuplicates()
	defer d.close()
	e := policy.Entry{Subject: policy.SubjectID{Value: "S"}, List: "l", OriginatingDepartment: "d", DecidedAt: time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)}
	n := 2*dupRun + 3
	for i := range n {
		d.add(e, i+1)
	}
	if d.f == nil {
		t.Fatal("the runs are still in memory after the second")
	}
	got, err := d.lines()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxImportErrors {
		t.Fatalf("%d lines, want %d", len(got), MaxImportErrors)
	}
	for i, l := range got {
		if l.Line != i+2 || !strings.Contains(l.Err.Error(), "as line 1 ") {
			t.Fatalf("line %d: %v; want line %d naming line 1", l.Line, l.Err, i+2)
		}
	}
}
