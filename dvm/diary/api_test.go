package diary_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/store"
)

// The expectations below are computed from what the scenario sent (the bundles' own
// contents), never read back from the store, so each assertion checks the whole path:
// bundle → ingest → store → diary → JSON.

type wantTotals struct {
	Segments       int   `json:"segments"`
	TrackedSeconds int64 `json:"tracked_seconds"`
	ActiveSeconds  int64 `json:"active_seconds"`
	IdleSeconds    int64 `json:"idle_seconds"`
	Screenshots    int   `json:"screenshots"`
	ChainVerified  int   `json:"chain_verified"`
	ChainGaps      int   `json:"chain_gaps"`
	ChainBroken    int   `json:"chain_broken"`
	KimaiPending   int   `json:"kimai_pending"`
}

func (w *wantTotals) add(s seed.Sent, chain store.ChainStatus, pending bool) {
	w.Segments++
	w.TrackedSeconds += int64(s.End.Sub(s.Start) / time.Second)
	w.ActiveSeconds += int64(s.Act.ActiveSeconds)
	w.IdleSeconds = w.TrackedSeconds - w.ActiveSeconds
	w.Screenshots += len(s.Shots)
	switch chain {
	case store.ChainVerified:
		w.ChainVerified++
	case store.ChainGap:
		w.ChainGaps++
	case store.ChainBroken:
		w.ChainBroken++
	}
	if pending {
		w.KimaiPending++
	}
}

// chainOf derives a sent segment's chain status from the other sent segments.
func chainOf(s seed.Sent, all []seed.Sent) store.ChainStatus {
	if s.Index == 0 {
		if s.Prev == "" {
			return store.ChainVerified
		}
		return store.ChainBroken
	}
	for _, p := range all {
		if p.Session == s.Session && p.Index == s.Index-1 {
			if p.OX == s.Prev {
				return store.ChainVerified
			}
			return store.ChainBroken
		}
	}
	return store.ChainGap
}

func timesheetOf(d *seed.Dataset, session string) int64 {
	for id, ss := range d.Timesheet {
		if slices.Contains(ss, session) {
			return id
		}
	}
	return 0
}

// wantDays groups a worker's sent segments by calendar day in loc.
func wantDays(d *seed.Dataset, worker string, loc *time.Location) map[string]*wantTotals {
	out := map[string]*wantTotals{}
	all := d.Sent[worker]
	for _, s := range all {
		day := store.DayOf(s.Start, loc).String()
		if out[day] == nil {
			out[day] = &wantTotals{}
		}
		out[day].add(s, chainOf(s, all), timesheetOf(d, s.Session) == 0)
	}
	return out
}

type apiDay struct {
	Day    string     `json:"day"`
	TZ     string     `json:"tz"`
	Totals wantTotals `json:"totals"`
	Week   struct {
		Week   string     `json:"week"`
		Totals wantTotals `json:"totals"`
	} `json:"week"`
	Segments []apiSegment      `json:"segments"`
	Links    map[string]string `json:"links"`
}

type apiSegment struct {
	ID              int64  `json:"id"`
	Worker          string `json:"worker"`
	Session         string `json:"session"`
	Index           int    `json:"index"`
	Start           string `json:"start"`
	End             string `json:"end"`
	DurationSeconds int64  `json:"duration_seconds"`
	Project         int64  `json:"project"`
	Activity        int64  `json:"activity"`
	Memo            string `json:"memo"`
	ActiveSeconds   int    `json:"active_seconds"`
	ActiveMinutes   int    `json:"active_minutes"`
	Idle            bool   `json:"idle"`
	Minutes         []struct {
		T      string `json:"t"`
		Keys   int    `json:"keys"`
		Clicks int    `json:"clicks"`
		Moves  int    `json:"moves"`
		Active bool   `json:"active"`
	} `json:"minutes"`
	TopApps []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"top_apps"`
	TopURLs []struct {
		Name string `json:"name"`
	} `json:"top_urls"`
	Screenshots []struct {
		Name     string `json:"name"`
		SHA256   string `json:"sha256"`
		Size     int64  `json:"size"`
		TakenAt  string `json:"taken_at"`
		URL      string `json:"url"`
		ThumbURL string `json:"thumb_url"`
	} `json:"screenshots"`
	Deleted []struct {
		Name string `json:"name"`
	} `json:"deleted_screenshots"`
	Skipped []struct {
		Reason string `json:"reason"`
	} `json:"skipped_captures"`
	Chain struct {
		Status  string `json:"status"`
		Prev    string `json:"prev"`
		OX      string `json:"ox"`
		X       string `json:"x"`
		RumorID string `json:"rumor_id"`
	} `json:"chain"`
	ReceivedAt      string `json:"received_at"`
	DeliverySeconds int64  `json:"delivery_seconds"`
	Kimai           struct {
		State       string `json:"state"`
		TimesheetID *int64 `json:"timesheet_id"`
	} `json:"kimai"`
	BundleKept bool `json:"bundle_kept"`
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAPIWorkers(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	c := login(t, srv.URL)
	var out struct {
		Workers []struct {
			Pubkey, Npub, Name string
			Links              map[string]string
		} `json:"workers"`
	}
	getJSON(t, c, srv.URL+"/api/v1/workers", http.StatusOK, &out)
	got := map[string]string{}
	for _, w := range out.Workers {
		got[w.Pubkey] = w.Name
		if _, v, err := nip19.Decode(w.Npub); err != nil || v.(string) != w.Pubkey {
			t.Errorf("worker %s: npub %q does not encode it", w.Pubkey, w.Npub)
		}
	}
	if len(got) != 2 || got[f.data.Alice.Pub] != f.data.Alice.Name || got[f.data.Bob.Pub] != f.data.Bob.Name {
		t.Fatalf("workers %v", got)
	}
	// npub works as well as hex in paths.
	var one struct{ Pubkey string }
	n, _ := nip19.EncodePublicKey(f.data.Bob.Pub)
	getJSON(t, c, srv.URL+"/api/v1/workers/"+n, http.StatusOK, &one)
	if one.Pubkey != f.data.Bob.Pub {
		t.Fatalf("worker by npub: %q", one.Pubkey)
	}
}

// TestAPIDaysAndWeeks checks every day and week total, for each worker, in the worker's
// zone, in UTC and in a third zone.
func TestAPIDaysAndWeeks(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	must(t, d.SetWorkerZone(f.data.Alice.Pub, "America/New_York"))
	must(t, d.SetWorkerZone(f.data.Bob.Pub, "Europe/Berlin"))
	c := login(t, srv.URL)
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	for _, tc := range []struct {
		worker string
		tz     string
		loc    *time.Location
	}{
		{f.data.Alice.Pub, "worker", f.data.AliceZone}, {f.data.Alice.Pub, "UTC", time.UTC}, {f.data.Alice.Pub, "Asia/Tokyo", tokyo},
		{f.data.Bob.Pub, "worker", f.data.BobZone}, {f.data.Bob.Pub, "UTC", time.UTC},
	} {
		want := wantDays(f.data, tc.worker, tc.loc)
		var out struct {
			TZ   string `json:"tz"`
			Days []struct {
				Day    string     `json:"day"`
				Totals wantTotals `json:"totals"`
			} `json:"days"`
			Weeks []struct {
				Week   string     `json:"week"`
				Totals wantTotals `json:"totals"`
			} `json:"weeks"`
		}
		getJSON(t, c, srv.URL+"/api/v1/workers/"+tc.worker+"/days?tz="+tc.tz, http.StatusOK, &out)
		if out.TZ != tc.loc.String() {
			t.Errorf("%s: tz %q, want %q", tc.tz, out.TZ, tc.loc)
		}
		if len(out.Days) != len(want) {
			t.Errorf("%s %s: %d days, want %d", tc.worker[:8], tc.tz, len(out.Days), len(want))
		}
		wantWeeks := map[string]*wantTotals{}
		for _, day := range out.Days {
			w, ok := want[day.Day]
			if !ok {
				t.Errorf("%s %s: unexpected day %s", tc.worker[:8], tc.tz, day.Day)
				continue
			}
			if day.Totals != *w {
				t.Errorf("%s %s day %s:\n got  %+v\n want %+v", tc.worker[:8], tc.tz, day.Day, day.Totals, *w)
			}
		}
		for day, w := range want {
			dd, _ := store.ParseDay(day)
			wk := dd.Week().String()
			if wantWeeks[wk] == nil {
				wantWeeks[wk] = &wantTotals{}
			}
			ww := wantWeeks[wk]
			ww.Segments += w.Segments
			ww.TrackedSeconds += w.TrackedSeconds
			ww.ActiveSeconds += w.ActiveSeconds
			ww.IdleSeconds += w.IdleSeconds
			ww.Screenshots += w.Screenshots
			ww.ChainVerified += w.ChainVerified
			ww.ChainGaps += w.ChainGaps
			ww.ChainBroken += w.ChainBroken
			ww.KimaiPending += w.KimaiPending
		}
		if len(out.Weeks) != len(wantWeeks) {
			t.Errorf("%s %s: %d weeks, want %d", tc.worker[:8], tc.tz, len(out.Weeks), len(wantWeeks))
		}
		for _, wk := range out.Weeks {
			if w := wantWeeks[wk.Week]; w == nil || wk.Totals != *w {
				t.Errorf("%s %s week %s: got %+v, want %+v", tc.worker[:8], tc.tz, wk.Week, wk.Totals, w)
			}
			var week struct {
				Totals wantTotals `json:"totals"`
			}
			getJSON(t, c, srv.URL+"/api/v1/workers/"+tc.worker+"/weeks/"+wk.Week+"?tz="+tc.tz, http.StatusOK, &week)
			if week.Totals != wk.Totals {
				t.Errorf("%s %s /weeks/%s: %+v, days listing says %+v", tc.worker[:8], tc.tz, wk.Week, week.Totals, wk.Totals)
			}
		}
	}
}

// TestAPIDaySegments checks every field of every segment of Alice's Monday.
func TestAPIDaySegments(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	must(t, d.SetWorkerZone(f.data.Alice.Pub, "America/New_York"))
	c := login(t, srv.URL)
	ny := f.data.AliceZone
	day := f.data.Monday.String()
	var out apiDay
	getJSON(t, c, srv.URL+"/api/v1/workers/"+f.data.Alice.Pub+"/days/"+day, http.StatusOK, &out)
	all := f.data.Sent[f.data.Alice.Pub]
	var want []seed.Sent
	for _, s := range all {
		if store.DayOf(s.Start, ny).String() == day {
			want = append(want, s)
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Start.Before(want[j].Start) })
	if len(out.Segments) != len(want) || len(want) != 29 {
		t.Fatalf("%d segments, want %d (29 in the scenario)", len(out.Segments), len(want))
	}
	if *wantDays(f.data, f.data.Alice.Pub, ny)[day] != out.Totals {
		t.Errorf("day totals %+v", out.Totals)
	}
	marks := map[string]int{}
	for i, g := range out.Segments {
		w := want[i]
		where := fmt.Sprintf("segment %s/%d", w.Session[:8], w.Index)
		if g.Session != w.Session || g.Index != w.Index || g.Worker != f.data.Alice.Pub {
			t.Fatalf("%s: got %s/%d", where, g.Session, g.Index)
		}
		if g.Start != w.Start.In(ny).Format(time.RFC3339) || g.End != w.End.In(ny).Format(time.RFC3339) || g.DurationSeconds != 600 {
			t.Errorf("%s: span %s–%s (%d s)", where, g.Start, g.End, g.DurationSeconds)
		}
		if !strings.HasSuffix(g.Start, "-05:00") {
			t.Errorf("%s: start %s not in New York time", where, g.Start)
		}
		if g.Project != w.Project || g.Activity != w.Activity || g.Memo != w.Memo {
			t.Errorf("%s: project %d activity %d memo %q", where, g.Project, g.Activity, g.Memo)
		}
		activeMin := 0
		for _, m := range w.Act.Minutes {
			if m.Active {
				activeMin++
			}
		}
		if g.ActiveSeconds != int(w.Act.ActiveSeconds) || g.ActiveMinutes != activeMin || g.Idle != (w.Act.ActiveSeconds == 0) {
			t.Errorf("%s: active %d s, %d min, idle %v", where, g.ActiveSeconds, g.ActiveMinutes, g.Idle)
		}
		if len(g.Minutes) != len(w.Act.Minutes) {
			t.Fatalf("%s: %d minutes", where, len(g.Minutes))
		}
		for j, m := range w.Act.Minutes {
			gm := g.Minutes[j]
			if gm.T != m.T.In(ny).Format(time.RFC3339) || gm.Keys != int(m.Keys) || gm.Clicks != int(m.Clicks) || gm.Moves != int(m.Moves) || gm.Active != m.Active {
				t.Errorf("%s minute %d: %+v, want %+v", where, j, gm, m)
			}
		}
		if len(w.Act.Window) > 0 {
			if len(g.TopApps) == 0 || g.TopApps[0].Name != w.Act.Window[0].Data["app"] || g.TopApps[0].Seconds != w.Act.Window[0].Duration {
				t.Errorf("%s: top apps %+v, want %v first", where, g.TopApps, w.Act.Window[0].Data["app"])
			}
			if len(g.TopURLs) != 1 || g.TopURLs[0].Name != w.Act.Web[0].Data["url"] {
				t.Errorf("%s: top URLs %+v", where, g.TopURLs)
			}
		} else if len(g.TopApps) != 0 {
			t.Errorf("%s: idle segment with top apps %+v", where, g.TopApps)
		}
		if len(g.Screenshots) != len(w.Shots) {
			t.Fatalf("%s: %d screenshots, want %d", where, len(g.Screenshots), len(w.Shots))
		}
		for j, s := range w.Shots {
			gs := g.Screenshots[j]
			if gs.Name != s.Name || gs.SHA256 != sha(s.JPEG) || gs.Size != int64(len(s.JPEG)) || gs.TakenAt != s.TakenAt.In(ny).Format(time.RFC3339) {
				t.Errorf("%s screenshot %d: %+v", where, j, gs)
			}
			if gs.URL != "/api/v1/screenshots/"+gs.SHA256 || gs.ThumbURL != gs.URL+"/thumb" {
				t.Errorf("%s screenshot %d: links %q %q", where, j, gs.URL, gs.ThumbURL)
			}
		}
		if len(g.Deleted) != len(w.Deleted) || len(g.Skipped) != len(w.Skipped) {
			t.Errorf("%s: %d deleted, %d skipped; want %d, %d", where, len(g.Deleted), len(g.Skipped), len(w.Deleted), len(w.Skipped))
		}
		if len(w.Deleted) > 0 && g.Deleted[0].Name != w.Deleted[0].Name {
			t.Errorf("%s: deleted %+v", where, g.Deleted)
		}
		if g.Chain.Status != string(chainOf(w, all)) || g.Chain.OX != w.OX || g.Chain.X != w.X || g.Chain.Prev != w.Prev || g.Chain.RumorID != w.RumorID {
			t.Errorf("%s: chain %+v, want %s", where, g.Chain, chainOf(w, all))
		}
		ts := timesheetOf(f.data, w.Session)
		switch {
		case ts == 0 && (g.Kimai.State != "pending" || g.Kimai.TimesheetID != nil):
			t.Errorf("%s: kimai %+v, want pending", where, g.Kimai)
		case ts != 0 && (g.Kimai.State != "synced" || g.Kimai.TimesheetID == nil || *g.Kimai.TimesheetID != ts):
			t.Errorf("%s: kimai %+v, want synced to %d", where, g.Kimai, ts)
		}
		recv, err := time.Parse(time.RFC3339, g.ReceivedAt)
		if err != nil || recv.Before(w.End) || g.DeliverySeconds != int64(recv.Sub(w.End)/time.Second) || !g.BundleKept {
			t.Errorf("%s: received %s, delivery %d s, bundle kept %v", where, g.ReceivedAt, g.DeliverySeconds, g.BundleKept)
		}
		if g.Idle {
			marks["idle"]++
		}
		marks["deleted"] += len(g.Deleted)
		marks["skipped"] += len(g.Skipped)
		marks[g.Chain.Status]++
		marks[g.Kimai.State]++
		if len(g.Screenshots) == 0 {
			marks["noshot"]++
		}
	}
	// The scenario's variations all show up.
	for k, n := range map[string]int{"idle": 2, "deleted": 1, "skipped": 1, "gap": 1, "noshot": 1, "synced": 17, "pending": 12} {
		if marks[k] != n {
			t.Errorf("%d segments marked %s, want %d (all: %v)", marks[k], k, n, marks)
		}
	}

	// One segment on its own agrees with the day listing.
	var one struct {
		TZ      string     `json:"tz"`
		Segment apiSegment `json:"segment"`
	}
	first := out.Segments[0]
	getJSON(t, c, srv.URL+fmt.Sprintf("/api/v1/segments/%d?tz=UTC", first.ID), http.StatusOK, &one)
	if one.TZ != "UTC" || one.Segment.Chain.OX != first.Chain.OX || !strings.HasSuffix(one.Segment.Start, "Z") {
		t.Fatalf("segment %d in UTC: %+v", first.ID, one.Segment)
	}
}

func TestAPITimesheet(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	c := login(t, srv.URL)
	for id, sessions := range f.data.Timesheet {
		var out struct {
			TimesheetID int64        `json:"timesheet_id"`
			Totals      wantTotals   `json:"totals"`
			Segments    []apiSegment `json:"segments"`
			Workers     []struct{ Pubkey string }
		}
		getJSON(t, c, srv.URL+fmt.Sprintf("/api/v1/timesheets/%d", id), http.StatusOK, &out)
		var want wantTotals
		for _, all := range f.data.Sent {
			for _, s := range all {
				if slices.Contains(sessions, s.Session) {
					want.add(s, chainOf(s, all), false)
				}
			}
		}
		if out.TimesheetID != id || out.Totals != want || len(out.Segments) != want.Segments || len(out.Workers) != 1 {
			t.Errorf("timesheet %d: %+v (%d segments), want %+v", id, out.Totals, len(out.Segments), want)
		}
		for _, s := range out.Segments {
			if s.Kimai.TimesheetID == nil || *s.Kimai.TimesheetID != id {
				t.Errorf("timesheet %d lists segment %d booked to %v", id, s.ID, s.Kimai.TimesheetID)
			}
		}
		// The page Kimai descriptions link to.
		resp, body := get(t, c, srv.URL+fmt.Sprintf("/timesheets/%d", id))
		if resp.StatusCode != http.StatusOK || strings.Count(string(body), `class="thumb"`) != want.Screenshots-countSecondShots(f, sessions) {
			t.Errorf("timesheet page %d: status %d, %d thumbnails", id, resp.StatusCode, strings.Count(string(body), `class="thumb"`))
		}
	}
	getJSON(t, c, srv.URL+"/api/v1/timesheets/999999", http.StatusNotFound, nil)
	getJSON(t, c, srv.URL+"/api/v1/timesheets/abc", http.StatusBadRequest, nil)
}

// countSecondShots counts screenshots beyond the first of each segment (pages show one).
func countSecondShots(f *shared, sessions []string) int {
	n := 0
	for _, all := range f.data.Sent {
		for _, s := range all {
			if slices.Contains(sessions, s.Session) && len(s.Shots) > 1 {
				n += len(s.Shots) - 1
			}
		}
	}
	return n
}

func TestAPIBadInput(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	c := login(t, srv.URL)
	pk := f.data.Alice.Pub
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/v1/workers/nothex", http.StatusBadRequest},
		{"/api/v1/workers/" + strings.Repeat("ab", 32), http.StatusNotFound},
		{"/api/v1/workers/npub1qqqqqq", http.StatusBadRequest},
		{"/api/v1/workers/" + pk + "/days/2026-13-01", http.StatusBadRequest},
		{"/api/v1/workers/" + pk + "/days/2026-11-16?tz=Mars/Olympus", http.StatusBadRequest},
		{"/api/v1/workers/" + pk + "/days/2026-11-16?tz=Local", http.StatusBadRequest},
		{"/api/v1/workers/" + pk + "/days?from=2020-01-01&to=2026-01-01", http.StatusBadRequest},
		{"/api/v1/workers/" + pk + "/days?from=2026-02-01&to=2026-01-01", http.StatusBadRequest},
		{"/api/v1/segments/0", http.StatusBadRequest},
		{"/api/v1/segments/99999999", http.StatusNotFound},
		{"/api/v1/screenshots/xyz", http.StatusBadRequest},
		{"/api/v1/screenshots/" + strings.Repeat("0", 64), http.StatusNotFound},
		{"/api/v1/screenshots/" + strings.Repeat("0", 64) + "/thumb", http.StatusNotFound},
		{"/api/v1/nothing/here", http.StatusNotFound},
		{"/api/v2/workers", http.StatusNotFound},
	} {
		var out struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		getJSON(t, c, srv.URL+tc.path, tc.want, &out)
		if out.Error == "" || out.Status != tc.want {
			t.Errorf("%s: error body %+v", tc.path, out)
		}
	}
	// A day without segments is an empty day, not an error.
	var empty apiDay
	getJSON(t, c, srv.URL+"/api/v1/workers/"+pk+"/days/2025-01-01", http.StatusOK, &empty)
	if len(empty.Segments) != 0 || empty.Totals.Segments != 0 || empty.Segments == nil {
		t.Fatalf("empty day: %+v", empty)
	}
}

func TestScreenshotsAndThumbnails(t *testing.T) {
	f := fixture(t)
	cache := t.TempDir()
	srv, _ := f.server(t, func(o *diary.Options) { o.CacheDir = cache })
	c := login(t, srv.URL)
	shot := f.data.Sent[f.data.Bob.Pub][0].Shots[0]
	sum := sha(shot.JPEG)

	resp, body := get(t, c, srv.URL+"/api/v1/screenshots/"+sum)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, shot.JPEG) || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("full screenshot: status %d, %d bytes, type %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "private, no-store" {
		t.Fatalf("screenshot Cache-Control %q", cc)
	}
	resp, thumb := get(t, c, srv.URL+"/api/v1/screenshots/"+sum+"/thumb")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("thumbnail: status %d: %s", resp.StatusCode, thumb)
	}
	img, err := jpeg.Decode(bytes.NewReader(thumb))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 180 {
		t.Fatalf("thumbnail is %v, want 320×180 from 640×360", b)
	}
	cached, err := filepath.Glob(filepath.Join(cache, "thumbs", sum[:2], sum+"-*.jpg"))
	if err != nil || len(cached) != 1 {
		t.Fatalf("cached thumbnails %v (%v)", cached, err)
	}
	st, err := os.Stat(cached[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cached thumbnail mode %v (%v)", st.Mode(), err)
	}
	// Served again from the cache file (same bytes, file not rewritten).
	_, again := get(t, c, srv.URL+"/api/v1/screenshots/"+sum+"/thumb")
	st2, _ := os.Stat(cached[0])
	if !bytes.Equal(again, thumb) || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("second thumbnail request did not come from the cache")
	}
	for _, dir := range []string{cache, filepath.Join(cache, "thumbs"), filepath.Dir(cached[0])} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", dir, st.Mode().Perm(), err)
		}
	}
}

func TestCSVExport(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	must(t, d.SetWorkerZone(f.data.Alice.Pub, "America/New_York"))
	c := login(t, srv.URL)
	base := srv.URL + "/api/v1/workers/" + f.data.Alice.Pub
	for _, tc := range []struct {
		path string
		days []string
	}{
		{"/days/2026-11-16/export.csv", []string{"2026-11-16"}},
		{"/weeks/2026-11-18/export.csv", []string{"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"}},
	} {
		resp, body := get(t, c, base+tc.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s: status %d, %v", tc.path, resp.StatusCode, resp.Header)
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows[0], diary.CSVHeader) {
			t.Fatalf("header %v", rows[0])
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		want := map[string]seed.Sent{}
		for _, s := range f.data.Sent[f.data.Alice.Pub] {
			if slices.Contains(tc.days, store.DayOf(s.Start, f.data.AliceZone).String()) {
				want[fmt.Sprint(s.Session, "/", s.Index)] = s
			}
		}
		if len(rows)-1 != len(want) {
			t.Fatalf("%s: %d rows, want %d", tc.path, len(rows)-1, len(want))
		}
		for _, r := range rows[1:] {
			s, ok := want[r[col["session"]]+"/"+r[col["index"]]]
			if !ok {
				t.Fatalf("%s: unexpected row %v", tc.path, r)
			}
			keys := 0
			for _, m := range s.Act.Minutes {
				keys += int(m.Keys)
			}
			wantMemo := s.Memo
			if strings.HasPrefix(wantMemo, "=") {
				wantMemo = "'" + wantMemo // a formula in a spreadsheet otherwise
			}
			if r[col["start"]] != s.Start.In(f.data.AliceZone).Format(time.RFC3339) || r[col["active_seconds"]] != fmt.Sprint(int(s.Act.ActiveSeconds)) ||
				r[col["keys"]] != fmt.Sprint(keys) || r[col["memo"]] != wantMemo || r[col["ox"]] != s.OX ||
				r[col["screenshots"]] != fmt.Sprint(len(s.Shots)) || r[col["tz"]] != "America/New_York" {
				t.Errorf("%s: row %v for %s/%d", tc.path, r, s.Session[:8], s.Index)
			}
		}
	}
}
