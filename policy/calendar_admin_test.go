package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCalendarProvisional(t *testing.T) {
	cal := bundledCalendar(t) // covers 2025 and 2026
	for _, tc := range []struct {
		name     string
		from     time.Time
		n        int
		want     bool
		reversed bool // WorkingDaysBefore instead of Deadline
	}{
		{"within 2026", at8(2026, 3, 2, 10), 15, false, false},
		{"from December 2026 into 2027", at8(2026, 12, 20, 10), 15, true, false},
		{"last day of 2026, 1 working day", at8(2026, 12, 30, 10), 1, false, false},
		{"last day of 2026 into January", at8(2026, 12, 31, 10), 1, true, false},
		{"filed in 2027", at8(2027, 2, 1, 10), 15, true, false},
		{"window before a 2026 expiry", at8(2026, 6, 1, 0), 30, false, true},
		{"window reaching back into 2024", at8(2025, 1, 20, 0), 30, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var due time.Time
			if tc.reversed {
				due = cal.WorkingDaysBefore(tc.from, tc.n)
			} else {
				due = cal.Deadline(tc.from, tc.n)
			}
			if got := cal.Provisional(tc.from, due); got != tc.want {
				t.Fatalf("Provisional(%s, %s) = %v, want %v", tc.from, due, got, tc.want)
			}
		})
	}
}

// An objection or repair whose working-day deadline runs past the covered
// years says so.
func TestLifecycleDeadlineProvisional(t *testing.T) {
	c := bundledCat(t)
	pub := at8(2026, 6, 1, 0)
	e := listed(t, c, "e1", "urban_management_black", orgA, pub)
	for _, tc := range []struct {
		filed time.Time
		want  bool
	}{{at8(2026, 7, 1, 9), false}, {at8(2026, 12, 21, 9), true}} {
		o, err := c.FileObjection(e, "o", FiledByAdministrator, ApplicationInput{Grounds: "g"}, tc.filed)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Objections[0].DueProvisional; got != tc.want {
			t.Errorf("objection filed %s due %s: provisional %v, want %v", tc.filed, o.Objections[0].DueAt, got, tc.want)
		}
	}
	// urban_management_black is not repairable within a year of its
	// first listing (篇十三 第十五条); apply after it.
	r, err := c.ApplyRepair(e, "r", ApplicationInput{Grounds: "已纠正"}, RepairHistory{}, at8(2027, 6, 2, 9))
	if err != nil {
		t.Fatal(err)
	}
	if rp := r.Repairs[0]; rp.DueAt == nil || !rp.DueProvisional {
		t.Errorf("repair in 2027: due %v provisional %v, want provisional", rp.DueAt, rp.DueProvisional)
	}
}

const holidays2027 = `
# 国务院办公厅关于2027年部分节假日安排的通知 (test data, not the real notice)
calendar:
  covers: [2027]
  source: 2027 test notice
  holidays:
    - 2027-01-01
    - 2027-10-01
    - 2027-10-04
  working_days:
    - 2027-10-09
`

func TestWithHolidays(t *testing.T) {
	c := bundledCat(t)
	h, err := c.WithHolidays("holidays-2027.yaml", []byte(holidays2027))
	if err != nil {
		t.Fatal(err)
	}
	if h.Revision() == c.Revision() || !strings.HasPrefix(h.Revision(), "cat-") {
		t.Errorf("revision %s, base %s: want a new one", h.Revision(), c.Revision())
	}
	hf := h.Holidays()
	if hf.Name != "holidays-2027.yaml" || !strings.HasPrefix(hf.Digest, "sha256:") || len(hf.Digest) != 7+64 || !slices.Equal(hf.Covers, []int{2027}) || hf.BaseRevision != c.Revision() {
		t.Errorf("holidays file %+v", hf)
	}
	if c.Holidays().Name != "" || c.Calendar().Covers(2027) {
		t.Error("the base catalogue changed")
	}
	cal := h.Calendar()
	if !slices.Equal(cal.Covered(), []int{2025, 2026, 2027}) {
		t.Errorf("covered %v", cal.Covered())
	}
	if cal.IsWorkingDay(Date{2027, 10, 4}) || !cal.IsWorkingDay(Date{2027, 10, 9}) || cal.IsWorkingDay(Date{2026, 10, 5}) {
		t.Error("merged days")
	}
	// The December objection is no longer provisional, and its deadline
	// skips 1 January 2027.
	filed := at8(2026, 12, 21, 9)
	if due := cal.Deadline(filed, 15); cal.Provisional(filed, due) || !due.After(c.Calendar().Deadline(filed, 15)) {
		t.Errorf("deadline %s (without the file %s)", due, c.Calendar().Deadline(filed, 15))
	}
	if !slices.Contains(h.CalendarSpec().Covers, 2027) || !strings.Contains(h.CalendarSpec().Source, "2027 test notice") {
		t.Errorf("spec %+v", h.CalendarSpec())
	}
	if h2, err := h.WithHolidays("again.yaml", []byte(holidays2027)); err == nil {
		t.Errorf("a year laid twice was accepted: %v", h2.Calendar().Covered())
	}
}

func TestWithHolidaysRejects(t *testing.T) {
	c := bundledCat(t)
	for _, tc := range []struct{ name, yaml, want string }{
		{"overlap with the catalogue", "calendar:\n  covers: [2026]\n  holidays: [2026-12-31]\n", "2026 is already covered"},
		{"date outside the file's years", "calendar:\n  covers: [2027]\n  holidays: [2026-12-31]\n", "holiday 2026-12-31 is outside the file's covered years"},
		{"no covers", "calendar:\n  holidays: [2027-01-01]\n", "covers"},
		{"other zone", "calendar:\n  utc_offset_hours: 9\n  covers: [2027]\n", "utc_offset_hours 9 conflicts"},
		{"both holiday and working day", "calendar:\n  covers: [2027]\n  holidays: [2027-10-09]\n  working_days: [2027-10-09]\n", "both a holiday and a working day"},
		{"make-up day on a weekday", "calendar:\n  covers: [2027]\n  working_days: [2027-10-08]\n", "already a working day"},
		{"listed twice", "calendar:\n  covers: [2027]\n  holidays: [2027-01-01, 2027-01-01]\n", "listed twice"},
		{"not a date", "calendar:\n  covers: [2027]\n  holidays: [2027-02-30]\n", "2027-02-30"},
		{"unknown field", "calendar:\n  covers: [2027]\n  holiday: [2027-01-01]\n", "holiday"},
		{"no calendar section", "lists: []\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.WithHolidays("h.yaml", []byte(tc.yaml))
			if !errors.Is(err, ErrCatalogInvalid) || !strings.Contains(err.Error(), "holidays file h.yaml") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCatalogInvalid naming h.yaml and %q", err, tc.want)
			}
		})
	}
}

// The YAML decoder panics on some malformed input; a catalogue directory
// or holidays file holding it is refused with the file named, not a crash.
func TestMalformedYAMLIsAnError(t *testing.T) {
	const bad = "\n#\ncalendar:\n  71zY: [1]\n  A`: 2\n  holidays:\n   !0 00000000000000000000000000000000000000000000\n00000000000008:\n00000000000000"
	if _, err := LoadCatalog(mapFS(bad)); !errors.Is(err, ErrCatalogInvalid) || !strings.Contains(err.Error(), "test.yaml") {
		t.Fatalf("LoadCatalog: %v", err)
	}
	if _, err := bundledCat(t).WithHolidays("h.yaml", []byte(bad)); !errors.Is(err, ErrCatalogInvalid) || !strings.Contains(err.Error(), "h.yaml") {
		t.Fatalf("WithHolidays: %v", err)
	}
}
