package diary_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestPages(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	must(t, d.SetWorkerZone(f.data.Alice.Pub, "America/New_York"))
	c := login(t, srv.URL)
	alice := f.data.Alice.Pub

	// The worker's month lists exactly the days with segments, in the worker's zone.
	resp, body := get(t, c, srv.URL+"/workers/"+alice+"?month=2026-11")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("worker page: %d", resp.StatusCode)
	}
	days := regexp.MustCompile(`<tr data-day="([0-9-]+)">`).FindAllStringSubmatch(string(body), -1)
	want := wantDays(f.data, alice, f.data.AliceZone)
	if len(days) != len(want) {
		t.Fatalf("worker page lists %d days, want %d", len(days), len(want))
	}
	for _, m := range days {
		if want[m[1]] == nil {
			t.Errorf("worker page lists %s", m[1])
		}
	}
	resp, body = get(t, c, srv.URL+"/workers/"+alice+"?month=2025-01")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-testid="no-days"`) {
		t.Fatalf("empty month: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, srv.URL+"/workers/"+alice+"?month=11-2026"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad month: %d", resp.StatusCode)
	}

	// The day grid: one cell per segment, thumbnails for segments with screenshots, and
	// the day's totals as the API computes them.
	resp, body = get(t, c, srv.URL+"/workers/"+alice+"/days/2026-11-16")
	page := string(body)
	wd := want["2026-11-16"]
	if resp.StatusCode != http.StatusOK || strings.Count(page, `data-testid="cell" data-segment=`) != wd.Segments {
		t.Fatalf("day page: %d, %d filled cells, want %d", resp.StatusCode, strings.Count(page, `data-testid="cell" data-segment=`), wd.Segments)
	}
	if !strings.Contains(page, fmt.Sprintf(`data-total="day-tracked" data-seconds="%d"`, wd.TrackedSeconds)) ||
		!strings.Contains(page, fmt.Sprintf(`data-total="day-active" data-seconds="%d"`, wd.ActiveSeconds)) {
		t.Fatal("day totals missing from the page")
	}
	for _, mark := range []string{"idle", "deleted", "gap", "kimai"} {
		if !strings.Contains(page, `data-mark="`+mark+`"`) {
			t.Errorf("no %s mark on the day", mark)
		}
	}
	if strings.Contains(page, `data-mark="broken"`) {
		t.Error("a broken mark on a day without broken links")
	}
	// Memo text a worker typed is escaped.
	if strings.Contains(page, "<b>evening</b>") || !strings.Contains(page, "&lt;b&gt;evening&lt;/b&gt; &amp; more") {
		t.Fatal("the worker's memo is not escaped on the page")
	}

	// A segment, as a page and as the dialog's fragment.
	var seg apiDay
	getJSON(t, c, srv.URL+"/api/v1/workers/"+alice+"/days/2026-11-16", http.StatusOK, &seg)
	id := seg.Segments[0].ID
	resp, body = get(t, c, srv.URL+fmt.Sprintf("/segments/%d", id))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<html") ||
		strings.Count(string(body), `data-testid="full-shot"`) != len(seg.Segments[0].Screenshots) ||
		!strings.Contains(string(body), seg.Segments[0].TopApps[0].Name) {
		t.Fatalf("segment page: %d", resp.StatusCode)
	}
	resp, body = get(t, c, srv.URL+fmt.Sprintf("/segments/%d?fragment=1", id))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "<html") || !strings.Contains(string(body), `data-testid="minutes"`) {
		t.Fatalf("segment fragment: %d", resp.StatusCode)
	}

	// The index shows each worker's week in their zone.
	resp, body = get(t, c, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), f.data.Alice.Name) || !strings.Contains(string(body), f.data.Bob.Name) {
		t.Fatalf("index: %d", resp.StatusCode)
	}
	// Worker pages for unknown workers are 404 pages.
	if resp, _ := get(t, c, srv.URL+"/workers/"+strings.Repeat("cd", 32)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown worker page: %d", resp.StatusCode)
	}
}
