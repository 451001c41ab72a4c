package store

import (
	"fmt"
	"time"
)

// Day is a calendar date, independent of any time zone. The zero Day means "unbounded"
// where a range is asked for.
type Day struct {
	Year  int
	Month time.Month
	Day   int
}

// DayOf is the calendar day of t in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return Day{y, m, d}
}

// ParseDay reads "2006-01-02".
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Day{}, fmt.Errorf("parse day %q: %w", s, err)
	}
	return DayOf(t, time.UTC), nil
}

// IsZero reports whether d is the zero Day.
func (d Day) IsZero() bool { return d == Day{} }

// String formats d as "2006-01-02".
func (d Day) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Start is the first instant of d in loc (midnight, or the first instant after a DST gap).
func (d Day) Start(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// AddDays returns the day n days later (earlier for negative n).
func (d Day) AddDays(n int) Day {
	return DayOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC), time.UTC)
}

// Before reports whether d is earlier than e.
func (d Day) Before(e Day) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Week is the Monday of d's ISO week.
func (d Day) Week() Day {
	wd := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
	return d.AddDays(-((int(wd) + 6) % 7))
}

// Span converts the inclusive day range from..to into the half-open instant range
// [start, end) in loc. A zero bound becomes the zero time (unbounded).
func Span(from, to Day, loc *time.Location) (start, end time.Time) {
	if !from.IsZero() {
		start = from.Start(loc)
	}
	if !to.IsZero() {
		end = to.AddDays(1).Start(loc)
	}
	return start, end
}

// Add adds one segment's figures to t.
func (t *Totals) Add(s Segment) {
	t.Segments++
	t.TrackedSeconds += int64(s.End.Sub(s.Start) / time.Second)
	t.ActiveSeconds += int64(s.ActiveSeconds)
	t.Screenshots += s.ScreenshotCount
	switch s.ChainStatus {
	case ChainVerified:
		t.Verified++
	case ChainGap:
		t.Gaps++
	case ChainBroken:
		t.Broken++
	}
	if s.KimaiState == KimaiPending {
		t.KimaiPending++
	}
}

// Merge adds o's figures to t.
func (t *Totals) Merge(o Totals) {
	t.Segments += o.Segments
	t.TrackedSeconds += o.TrackedSeconds
	t.ActiveSeconds += o.ActiveSeconds
	t.Screenshots += o.Screenshots
	t.Verified += o.Verified
	t.Gaps += o.Gaps
	t.Broken += o.Broken
	t.KimaiPending += o.KimaiPending
}
