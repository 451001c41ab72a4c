package diary

import (
	"fmt"
	"time"

	"pow.do/dvm/store"
)

// The day grid: one row per hour of the day in the chosen zone, six 10-minute cells per
// row. Rows are absolute hours from local midnight, so a day with a DST change has 23 or
// 25 rows, and zones offset by half hours still get rows on their own full hours.

const cellSpan = 10 * time.Minute

type hourRow struct {
	Start time.Time
	Label string // "09:00", with the zone abbreviation when the hour repeats (DST end)
	Cells [6]gridCell
}

type gridCell struct {
	Start time.Time
	Label string
	Segs  []cellSeg
}

// First is the cell's first segment (nil when empty): the one the cell shows.
func (c gridCell) First() *cellSeg {
	if len(c.Segs) == 0 {
		return nil
	}
	return &c.Segs[0]
}

type minuteBar struct {
	Level  int // 0..4 by input count
	Active bool
	Title  string
}

type cellSeg struct {
	ID            int64
	Href          string
	Thumb         string
	Shots         int
	Deleted       int
	Skipped       int
	Bars          []minuteBar
	ActivePct     int
	ActiveMinutes int
	TopApp        string
	Time          string
	Idle          bool
	Chain         store.ChainStatus
	KimaiPending  bool
	Memo          string
}

// buildGrid lays the day's segments out in rows and cells; it returns only the rows from
// the first to the last hour with a segment.
func buildGrid(segs []store.SegmentDetail, day store.Day, loc *time.Location, view func(store.SegmentDetail) cellSeg) []hourRow {
	if len(segs) == 0 {
		return nil
	}
	start, end := store.Span(day, day, loc)
	var rows []hourRow
	seen := map[string]bool{}
	for t := start; t.Before(end); t = t.Add(time.Hour) {
		lt := t.In(loc)
		label := lt.Format("15:04")
		if seen[label] {
			label += " " + lt.Format("MST")
		}
		seen[label] = true
		row := hourRow{Start: t, Label: label}
		for i := range row.Cells {
			cs := t.Add(time.Duration(i) * cellSpan)
			row.Cells[i] = gridCell{Start: cs, Label: cs.In(loc).Format("15:04")}
		}
		rows = append(rows, row)
	}
	first, last := len(rows), -1
	for _, s := range segs {
		r := -1
		for i := range rows {
			if !s.Start.Before(rows[i].Start) && s.Start.Before(rows[i].Start.Add(time.Hour)) {
				r = i
				break
			}
		}
		if r < 0 {
			continue // not on this day (cannot happen with DaySegments)
		}
		c := int(s.Start.Sub(rows[r].Start) / cellSpan)
		rows[r].Cells[c].Segs = append(rows[r].Cells[c].Segs, view(s))
		first, last = min(first, r), max(last, r)
	}
	if last < 0 {
		return nil
	}
	return rows[first : last+1]
}

// cellView is what a grid cell shows of a segment.
func (d *Diary) cellView(z zone) func(store.SegmentDetail) cellSeg {
	return func(s store.SegmentDetail) cellSeg {
		c := cellSeg{
			ID: s.ID, Href: d.path(fmt.Sprintf("/segments/%d?%s", s.ID, z.Query())), Shots: len(s.Screenshots),
			Deleted: len(s.Deleted), Skipped: len(s.Skipped), Idle: s.ActiveSeconds == 0, Chain: s.ChainStatus,
			KimaiPending: s.KimaiState == store.KimaiPending, Memo: s.Memo, ActiveMinutes: activeMinutes(s.Minutes),
			Time: s.Start.In(z.Loc).Format("15:04") + "–" + s.End.In(z.Loc).Format("15:04"),
		}
		if len(s.Screenshots) > 0 {
			c.Thumb = d.thumbURL(s.Screenshots[0].SHA256)
		}
		if dur := s.End.Sub(s.Start).Seconds(); dur > 0 {
			c.ActivePct = int(float64(s.ActiveSeconds)*100/dur + 0.5)
		}
		if len(s.TopApps) > 0 {
			c.TopApp = s.TopApps[0].Name
		}
		c.Bars = bars(s.Minutes, z.Loc)
		return c
	}
}

// bars grades each minute's input (keys + clicks) for the activity bar.
func bars(ms []store.Minute, loc *time.Location) []minuteBar {
	out := make([]minuteBar, 0, len(ms))
	for _, m := range ms {
		n := m.Keys + m.Clicks
		lvl := 0
		switch {
		case !m.Active || n == 0:
		case n < 20:
			lvl = 1
		case n < 60:
			lvl = 2
		case n < 120:
			lvl = 3
		default:
			lvl = 4
		}
		state := "idle"
		if m.Active {
			state = "active"
		}
		out = append(out, minuteBar{Level: lvl, Active: m.Active,
			Title: fmt.Sprintf("%s: %d keys, %d clicks, %d moves, %s", m.T.In(loc).Format("15:04"), m.Keys, m.Clicks, m.Moves, state)})
	}
	return out
}
