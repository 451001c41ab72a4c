package diary

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"pow.do/dvm/store"
)

// maxRangeDays bounds a day listing, so one request cannot ask for centuries.
const maxRangeDays = 400

func (d *Diary) apiMe(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"reviewer": s.Reviewer, "csrf_token": s.CSRF, "expires_at": s.ExpiresAt.UTC()})
}

func (d *Diary) apiWorkers(w http.ResponseWriter, r *http.Request) {
	ws, err := d.st.Workers(r.Context(), true)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	out := make([]workerJSON, 0, len(ws))
	for _, wk := range ws {
		out = append(out, d.workerOut(wk, time.UTC))
	}
	writeJSON(w, http.StatusOK, map[string]any{"workers": out})
}

func (d *Diary) apiWorker(w http.ResponseWriter, r *http.Request) {
	wk, err := d.workerParam(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d.workerOut(wk, time.UTC))
}

// request is what most handlers start from: the worker and the zone to show.
type request struct {
	worker store.Worker
	zone   zone
}

func (d *Diary) workerAndZone(r *http.Request) (request, error) {
	wk, err := d.workerParam(r)
	if err != nil {
		return request{}, err
	}
	z, err := d.zoneFor(r.URL.Query().Get("tz"), wk.Pubkey)
	if err != nil {
		return request{}, badRequest("%v", err)
	}
	return request{worker: wk, zone: z}, nil
}

type dayTotalJSON struct {
	Day    string            `json:"day"`
	Totals totalsJSON        `json:"totals"`
	Links  map[string]string `json:"links"`
}

type weekTotalJSON struct {
	Week   string            `json:"week"` // its Monday
	Totals totalsJSON        `json:"totals"`
	Links  map[string]string `json:"links"`
}

func (d *Diary) dayLinks(pk string, day store.Day, z zone) map[string]string {
	q := "?" + z.Query()
	base := "/api/v1/workers/" + pk + "/days/" + day.String()
	return map[string]string{
		"self":   d.path(base + q),
		"page":   d.path("/workers/" + pk + "/days/" + day.String() + q),
		"csv":    d.path(base + "/export.csv" + q),
		"export": d.path(base + "/export.zip" + q),
	}
}

func (d *Diary) weekLinks(pk string, monday store.Day, z zone) map[string]string {
	q := "?" + z.Query()
	base := "/api/v1/workers/" + pk + "/weeks/" + monday.String()
	return map[string]string{
		"self":   d.path(base + q),
		"csv":    d.path(base + "/export.csv" + q),
		"export": d.path(base + "/export.zip" + q),
	}
}

// apiDays lists the worker's days with segments and their week totals, in ?from..?to
// (both optional, inclusive).
func (d *Diary) apiDays(w http.ResponseWriter, r *http.Request) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	from, to, err := rangeParams(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	days, weeks, err := d.daysAndWeeks(r.Context(), rq, from, to)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"worker": d.workerOut(rq.worker, rq.zone.Loc), "tz": rq.zone.Name,
		"from": dayOrNil(from), "to": dayOrNil(to), "days": days, "weeks": weeks,
	})
}

func dayOrNil(d store.Day) any {
	if d.IsZero() {
		return nil
	}
	return d.String()
}

func rangeParams(r *http.Request) (store.Day, store.Day, error) {
	var from, to store.Day
	var err error
	q := r.URL.Query()
	if s := q.Get("from"); s != "" {
		if from, err = dayParam(s); err != nil {
			return from, to, err
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = dayParam(s); err != nil {
			return from, to, err
		}
	}
	if !from.IsZero() && !to.IsZero() {
		if to.Before(from) {
			return from, to, badRequest("to %s is before from %s", to, from)
		}
		if from.AddDays(maxRangeDays).Before(to) {
			return from, to, badRequest("at most %d days at once", maxRangeDays)
		}
	}
	return from, to, nil
}

func (d *Diary) daysAndWeeks(ctx context.Context, rq request, from, to store.Day) ([]dayTotalJSON, []weekTotalJSON, error) {
	dts, err := d.st.DayTotals(ctx, rq.worker.Pubkey, rq.zone.Loc, from, to)
	if err != nil {
		return nil, nil, err
	}
	days := make([]dayTotalJSON, 0, len(dts))
	var weeks []weekTotalJSON
	var cur store.WeekTotal
	flush := func() {
		if cur.Segments > 0 {
			weeks = append(weeks, weekTotalJSON{Week: cur.Week.String(), Totals: totalsOut(cur.Totals), Links: d.weekLinks(rq.worker.Pubkey, cur.Week, rq.zone)})
		}
	}
	for _, dt := range dts {
		days = append(days, dayTotalJSON{Day: dt.Day.String(), Totals: totalsOut(dt.Totals), Links: d.dayLinks(rq.worker.Pubkey, dt.Day, rq.zone)})
		if wk := dt.Day.Week(); wk != cur.Week {
			flush()
			cur = store.WeekTotal{Worker: dt.Worker, Week: wk}
		}
		cur.Merge(dt.Totals)
	}
	flush()
	if weeks == nil {
		weeks = []weekTotalJSON{}
	}
	return days, weeks, nil
}

// dayData is everything shown for one worker's day.
type dayData struct {
	request
	day      store.Day
	segments []store.SegmentDetail
	totals   store.Totals
	week     store.Totals
}

func (d *Diary) loadDay(ctx context.Context, rq request, day store.Day) (dayData, error) {
	dd := dayData{request: rq, day: day}
	var err error
	if dd.segments, err = d.st.DaySegments(ctx, rq.worker.Pubkey, day, rq.zone.Loc); err != nil {
		return dd, err
	}
	for _, s := range dd.segments {
		dd.totals.Add(s.Segment)
	}
	monday := day.Week()
	wts, err := d.st.WeekTotals(ctx, rq.worker.Pubkey, rq.zone.Loc, monday, monday.AddDays(6))
	if err != nil {
		return dd, err
	}
	for _, wt := range wts {
		dd.week.Merge(wt.Totals)
	}
	return dd, nil
}

func (d *Diary) apiDay(w http.ResponseWriter, r *http.Request) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	day, err := dayParam(r.PathValue("day"))
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	dd, err := d.loadDay(r.Context(), rq, day)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	segs := make([]segmentJSON, 0, len(dd.segments))
	for _, s := range dd.segments {
		segs = append(segs, d.segmentOut(s, rq.zone.Loc))
	}
	monday := day.Week()
	writeJSON(w, http.StatusOK, map[string]any{
		"worker": d.workerOut(rq.worker, rq.zone.Loc), "tz": rq.zone.Name, "day": day.String(),
		"totals":   totalsOut(dd.totals),
		"week":     weekTotalJSON{Week: monday.String(), Totals: totalsOut(dd.week), Links: d.weekLinks(rq.worker.Pubkey, monday, rq.zone)},
		"segments": segs, "links": d.dayLinks(rq.worker.Pubkey, day, rq.zone),
	})
}

// apiWeek answers the ISO week containing {day}.
func (d *Diary) apiWeek(w http.ResponseWriter, r *http.Request) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	day, err := dayParam(r.PathValue("day"))
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	monday := day.Week()
	days, weeks, err := d.daysAndWeeks(r.Context(), rq, monday, monday.AddDays(6))
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	totals := totalsJSON{}
	if len(weeks) == 1 {
		totals = weeks[0].Totals
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"worker": d.workerOut(rq.worker, rq.zone.Loc), "tz": rq.zone.Name, "week": monday.String(),
		"totals": totals, "days": days, "links": d.weekLinks(rq.worker.Pubkey, monday, rq.zone),
	})
}

// segmentAndZone loads {id} and the zone to show it in (?tz relative to its worker).
func (d *Diary) segmentAndZone(r *http.Request) (store.SegmentDetail, zone, error) {
	id, err := idParam(r.PathValue("id"), "segment")
	if err != nil {
		return store.SegmentDetail{}, zone{}, err
	}
	s, err := d.st.Segment(r.Context(), id)
	if err != nil {
		return s, zone{}, err
	}
	z, err := d.zoneFor(r.URL.Query().Get("tz"), s.Worker)
	if err != nil {
		return s, z, badRequest("%v", err)
	}
	return s, z, nil
}

func (d *Diary) apiSegment(w http.ResponseWriter, r *http.Request) {
	s, z, err := d.segmentAndZone(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	out := d.segmentOut(s, z.Loc)
	writeJSON(w, http.StatusOK, map[string]any{"tz": z.Name, "segment": out})
}

// timesheetData is what stands behind one Kimai timesheet.
type timesheetData struct {
	id       int64
	zone     zone
	segments []store.SegmentDetail
	workers  []store.Worker
	totals   store.Totals
}

func (d *Diary) loadTimesheet(r *http.Request) (timesheetData, error) {
	id, err := idParam(r.PathValue("id"), "timesheet")
	if err != nil {
		return timesheetData{}, err
	}
	segs, err := d.st.TimesheetSegments(r.Context(), id)
	if err != nil {
		return timesheetData{}, err
	}
	if len(segs) == 0 {
		return timesheetData{}, notFound("no segments are booked to Kimai timesheet %d", id)
	}
	td := timesheetData{id: id, segments: segs}
	seen := map[string]bool{}
	for _, s := range segs {
		td.totals.Add(s.Segment)
		if !seen[s.Worker] {
			seen[s.Worker] = true
			wk, err := d.st.Worker(r.Context(), s.Worker)
			if err != nil {
				return td, fmt.Errorf("timesheet %d worker %s: %w", id, s.Worker, err)
			}
			td.workers = append(td.workers, wk)
		}
	}
	// A timesheet is one worker's; the zone is that worker's unless asked otherwise.
	if td.zone, err = d.zoneFor(r.URL.Query().Get("tz"), segs[0].Worker); err != nil {
		return td, badRequest("%v", err)
	}
	return td, nil
}

func (d *Diary) apiTimesheet(w http.ResponseWriter, r *http.Request) {
	td, err := d.loadTimesheet(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	segs := make([]segmentJSON, 0, len(td.segments))
	for _, s := range td.segments {
		segs = append(segs, d.segmentOut(s, td.zone.Loc))
	}
	workers := make([]workerJSON, 0, len(td.workers))
	for _, wk := range td.workers {
		workers = append(workers, d.workerOut(wk, td.zone.Loc))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"timesheet_id": td.id, "tz": td.zone.Name, "totals": totalsOut(td.totals), "workers": workers, "segments": segs,
		"links": map[string]string{"page": d.path(fmt.Sprintf("/timesheets/%d", td.id))},
	})
}
