package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"pow.do/dvm/store"
)

// DayTotals sums segments per worker and calendar day in loc. The sums are made in Go
// because SQLite knows no time zones; the covering index segments_worker_start means the
// query never touches the table itself.
func (d *DB) DayTotals(ctx context.Context, worker string, loc *time.Location, from, to store.Day) ([]store.DayTotal, error) {
	if loc == nil {
		loc = time.UTC
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	start, end := store.Span(from, to, loc)
	if !start.IsZero() {
		lo = ms(start)
	}
	if !end.IsZero() {
		hi = ms(end)
	}
	q := `SELECT worker, start_at, end_at, active_seconds, screenshot_count, chain_status, kimai_state FROM segments `
	args := []any{lo, hi}
	if worker != "" {
		q += `INDEXED BY segments_worker_start WHERE worker = ? AND start_at >= ? AND start_at < ? ORDER BY start_at`
		args = append([]any{worker}, args...)
	} else {
		// Walk the covering index once per worker: no table lookups and no sort.
		q += `INDEXED BY segments_worker_start WHERE worker IN (SELECT pubkey FROM workers)
			AND start_at >= ? AND start_at < ? ORDER BY worker, start_at`
	}
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("day totals: %w", err)
	}
	defer rows.Close()
	var out []store.DayTotal
	for rows.Next() {
		var s store.Segment
		var st, en int64
		var chain, kimai string
		if err := rows.Scan(&s.Worker, &st, &en, &s.ActiveSeconds, &s.ScreenshotCount, &chain, &kimai); err != nil {
			return nil, fmt.Errorf("day totals: %w", err)
		}
		s.Start, s.End, s.ChainStatus, s.KimaiState = fromMS(st), fromMS(en), store.ChainStatus(chain), store.KimaiState(kimai)
		day := store.DayOf(s.Start, loc)
		if n := len(out); n == 0 || out[n-1].Worker != s.Worker || out[n-1].Day != day {
			out = append(out, store.DayTotal{Worker: s.Worker, Day: day})
		}
		out[len(out)-1].Add(s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("day totals: %w", err)
	}
	return out, nil
}

// WeekTotals sums DayTotals per ISO week.
func (d *DB) WeekTotals(ctx context.Context, worker string, loc *time.Location, from, to store.Day) ([]store.WeekTotal, error) {
	days, err := d.DayTotals(ctx, worker, loc, from, to)
	if err != nil {
		return nil, fmt.Errorf("week totals: %w", err)
	}
	var out []store.WeekTotal
	for _, dt := range days {
		wk := dt.Day.Week()
		if n := len(out); n == 0 || out[n-1].Worker != dt.Worker || out[n-1].Week != wk {
			out = append(out, store.WeekTotal{Worker: dt.Worker, Week: wk})
		}
		out[len(out)-1].Merge(dt.Totals)
	}
	return out, nil
}

// DaySegments returns the worker's segments starting on day in loc, with details.
func (d *DB) DaySegments(ctx context.Context, worker string, day store.Day, loc *time.Location) ([]store.SegmentDetail, error) {
	if loc == nil {
		loc = time.UTC
	}
	if day.IsZero() {
		return nil, fmt.Errorf("day segments: %w: no day", store.ErrInvalid)
	}
	start, end := store.Span(day, day, loc)
	var out []store.SegmentDetail
	err := d.read(ctx, "day segments", func(tx *sql.Tx) error {
		var err error
		out, err = loadDetails(ctx, tx, `s.worker = ? AND s.start_at >= ? AND s.start_at < ?`, worker, ms(start), ms(end))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("day segments %s %s: %w", worker, day, err)
	}
	return out, nil
}

// TimesheetSegments returns the segments booked to a Kimai timesheet.
func (d *DB) TimesheetSegments(ctx context.Context, kimaiTimesheetID int64) ([]store.SegmentDetail, error) {
	var out []store.SegmentDetail
	err := d.read(ctx, "timesheet segments", func(tx *sql.Tx) error {
		var err error
		out, err = loadDetails(ctx, tx, `s.kimai_timesheet_id = ?`, kimaiTimesheetID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("timesheet %d segments: %w", kimaiTimesheetID, err)
	}
	return out, nil
}
