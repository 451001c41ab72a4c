package diary

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"pow.do/dvm/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pages = parsePages()

var funcs = template.FuncMap{
	"dur":   durAny,
	"pct":   pct,
	"short": func(s string) string { return s[:min(len(s), 12)] + "…" },
	"sub":   func(a, b int64) int64 { return a - b },
	"fmtT":  func(t time.Time, loc *time.Location, layout string) string { return t.In(loc).Format(layout) },
	"mb":    func(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) },
	"secs":  func(f float64) string { return fmtDuration(int64(f + 0.5)) },
}

// parsePages parses each page together with the layout.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" || base == "segment_body.html" {
			continue
		}
		t := template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/segment_body.html", n))
		out[base] = t
	}
	return out
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	fsrv := http.FileServer(http.FS(sub))
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		// Assets are not personal data; the browser may keep them for an hour.
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fsrv.ServeHTTP(w, r)
	}))
}

// durAny is fmtDuration for any integer the templates hold.
func durAny(v any) string {
	switch x := v.(type) {
	case int:
		return fmtDuration(int64(x))
	case int64:
		return fmtDuration(x)
	case float64:
		return fmtDuration(int64(x + 0.5))
	}
	return fmt.Sprint(v)
}

// fmtDuration shows seconds as "3h 05m" or "12m".
func fmtDuration(sec int64) string {
	neg := sec < 0
	if neg {
		sec = -sec
	}
	h, m := sec/3600, (sec%3600+30)/60
	if m == 60 {
		h, m = h+1, 0
	}
	s := fmt.Sprintf("%dm", m)
	if h > 0 {
		s = fmt.Sprintf("%dh %02dm", h, m)
	}
	if neg {
		s = "-" + s
	}
	return s
}

func pct(part, whole int64) int {
	if whole <= 0 {
		return 0
	}
	return int(float64(part)*100/float64(whole) + 0.5)
}

type layoutView struct {
	Title    string
	Base     string
	Reviewer string
	CSRF     string
}

func (d *Diary) layout(r *http.Request, title string, s store.WebSession) layoutView {
	return layoutView{Title: title, Base: d.opt.BasePath, Reviewer: s.Reviewer, CSRF: s.CSRF}
}

func (d *Diary) render(w http.ResponseWriter, status int, page string, v any) {
	t, ok := pages[page]
	if !ok {
		http.Error(w, "no such page template", http.StatusInternalServerError)
		return
	}
	name := "layout"
	if fr, ok := v.(interface{ fragment() bool }); ok && fr.fragment() {
		name = "content"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		d.log.Error("diary: render page", "page", page, "err", err)
		http.Error(w, "internal error (see the DVM's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (d *Diary) pageFail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := d.statusOf(r, err)
	v := struct {
		layoutView
		Status  int
		Message string
	}{d.layout(r, "Error", sessionFrom(r.Context())), status, msg}
	d.render(w, status, "error.html", v)
}

type workerRow struct {
	store.Worker
	Npub  string
	Zone  string
	Week  store.Totals
	Today string
}

type indexView struct {
	layoutView
	Workers []workerRow
	Week    store.Day
	Zone    string
}

// pageIndex lists the workers with this week's totals, each in the worker's zone: one
// totals query per distinct zone, not one per worker.
func (d *Diary) pageIndex(w http.ResponseWriter, r *http.Request) {
	ws, err := d.st.Workers(r.Context(), true)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	now := d.opt.Now()
	v := indexView{layoutView: d.layout(r, "Work diary", sessionFrom(r.Context()))}
	byZone := map[string]map[string]store.Totals{} // zone name -> worker -> this week
	for _, wk := range ws {
		z, _ := d.zoneFor("worker", wk.Pubkey)
		today := store.DayOf(now, z.Loc)
		week, ok := byZone[z.Name]
		if !ok {
			monday := today.Week()
			wts, err := d.st.WeekTotals(r.Context(), "", z.Loc, monday, monday.AddDays(6))
			if err != nil {
				d.pageFail(w, r, err)
				return
			}
			week = map[string]store.Totals{}
			for _, wt := range wts {
				t := week[wt.Worker]
				t.Merge(wt.Totals)
				week[wt.Worker] = t
			}
			byZone[z.Name] = week
		}
		v.Workers = append(v.Workers, workerRow{Worker: wk, Npub: npub(wk.Pubkey), Zone: z.Name, Today: today.String(), Week: week[wk.Pubkey]})
	}
	d.render(w, http.StatusOK, "index.html", v)
}

type monthView struct {
	Month string // YYYY-MM
	Weeks []weekView
}

type weekView struct {
	Monday store.Day
	Totals store.Totals
	Days   []dayRow
}

type dayRow struct {
	Day     store.Day
	Weekday string
	Totals  store.Totals
	Href    string
}

type workerView struct {
	layoutView
	Worker    store.Worker
	Npub      string
	Zone      zone
	ZoneSet   string
	Month     monthView
	PrevMonth string
	NextMonth string
	Zones     []string
}

// pageWorker lists a worker's days of one month (?month=YYYY-MM, default this month in
// the zone shown), so the page costs the same however long the worker has been around.
func (d *Diary) pageWorker(w http.ResponseWriter, r *http.Request) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	first := store.DayOf(d.opt.Now(), rq.zone.Loc)
	first.Day = 1
	if m := r.URL.Query().Get("month"); m != "" {
		t, err := time.Parse("2006-01", m)
		if err != nil || t.Year() < 2000 || t.Year() > 9999 {
			d.pageFail(w, r, badRequest("month %q: want YYYY-MM", clip(m)))
			return
		}
		first = store.Day{Year: t.Year(), Month: t.Month(), Day: 1}
	}
	next := store.DayOf(time.Date(first.Year, first.Month+1, 1, 12, 0, 0, 0, time.UTC), time.UTC)
	prev := store.DayOf(time.Date(first.Year, first.Month-1, 1, 12, 0, 0, 0, time.UTC), time.UTC)
	dts, err := d.st.DayTotals(r.Context(), rq.worker.Pubkey, rq.zone.Loc, first, next.AddDays(-1))
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	v := workerView{layoutView: d.layout(r, rq.worker.Name, sessionFrom(r.Context())), Worker: rq.worker,
		Npub: npub(rq.worker.Pubkey), Zone: rq.zone, ZoneSet: d.zones.get(rq.worker.Pubkey), Zones: commonZones,
		Month: monthView{Month: first.String()[:7]}, PrevMonth: prev.String()[:7], NextMonth: next.String()[:7]}
	for _, dt := range dts {
		wk := dt.Day.Week()
		if n := len(v.Month.Weeks); n == 0 || v.Month.Weeks[n-1].Monday != wk {
			v.Month.Weeks = append(v.Month.Weeks, weekView{Monday: wk})
		}
		wv := &v.Month.Weeks[len(v.Month.Weeks)-1]
		wv.Totals.Merge(dt.Totals)
		wv.Days = append(wv.Days, dayRow{Day: dt.Day, Totals: dt.Totals,
			Weekday: dt.Day.Start(time.UTC).Weekday().String()[:3],
			Href:    d.path("/workers/" + rq.worker.Pubkey + "/days/" + dt.Day.String() + "?" + rq.zone.Query())})
	}
	d.render(w, http.StatusOK, "worker.html", v)
}

// commonZones seed the worker-zone field's suggestions; any IANA name is accepted.
var commonZones = []string{"UTC", "Europe/London", "Europe/Berlin", "Europe/Kyiv", "America/New_York", "America/Chicago",
	"America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo",
	"Australia/Sydney", "Pacific/Auckland", "Africa/Lagos"}

// SetWorkerZone records a worker's time zone (an IANA name; "" forgets it), as a
// reviewer can on the worker's page. It is the reviewer's explicit choice and wins over
// SetKimaiZones; zones learnt elsewhere go through SetKimaiZones instead.
func (d *Diary) SetWorkerZone(pubkey, name string) error {
	if !store.IsHex(pubkey, 64) {
		return fmt.Errorf("diary: worker %q is not a 64-hex pubkey", clip(pubkey))
	}
	if name != "" {
		if _, err := loadZone(name); err != nil {
			return fmt.Errorf("diary: %w", err)
		}
	}
	return d.zones.set(pubkey, name)
}

// SetKimaiZones replaces the time zones learnt from the workers' Kimai users (worker
// pubkey -> IANA name). They are kept in memory only: the daemon feeds them at start-up
// and after every catalogue poll. They apply to workers no reviewer has set a zone for;
// unknown or malformed names are dropped.
func (d *Diary) SetKimaiZones(zones map[string]string) {
	m := make(map[string]string, len(zones))
	for pk, name := range zones {
		if !store.IsHex(pk, 64) {
			continue
		}
		if _, err := loadZone(name); err != nil {
			d.log.Warn("diary: ignoring Kimai time zone", "worker", pk, "err", err)
			continue
		}
		m[pk] = name
	}
	d.zones.setLearnt(m)
}

func (d *Diary) setWorkerZone(w http.ResponseWriter, r *http.Request) {
	wk, err := d.workerParam(r)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("zone"))
	if name != "" {
		if _, err := loadZone(name); err != nil {
			d.pageFail(w, r, badRequest("%v", err))
			return
		}
	}
	if err := d.SetWorkerZone(wk.Pubkey, name); err != nil {
		d.pageFail(w, r, err)
		return
	}
	d.log.Info("diary: worker zone set", "worker", wk.Pubkey, "zone", name, "reviewer", sessionFrom(r.Context()).Reviewer)
	http.Redirect(w, r, d.safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

type zoneOption struct {
	Value, Label string
	Selected     bool
}

type dayView struct {
	layoutView
	Worker    store.Worker
	Day       store.Day
	Weekday   string
	Zone      zone
	ZoneOpts  []zoneOption
	Rows      []hourRow
	Totals    store.Totals
	Week      store.Totals
	Monday    store.Day
	Prev      string
	Next      string
	Links     map[string]string
	WeekLinks map[string]string
	APIURL    string
	Segments  int
}

func (d *Diary) zoneOptions(z zone, worker string) []zoneOption {
	wz, _ := d.zoneFor("worker", worker)
	opts := []zoneOption{{Value: "worker", Label: "Worker's (" + wz.Name + ")", Selected: z.Kind == "worker"},
		{Value: "UTC", Label: "UTC", Selected: z.Kind == "utc"}}
	if z.Kind == "named" {
		opts = append(opts, zoneOption{Value: z.Param, Label: z.Name, Selected: true})
	}
	return opts
}

func (d *Diary) pageDay(w http.ResponseWriter, r *http.Request) {
	rq, err := d.workerAndZone(r)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	day, err := dayParam(r.PathValue("day"))
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	dd, err := d.loadDay(r.Context(), rq, day)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	pk := rq.worker.Pubkey
	dayHref := func(x store.Day) string {
		return d.path("/workers/" + pk + "/days/" + x.String() + "?" + rq.zone.Query())
	}
	v := dayView{
		layoutView: d.layout(r, rq.worker.Name+" · "+day.String(), sessionFrom(r.Context())),
		Worker:     rq.worker, Day: day, Weekday: day.Start(time.UTC).Weekday().String(), Zone: rq.zone,
		ZoneOpts: d.zoneOptions(rq.zone, pk), Rows: buildGrid(dd.segments, day, rq.zone.Loc, d.cellView(rq.zone)),
		Totals: dd.totals, Week: dd.week, Monday: day.Week(), Prev: dayHref(day.AddDays(-1)), Next: dayHref(day.AddDays(1)),
		Links: d.dayLinks(pk, day, rq.zone), WeekLinks: d.weekLinks(pk, day.Week(), rq.zone),
		APIURL: d.path("/api/v1/workers/" + pk + "/days/" + day.String() + "?" + rq.zone.Query()), Segments: len(dd.segments),
	}
	d.render(w, http.StatusOK, "day.html", v)
}

type segmentView struct {
	layoutView
	S        store.SegmentDetail
	Worker   store.Worker
	Zone     zone
	Loc      *time.Location
	Bars     []minuteBar
	DayHref  string
	Timesh   string
	Fragment bool
	Active   int
	Delivery int64
}

func (v segmentView) fragment() bool { return v.Fragment }

func (d *Diary) pageSegment(w http.ResponseWriter, r *http.Request) {
	s, z, err := d.segmentAndZone(r)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	wk, err := d.st.Worker(r.Context(), s.Worker)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	day := store.DayOf(s.Start, z.Loc)
	v := segmentView{layoutView: d.layout(r, fmt.Sprintf("%s · %s", wk.Name, s.Start.In(z.Loc).Format("2006-01-02 15:04")), sessionFrom(r.Context())),
		S: s, Worker: wk, Zone: z, Loc: z.Loc, Bars: bars(s.Minutes, z.Loc), Fragment: r.URL.Query().Get("fragment") == "1",
		DayHref: d.path("/workers/" + wk.Pubkey + "/days/" + day.String() + "?" + z.Query()),
		Active:  activeMinutes(s.Minutes), Delivery: int64(s.ReceivedAt.Sub(s.End) / time.Second)}
	if s.KimaiTimesheetID != 0 {
		v.Timesh = d.path(fmt.Sprintf("/timesheets/%d?%s", s.KimaiTimesheetID, z.Query()))
	}
	d.render(w, http.StatusOK, "segment.html", v)
}

type timesheetView struct {
	layoutView
	ID      int64
	Zone    zone
	Workers []store.Worker
	Totals  store.Totals
	Cells   []cellSeg
	Days    []dayLink
}

type dayLink struct {
	Label, Href string
}

func (d *Diary) pageTimesheet(w http.ResponseWriter, r *http.Request) {
	td, err := d.loadTimesheet(r)
	if err != nil {
		d.pageFail(w, r, err)
		return
	}
	v := timesheetView{layoutView: d.layout(r, fmt.Sprintf("Kimai timesheet %d", td.id), sessionFrom(r.Context())),
		ID: td.id, Zone: td.zone, Workers: td.workers, Totals: td.totals}
	view := d.cellView(td.zone)
	seen := map[string]bool{}
	for _, s := range td.segments {
		v.Cells = append(v.Cells, view(s))
		day := store.DayOf(s.Start, td.zone.Loc)
		key := s.Worker + day.String()
		if !seen[key] {
			seen[key] = true
			v.Days = append(v.Days, dayLink{Label: day.String(), Href: d.path("/workers/" + s.Worker + "/days/" + day.String() + "?" + td.zone.Query())})
		}
	}
	d.render(w, http.StatusOK, "timesheet.html", v)
}
