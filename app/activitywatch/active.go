package activitywatch

import (
	"sort"
	"time"
)

// DefaultPulsetime is the gap ActivityWatch's views flood over (its
// canonical queries call flood() with the default of 5 seconds).
const DefaultPulsetime = 5 * time.Second

// Flood fills short gaps between events the way ActivityWatch's flood
// transform does, so watcher polling gaps do not count as inactivity:
//
//   - events are ordered by timestamp;
//   - neighbours with equal data closer than pulsetime (or overlapping) merge;
//   - neighbours with different data and a gap up to pulsetime both extend to
//     the middle of the gap;
//   - where differing events overlap, the later one wins the overlap, so no
//     time is counted twice.
//
// The input is not modified; the result is oldest first.
func Flood(events []Event, pulsetime time.Duration) []Event {
	rest := make([]Event, len(events))
	copy(rest, events)
	SortOldestFirst(rest)
	out := make([]Event, 0, len(rest))
	for len(rest) > 0 {
		e := rest[0]
		rest = rest[1:]
		if len(out) == 0 {
			out = append(out, e)
			continue
		}
		last := &out[len(out)-1]
		lastEnd, eEnd := last.End(), e.End()
		gap := e.Timestamp.Sub(lastEnd)
		switch {
		case gap <= pulsetime && sameData(*last, e):
			if eEnd.After(lastEnd) {
				last.Duration = durationSeconds(eEnd.Sub(last.Timestamp))
			}
		case gap < 0:
			// The later event takes the overlap; what the earlier one covered
			// after the later ends goes back into the queue.
			if lastEnd.After(eEnd) {
				tail := *last
				tail.ID = 0
				tail.Timestamp = eEnd
				tail.Duration = durationSeconds(lastEnd.Sub(eEnd))
				i := sort.Search(len(rest), func(i int) bool { return !rest[i].Timestamp.Before(eEnd) })
				rest = append(rest[:i], append([]Event{tail}, rest[i:]...)...)
			}
			last.Duration = durationSeconds(e.Timestamp.Sub(last.Timestamp))
			if last.Duration <= 0 {
				// Covered from its very start: drop it and compare e with
				// the event before instead.
				out = out[:len(out)-1]
				rest = append([]Event{e}, rest...)
				continue
			}
			out = append(out, e)
		case gap <= pulsetime:
			mid := lastEnd.Add(gap / 2)
			last.Duration = durationSeconds(mid.Sub(last.Timestamp))
			e.Timestamp = mid
			e.Duration = durationSeconds(eEnd.Sub(mid))
			out = append(out, e)
		default:
			out = append(out, e)
		}
	}
	return out
}

// Interval is a half-open time range [Start, End).
type Interval struct {
	Start, End time.Time
}

// union merges the events' spans into sorted, disjoint intervals.
func union(events []Event) []Interval {
	var iv []Interval
	for _, e := range events {
		if e.Duration > 0 {
			iv = append(iv, Interval{e.Timestamp, e.End()})
		}
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i].Start.Before(iv[j].Start) })
	var out []Interval
	for _, v := range iv {
		if n := len(out); n > 0 && !v.Start.After(out[n-1].End) {
			if v.End.After(out[n-1].End) {
				out[n-1].End = v.End
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

// intersect returns the overlap of two sorted, disjoint interval lists.
func intersect(a, b []Interval) []Interval {
	var out []Interval
	for i, j := 0, 0; i < len(a) && j < len(b); {
		s, e := maxTime(a[i].Start, b[j].Start), minTime(a[i].End, b[j].End)
		if e.After(s) {
			out = append(out, Interval{s, e})
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return out
}

// ActiveIntervals is when the worker was active as ActivityWatch's views see
// it: the flooded window events intersected with the flooded afk events
// whose status is "not-afk".
func ActiveIntervals(window, afk []Event, pulsetime time.Duration) []Interval {
	notAFK := make([]Event, 0, len(afk))
	for _, e := range Flood(afk, pulsetime) {
		if s, _ := e.Data["status"].(string); s == "not-afk" {
			notAFK = append(notAFK, e)
		}
	}
	return intersect(union(Flood(window, pulsetime)), union(notAFK))
}

// ActiveTime is the total length of ActiveIntervals.
func ActiveTime(window, afk []Event, pulsetime time.Duration) time.Duration {
	var total time.Duration
	for _, v := range ActiveIntervals(window, afk, pulsetime) {
		total += v.End.Sub(v.Start)
	}
	return total
}

// overlap is the length of iv inside [start, end).
func overlap(iv []Interval, start, end time.Time) time.Duration {
	var total time.Duration
	for _, v := range iv {
		s, e := maxTime(v.Start, start), minTime(v.End, end)
		if e.After(s) {
			total += e.Sub(s)
		}
	}
	return total
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
