package diarytest

import (
	"context"
	"fmt"
	"time"

	"pow.do/dvm/store"
)

// Timesheet ids the standard scenario books segments to.
const (
	TimesheetAlice int64 = 501
	TimesheetBob   int64 = 502
)

// Dataset is what Standard stored, for tests to compute expectations from.
type Dataset struct {
	Alice, Bob         Worker
	AliceZone, BobZone *time.Location
	// Monday is the Monday of the main week (2026-11-16).
	Monday store.Day
	// Sent lists every accepted segment per worker pubkey.
	Sent map[string][]Sent
	// Timesheet maps a Kimai timesheet id to the sessions booked to it.
	Timesheet map[int64][]string
	// Lost counts segments built but never delivered, per worker.
	Lost map[string]int
}

// StandardNow is an ingest clock after every segment of the standard scenario.
var StandardNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Standard stores two workers' weeks through the real ingest path:
//
//   - Alice (America/New_York): Monday 09:00-12:00 with a lost segment (a chain gap), two
//     idle segments, a deleted and a skipped screenshot and one without screenshots
//     (booked to Kimai timesheet 501); Monday 13:00-14:30 (not yet in Kimai); Monday
//     19:00-19:30, which is Tuesday in UTC; Tuesday 10:00-11:00; next Monday 09:00-09:30.
//   - Bob (Europe/Berlin): Monday 08:00-09:00 with a broken chain link (timesheet 502);
//     Sunday 23:30 to Monday 00:30 Berlin time, all of it Sunday in UTC.
func Standard(ctx context.Context, e *Env) (*Dataset, error) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	d := &Dataset{AliceZone: ny, BobZone: berlin, Monday: store.Day{Year: 2026, Month: time.November, Day: 16},
		Sent: map[string][]Sent{}, Timesheet: map[int64][]string{}, Lost: map[string]int{}}
	if d.Alice, err = e.AddWorker(ctx, "Alice Example"); err != nil {
		return nil, err
	}
	if d.Bob, err = e.AddWorker(ctx, "Bob Beispiel"); err != nil {
		return nil, err
	}
	at := func(loc *time.Location, day, hour, min int) time.Time {
		return time.Date(2026, time.November, day, hour, min, 0, 0, loc)
	}
	plans := []struct {
		w         Worker
		p         SessionPlan
		timesheet int64
	}{
		{d.Alice, SessionPlan{Start: at(ny, 16, 9, 0), Count: 18, Seed: 1, Memo: "Diary grid",
			Lost: map[int]bool{7: true}, Idle: map[int]bool{3: true, 4: true}, Deleted: map[int]bool{5: true},
			Skipped: map[int]bool{10: true}, NoShots: map[int]bool{12: true}}, TimesheetAlice},
		{d.Alice, SessionPlan{Start: at(ny, 16, 13, 0), Count: 9, Seed: 2, Memo: "=SUM(A1) review", Project: ProjectMobile}, 0},
		{d.Alice, SessionPlan{Start: at(ny, 16, 19, 0), Count: 3, Seed: 3, Memo: "<b>evening</b> & more"}, 0},
		{d.Alice, SessionPlan{Start: at(ny, 17, 10, 0), Count: 6, Seed: 4, Memo: "Tuesday"}, 0},
		{d.Alice, SessionPlan{Start: at(ny, 23, 9, 0), Count: 3, Seed: 5, Memo: "next week"}, 0},
		{d.Bob, SessionPlan{Start: at(berlin, 16, 8, 0), Count: 6, Seed: 6, Memo: "Kunde A",
			BadPrev: map[int]bool{3: true}, Activity: ActivityMeeting}, TimesheetBob},
		{d.Bob, SessionPlan{Start: at(berlin, 15, 23, 30), Count: 6, Seed: 7, Memo: "late"}, 0},
	}
	for _, pl := range plans {
		sent, err := e.Run(ctx, pl.w, pl.p)
		if err != nil {
			return nil, err
		}
		d.Sent[pl.w.Pub] = append(d.Sent[pl.w.Pub], sent...)
		d.Lost[pl.w.Pub] += len(pl.p.Lost)
		if pl.timesheet == 0 {
			continue
		}
		segs, err := e.Store.SessionSegments(ctx, sent[0].Session)
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		ids := make([]int64, len(segs))
		for i, s := range segs {
			ids[i] = s.ID
		}
		if err := e.Store.SetSegmentsKimai(ctx, ids, store.KimaiSynced, pl.timesheet); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		d.Timesheet[pl.timesheet] = append(d.Timesheet[pl.timesheet], sent[0].Session)
	}
	return d, nil
}
