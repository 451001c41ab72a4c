package diary

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"pow.do/dvm/diary/evidence"
	"pow.do/dvm/store"
)

// exportSpan reads the worker, zone and the day or week asked for, and loads its segments.
func (d *Diary) exportSpan(r *http.Request, week bool) (request, store.Day, store.Day, []store.SegmentDetail, error) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		return rq, store.Day{}, store.Day{}, nil, err
	}
	day, err := dayParam(r.PathValue("day"))
	if err != nil {
		return rq, day, day, nil, err
	}
	from, to := day, day
	if week {
		from = day.Week()
		to = from.AddDays(6)
	}
	segs, err := d.spanSegments(r.Context(), rq, from, to)
	return rq, from, to, segs, err
}

func (d *Diary) spanSegments(ctx context.Context, rq request, from, to store.Day) ([]store.SegmentDetail, error) {
	if from.AddDays(maxRangeDays).Before(to) {
		return nil, badRequest("at most %d days at once", maxRangeDays)
	}
	var segs []store.SegmentDetail
	for dd := from; !to.Before(dd); dd = dd.AddDays(1) {
		s, err := d.st.DaySegments(ctx, rq.worker.Pubkey, dd, rq.zone.Loc)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s...)
	}
	return segs, nil
}

func exportName(w store.Worker, from, to store.Day, ext string) string {
	name := "powdo-" + w.Pubkey[:8] + "-" + from.String()
	if to != from {
		name += "_" + to.String()
	}
	return name + "." + ext
}

// CSVHeader is the first row of a CSV export.
var CSVHeader = []string{"worker", "worker_name", "segment_id", "session", "index", "start", "end", "tz",
	"duration_seconds", "active_seconds", "active_minutes", "keys", "clicks", "moves", "project", "activity", "memo",
	"screenshots", "deleted_screenshots", "skipped_captures", "top_app", "top_title", "top_url", "chain_status",
	"received_at", "kimai_state", "kimai_timesheet_id", "ox"}

func (d *Diary) exportCSV(week bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, from, to, segs, err := d.exportSpan(r, week)
		if err != nil {
			d.apiFail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+exportName(rq.worker, from, to, "csv")+`"`)
		cw := csv.NewWriter(w)
		cw.Write(CSVHeader)
		for _, s := range segs {
			cw.Write(csvRow(rq, s))
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			d.log.Warn("diary: CSV export interrupted", "err", err)
		}
	}
}

func csvRow(rq request, s store.SegmentDetail) []string {
	var keys, clicks, moves int
	for _, m := range s.Minutes {
		keys, clicks, moves = keys+m.Keys, clicks+m.Clicks, moves+m.Moves
	}
	first := func(us []store.Usage) string {
		if len(us) == 0 {
			return ""
		}
		return us[0].Name
	}
	ts := ""
	if s.KimaiTimesheetID != 0 {
		ts = strconv.FormatInt(s.KimaiTimesheetID, 10)
	}
	loc := rq.zone.Loc
	return []string{
		s.Worker, cell(rq.worker.Name), strconv.FormatInt(s.ID, 10), s.Session, strconv.Itoa(s.Index),
		s.Start.In(loc).Format(time.RFC3339), s.End.In(loc).Format(time.RFC3339), rq.zone.Name,
		strconv.FormatInt(int64(s.End.Sub(s.Start)/time.Second), 10), strconv.Itoa(s.ActiveSeconds),
		strconv.Itoa(activeMinutes(s.Minutes)), strconv.Itoa(keys), strconv.Itoa(clicks), strconv.Itoa(moves),
		strconv.FormatInt(s.Project, 10), strconv.FormatInt(s.Activity, 10), cell(s.Memo),
		strconv.Itoa(len(s.Screenshots)), strconv.Itoa(len(s.Deleted)), strconv.Itoa(len(s.Skipped)),
		cell(first(s.TopApps)), cell(first(s.TopTitles)), cell(first(s.TopURLs)), string(s.ChainStatus),
		s.ReceivedAt.In(loc).Format(time.RFC3339), string(s.KimaiState), ts, s.OX,
	}
}

// cell defuses text a worker controls: a spreadsheet would run a cell starting with
// = + - @ (or a tab or CR) as a formula, so such cells get a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (d *Diary) exportZIP(week bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, from, to, segs, err := d.exportSpan(r, week)
		if err != nil {
			d.apiFail(w, r, err)
			return
		}
		// Gather the small parts first, so that a missing record fails with a status
		// instead of a truncated download.
		evs, err := d.evidenceOf(r.Context(), segs)
		if err != nil {
			d.apiFail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+exportName(rq.worker, from, to, "zip")+`"`)
		if err := d.writeEvidence(r.Context(), w, rq, from, to, segs, evs); err != nil {
			// Headers are gone; the client gets a truncated ZIP that verify refuses.
			d.log.Error("diary: evidence export failed midway", "worker", rq.worker.Pubkey, "err", err)
			panic(http.ErrAbortHandler)
		}
		d.log.Info("diary: evidence exported", "worker", rq.worker.Pubkey, "from", from.String(), "to", to.String(),
			"segments", len(segs), "reviewer", sessionFrom(r.Context()).Reviewer)
	}
}

// ExportEvidence writes the evidence ZIP of a worker's days from..to (calendar days in
// tz: "worker", "UTC" or an IANA name) to w and returns how many segments it holds.
func (d *Diary) ExportEvidence(ctx context.Context, w io.Writer, worker string, from, to store.Day, tz string) (int, error) {
	wk, err := d.st.Worker(ctx, worker)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	z, err := d.zoneFor(tz, worker)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	if to.Before(from) {
		return 0, fmt.Errorf("export: %s is before %s", to, from)
	}
	rq := request{worker: wk, zone: z}
	segs, err := d.spanSegments(ctx, rq, from, to)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	evs, err := d.evidenceOf(ctx, segs)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	if err := d.writeEvidence(ctx, w, rq, from, to, segs, evs); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	return len(segs), nil
}

func (d *Diary) evidenceOf(ctx context.Context, segs []store.SegmentDetail) ([]store.Evidence, error) {
	evs := make([]store.Evidence, len(segs))
	for i, s := range segs {
		var err error
		if evs[i], err = d.st.SegmentEvidence(ctx, s.ID); err != nil {
			return nil, err
		}
		if len(evs[i].Seal) == 0 || len(evs[i].Rumor) == 0 {
			return nil, fmt.Errorf("segment %d (%s/%d) has no stored seal or rumor to export", s.ID, s.Session, s.Index)
		}
	}
	return evs, nil
}

func (d *Diary) writeEvidence(ctx context.Context, w io.Writer, rq request, from, to store.Day, segs []store.SegmentDetail, evs []store.Evidence) error {
	ew, err := evidence.NewWriter(w, evidence.Range{From: from.String(), To: to.String(), TZ: rq.zone.Name}, d.opt.SecretKey, d.opt.Now())
	if err != nil {
		return err
	}
	if err := ew.AddWorker(rq.worker.Pubkey, rq.worker.Name); err != nil {
		return err
	}
	for i, s := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		parts := []evidence.Part{{Name: evidence.SealName, Data: evs[i].Seal}, {Name: evidence.RumorName, Data: evs[i].Rumor}}
		var closers []func() error
		if s.BundleKept {
			f, err := d.st.OpenBundle(s.OX)
			if err != nil {
				return err
			}
			closers = append(closers, f.Close)
			parts = append(parts, evidence.Part{Name: evidence.BundleName, From: f, Store: true})
		} else {
			parts = append(parts, evidence.Part{Name: evidence.ManifestName, Data: evs[i].Manifest},
				evidence.Part{Name: evidence.ActivityName, Data: evs[i].Activity})
			for _, sc := range s.Screenshots {
				f, err := d.st.OpenScreenshot(sc.SHA256)
				if err != nil {
					return err
				}
				closers = append(closers, f.Close)
				parts = append(parts, evidence.Part{Name: sc.Name, From: f, Store: true})
			}
		}
		err := ew.AddSegment(evidence.Segment{
			Worker: s.Worker, Session: s.Session, Index: s.Index, Start: s.Start, End: s.End, RumorID: s.RumorID,
			X: s.X, OX: s.OX, Prev: s.Prev, ChainStatus: string(s.ChainStatus), ReceivedAt: s.ReceivedAt,
			KimaiState: string(s.KimaiState), KimaiTimesheetID: s.KimaiTimesheetID,
		}, parts)
		for _, c := range closers {
			c()
		}
		if err != nil {
			return err
		}
	}
	return ew.Close()
}
