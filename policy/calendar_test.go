package policy

import (
	"errors"
	"testing"
	"time"
)

// cst is China Standard Time, the zone of the bundled calendar.
var cst = time.FixedZone("CST", 8*3600)

func at8(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, cst) }

func bundledCalendar(t testing.TB) *Calendar {
	t.Helper()
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c.Calendar()
}

func TestCalendarWorkingDays(t *testing.T) {
	cal := bundledCalendar(t)
	for _, tc := range []struct {
		day  Date
		want bool
	}{
		{Date{2026, 3, 2}, true},    // Monday
		{Date{2026, 3, 7}, false},   // Saturday
		{Date{2026, 2, 16}, false},  // 春节, a Monday
		{Date{2026, 2, 14}, true},   // make-up working Saturday
		{Date{2026, 10, 10}, true},  // make-up working Saturday
		{Date{2026, 10, 5}, false},  // 国庆, a Monday
		{Date{2027, 10, 1}, true},   // not covered: a Friday counts as working
		{Date{2025, 1, 26}, true},   // make-up working Sunday
		{Date{2025, 10, 8}, false},  // 国庆·中秋 2025, a Wednesday
		{Date{2025, 12, 31}, true},  // Wednesday
		{Date{2026, 12, 26}, false}, // Saturday
	} {
		if got := cal.IsWorkingDay(tc.day); got != tc.want {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", tc.day, got, tc.want)
		}
	}
	if !cal.Covers(2026) || cal.Covers(2027) {
		t.Error("covers")
	}
}

func TestCalendarDeadline(t *testing.T) {
	cal := bundledCalendar(t)
	for _, tc := range []struct {
		name  string
		filed time.Time
		n     int
		want  time.Time
	}{
		// Filed Monday 2026-03-02: the day itself does not count; 15 working days
		// are Mar 3–6, 9–13, 16–20, 23: due by the end of Monday 2026-03-23.
		{"plain weeks", at8(2026, 3, 2, 10), 15, at8(2026, 3, 24, 0)},
		// Filed late in the evening, still the same civil day in China.
		{"late evening", time.Date(2026, 3, 2, 15, 30, 0, 0, time.UTC), 15, at8(2026, 3, 24, 0)},
		// Filed Monday 2026-09-28: Sep 29, 30; Oct 1–7 国庆 off; Oct 8, 9; Saturday Oct 10
		// worked (调休); Oct 12–16; Oct 19–23 → due by the end of Friday 2026-10-23.
		{"across 国庆 with a make-up day", at8(2026, 9, 28, 9), 15, at8(2026, 10, 24, 0)},
		// Filed Friday 2026-02-13 before 春节: Feb 14 (worked Saturday) is day 1; Feb 15–23
		// off; Feb 24–27 (5); Saturday Feb 28 worked (6); Mar 2–6 (11); Mar 9–13 (16);
		// Mar 16–19 (20) → due by the end of Thursday 2026-03-19.
		{"across 春节, 20 working days", at8(2026, 2, 13, 9), 20, at8(2026, 3, 20, 0)},
		{"zero days is the end of the day", at8(2026, 3, 2, 10), 0, at8(2026, 3, 3, 0)},
	} {
		if got := cal.Deadline(tc.filed, tc.n); !got.Equal(tc.want) {
			t.Errorf("%s: Deadline = %s, want %s", tc.name, got.In(cst), tc.want)
		}
	}
}

func TestCalendarWorkingDaysBeforeAndBetween(t *testing.T) {
	cal := bundledCalendar(t)
	// 5 working days before Monday 2026-03-16 opens on Monday 2026-03-09.
	if got, want := cal.WorkingDaysBefore(at8(2026, 3, 16, 0), 5), at8(2026, 3, 9, 0); !got.Equal(want) {
		t.Errorf("WorkingDaysBefore = %s, want %s", got.In(cst), want)
	}
	// Across 国庆: 3 working days before Monday 2026-10-12 are Oct 10 (worked Saturday), Oct 9, Oct 8.
	if got, want := cal.WorkingDaysBefore(at8(2026, 10, 12, 0), 3), at8(2026, 10, 8, 0); !got.Equal(want) {
		t.Errorf("WorkingDaysBefore across 国庆 = %s, want %s", got.In(cst), want)
	}
	if n := cal.WorkingDaysBetween(at8(2026, 9, 28, 9), at8(2026, 10, 12, 9)); n != 6 {
		t.Errorf("WorkingDaysBetween across 国庆 = %d, want 6 (Sep 29, 30, Oct 8, 9, 10, 12)", n)
	}
	if n := cal.WorkingDaysBetween(at8(2026, 3, 5, 9), at8(2026, 3, 2, 9)); n != 0 {
		t.Errorf("backwards = %d", n)
	}
}

func TestNewCalendarRejects(t *testing.T) {
	d := func(s string) Date {
		v, err := ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, spec := range map[string]CalendarSpec{
		"holiday outside covered years": {UTCOffsetHours: 8, Covers: []int{2026}, Holidays: []Date{d("2027-01-01")}},
		"holiday twice":                 {UTCOffsetHours: 8, Covers: []int{2026}, Holidays: []Date{d("2026-01-01"), d("2026-01-01")}},
		"make-up day on a weekday":      {UTCOffsetHours: 8, Covers: []int{2026}, WorkingDays: []Date{d("2026-03-02")}},
		"both holiday and working":      {UTCOffsetHours: 8, Covers: []int{2026}, Holidays: []Date{d("2026-02-14")}, WorkingDays: []Date{d("2026-02-14")}},
		"offset out of range":           {UTCOffsetHours: 20},
		"year covered twice":            {UTCOffsetHours: 8, Covers: []int{2026, 2026}},
	} {
		if _, err := NewCalendar(spec); !errors.Is(err, ErrCalendarInvalid) {
			t.Errorf("%s: err = %v, want ErrCalendarInvalid", name, err)
		}
	}
	for _, bad := range []string{"2026-02-30", "2026-2-1", "20260201", ""} {
		if _, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}
