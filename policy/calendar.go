package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Date is a civil date (no time of day, no zone), written YYYY-MM-DD in the
// catalogue. Working-day deadlines are counted in civil dates of the
// calendar's zone, because 工作日 are days of the Chinese administration,
// not 24-hour periods.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses YYYY-MM-DD strictly (the date must exist).
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return dateOf(t), nil
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// UnmarshalText lets the catalogue's YAML hold dates as YYYY-MM-DD strings.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes d as YYYY-MM-DD (catalogue view).
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func dateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// in returns midnight at the start of d in loc.
func (d Date) in(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// CalendarSpec is the catalogue's working-day calendar: the public holidays
// and the make-up working days (调休上班) the State Council announces each
// year. Outside the covered years only weekends are days off, so a deadline
// that runs past the last covered year ignores holidays not yet announced.
type CalendarSpec struct {
	// UTCOffsetHours is the calendar's zone (8 for China Standard Time).
	UTCOffsetHours int `yaml:"utc_offset_hours" json:"utc_offset_hours"`
	// Covers lists the years whose holidays are declared.
	Covers      []int  `yaml:"covers" json:"covers"`
	Holidays    []Date `yaml:"holidays" json:"holidays"`
	WorkingDays []Date `yaml:"working_days" json:"working_days"`
	Source      string `yaml:"source" json:"source"`
}

// Calendar answers which days are working days and counts deadlines in
// working days. It is immutable once built.
type Calendar struct {
	loc      *time.Location
	holidays map[Date]bool
	working  map[Date]bool
	covers   []int
}

// ErrCalendarInvalid is a calendar specification that breaks a rule.
var ErrCalendarInvalid = errors.New("invalid calendar")

// maxWorkingDays caps a working-day count, so that a rule cannot make
// AddWorkingDays loop for ever.
const maxWorkingDays = 3660

// NewCalendar validates spec and builds the calendar: dates must be in the
// covered years, a day cannot be both a holiday and a make-up working day,
// a make-up working day must fall on a weekend (otherwise it is a working
// day anyway) and nothing may be listed twice.
func NewCalendar(spec CalendarSpec) (*Calendar, error) {
	if spec.UTCOffsetHours < -12 || spec.UTCOffsetHours > 14 {
		return nil, fmt.Errorf("%w: utc_offset_hours %d out of range", ErrCalendarInvalid, spec.UTCOffsetHours)
	}
	c := &Calendar{
		loc:      time.FixedZone(fmt.Sprintf("UTC%+d", spec.UTCOffsetHours), spec.UTCOffsetHours*3600),
		holidays: make(map[Date]bool, len(spec.Holidays)),
		working:  make(map[Date]bool, len(spec.WorkingDays)),
		covers:   slices.Clone(spec.Covers),
	}
	slices.Sort(c.covers)
	if len(slices.Compact(slices.Clone(c.covers))) != len(c.covers) {
		return nil, fmt.Errorf("%w: a year is listed twice in covers", ErrCalendarInvalid)
	}
	for _, d := range spec.Holidays {
		if !slices.Contains(c.covers, d.Year) {
			return nil, fmt.Errorf("%w: holiday %s is outside the covered years %v", ErrCalendarInvalid, d, c.covers)
		}
		if c.holidays[d] {
			return nil, fmt.Errorf("%w: holiday %s listed twice", ErrCalendarInvalid, d)
		}
		c.holidays[d] = true
	}
	for _, d := range spec.WorkingDays {
		if !slices.Contains(c.covers, d.Year) {
			return nil, fmt.Errorf("%w: working day %s is outside the covered years %v", ErrCalendarInvalid, d, c.covers)
		}
		if c.working[d] {
			return nil, fmt.Errorf("%w: working day %s listed twice", ErrCalendarInvalid, d)
		}
		if c.holidays[d] {
			return nil, fmt.Errorf("%w: %s is both a holiday and a working day", ErrCalendarInvalid, d)
		}
		if wd := d.in(time.UTC).Weekday(); wd != time.Saturday && wd != time.Sunday {
			return nil, fmt.Errorf("%w: make-up working day %s is a %s, already a working day", ErrCalendarInvalid, d, wd)
		}
		c.working[d] = true
	}
	return c, nil
}

// Location is the calendar's zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Covers reports whether the holidays of year are declared.
func (c *Calendar) Covers(year int) bool { return slices.Contains(c.covers, year) }

// IsWorkingDay reports whether d is a working day: a weekday that is not a
// holiday, or a declared make-up working day.
func (c *Calendar) IsWorkingDay(d Date) bool {
	if c.working[d] {
		return true
	}
	if c.holidays[d] {
		return false
	}
	wd := d.in(time.UTC).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// Deadline is the end of the n-th working day after the day of t, as an
// instant: the midnight (in the calendar's zone) that follows it. The day
// of t itself does not count (期间开始之日不计算在内), so an objection filed
// on a Friday with a 15-working-day limit is due by the end of the third
// Friday after, holidays aside. n ≤ 0 gives the end of the day of t.
func (c *Calendar) Deadline(t time.Time, n int) time.Time {
	n = min(n, maxWorkingDays)
	d := t.In(c.loc)
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, c.loc)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if c.IsWorkingDay(dateOf(day)) {
			n--
		}
	}
	return day.AddDate(0, 0, 1).UTC()
}

// WorkingDaysBefore is the start (midnight in the calendar's zone) of the
// n-th working day before the day of t: the opening of a window of n
// working days that ends with the day before t. An exit application "30
// working days before expiry" may be filed from this instant on.
func (c *Calendar) WorkingDaysBefore(t time.Time, n int) time.Time {
	n = min(n, maxWorkingDays)
	d := t.In(c.loc)
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, c.loc)
	for n > 0 {
		day = day.AddDate(0, 0, -1)
		if c.IsWorkingDay(dateOf(day)) {
			n--
		}
	}
	return day.UTC()
}

// WorkingDaysBetween counts the working days after the day of from up to
// and including the day of to (0 when to is not after from). It says how
// many working days an objection has been open, or is overdue.
func (c *Calendar) WorkingDaysBetween(from, to time.Time) int {
	f, t := from.In(c.loc), to.In(c.loc)
	day := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, c.loc)
	end := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, c.loc)
	n := 0
	for day.Before(end) && n < maxWorkingDays {
		day = day.AddDate(0, 0, 1)
		if c.IsWorkingDay(dateOf(day)) {
			n++
		}
	}
	return n
}

// Covered returns the years whose holidays the calendar declares, in
// order.
func (c *Calendar) Covered() []int { return slices.Clone(c.covers) }

// Provisional reports whether a deadline counted in working days from the
// day of from to the instant due (as Deadline and WorkingDaysBefore give
// it, in either order) crosses a day of a year the calendar does not
// cover: there only weekends were days off, so the holidays of that year,
// not yet declared, may still move it. Such a deadline is shown as
// provisional.
func (c *Calendar) Provisional(from, due time.Time) bool {
	a, b := from.In(c.loc), due.In(c.loc)
	if b.Before(a) {
		a, b = b, a
	}
	// The days counted run from the day after from to the day before
	// due's midnight (Deadline), or from due's day to the day before from
	// (WorkingDaysBefore): the years of both ends cover them all.
	first := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, c.loc)
	last := b.Add(-time.Nanosecond)
	for y := first.Year(); y <= last.Year(); y++ {
		if !c.Covers(y) {
			return true
		}
	}
	return false
}

// MergeCalendar lays extra, a calendar for further years (a holidays file
// with the shape of the catalogue's calendar section), over base. extra
// may only add years: a year base already covers, dates outside extra's
// own covered years, or a different zone are refused with the conflict
// named, so that a file can never silently change a deadline the
// catalogue's calendar already fixes.
func MergeCalendar(base, extra CalendarSpec) (CalendarSpec, error) {
	if len(extra.Covers) == 0 {
		return CalendarSpec{}, fmt.Errorf("%w: covers: the years the file declares are required", ErrCalendarInvalid)
	}
	if extra.UTCOffsetHours != 0 && extra.UTCOffsetHours != base.UTCOffsetHours {
		return CalendarSpec{}, fmt.Errorf("%w: utc_offset_hours %d conflicts with the catalogue's %d", ErrCalendarInvalid, extra.UTCOffsetHours, base.UTCOffsetHours)
	}
	for _, y := range extra.Covers {
		if slices.Contains(base.Covers, y) {
			return CalendarSpec{}, fmt.Errorf("%w: %d is already covered by the catalogue's calendar (%s); a holidays file may only add years", ErrCalendarInvalid, y, base.Source)
		}
	}
	for _, set := range []struct {
		what  string
		dates []Date
	}{{"holiday", extra.Holidays}, {"working day", extra.WorkingDays}} {
		for _, d := range set.dates {
			if !slices.Contains(extra.Covers, d.Year) {
				return CalendarSpec{}, fmt.Errorf("%w: %s %s is outside the file's covered years %v", ErrCalendarInvalid, set.what, d, extra.Covers)
			}
		}
	}
	out := base
	out.Covers = append(slices.Clone(base.Covers), extra.Covers...)
	out.Holidays = append(slices.Clone(base.Holidays), extra.Holidays...)
	out.WorkingDays = append(slices.Clone(base.WorkingDays), extra.WorkingDays...)
	if extra.Source != "" {
		out.Source = base.Source + "; " + extra.Source
	}
	// NewCalendar checks the rest: duplicates within the file, a day both
	// holiday and working day, make-up days on weekdays.
	if _, err := NewCalendar(out); err != nil {
		return CalendarSpec{}, err
	}
	return out, nil
}
