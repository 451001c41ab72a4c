package kimaisync

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"pow.do/dvm/store"
)

// markerPrefix starts the description's last line, which names the session. It lets a
// retry find a timesheet whose creation was answered by a lost response.
const markerPrefix = "pow.do session "

func marker(sessionID string) string { return markerPrefix + sessionID }

// topAppsShown is how many apps the description names.
const topAppsShown = 3

// proof sums up a part's segments for the description.
type proof struct {
	Segments    int
	Screenshots int
	Tracked     time.Duration
	Active      time.Duration
	Gaps        int // segments whose predecessor never arrived
	Broken      int // segments whose hash chain does not match
	TopApps     []store.Usage
}

func summarize(details []store.SegmentDetail) proof {
	var p proof
	apps := map[string]float64{}
	for _, d := range details {
		p.Segments++
		p.Screenshots += d.ScreenshotCount
		p.Tracked += d.End.Sub(d.Start)
		p.Active += time.Duration(d.ActiveSeconds) * time.Second
		switch d.ChainStatus {
		case store.ChainGap:
			p.Gaps++
		case store.ChainBroken:
			p.Broken++
		}
		for _, u := range d.TopApps {
			apps[u.Name] += u.Seconds
		}
	}
	for name, sec := range apps {
		p.TopApps = append(p.TopApps, store.Usage{Name: name, Seconds: sec})
	}
	sort.Slice(p.TopApps, func(i, j int) bool {
		a, b := p.TopApps[i], p.TopApps[j]
		if a.Seconds != b.Seconds {
			return a.Seconds > b.Seconds
		}
		return a.Name < b.Name
	})
	if len(p.TopApps) > topAppsShown {
		p.TopApps = p.TopApps[:topAppsShown]
	}
	return p
}

// diaryLink is where the work diary shows a timesheet's evidence: <base>/timesheets/<id>.
func diaryLink(base string, timesheetID int64) string {
	if base == "" || timesheetID <= 0 {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/timesheets/" + strconv.FormatInt(timesheetID, 10)
}

// describe writes the timesheet description: the worker's memo, the proof in numbers,
// the top apps, the work-diary link and the session marker (always the last line).
func describe(memo string, p proof, provisional bool, link, sessionID string) string {
	var lines []string
	if m := strings.TrimSpace(memo); m != "" {
		lines = append(lines, m)
	}
	if provisional {
		lines = append(lines, "pow.do: session started, waiting for the first proven segment")
	} else {
		pct := 0
		if p.Tracked > 0 {
			pct = int(math.Round(100 * p.Active.Seconds() / p.Tracked.Seconds()))
		}
		lines = append(lines, fmt.Sprintf("pow.do proof: %d %s, %d %s, %d%% active",
			p.Segments, plural(p.Segments, "segment", "segments"),
			p.Screenshots, plural(p.Screenshots, "screenshot", "screenshots"), pct))
		if p.Gaps > 0 || p.Broken > 0 {
			lines = append(lines, fmt.Sprintf("Hash chain: %d %s after a missing segment, %d broken",
				p.Gaps, plural(p.Gaps, "segment", "segments"), p.Broken))
		}
		if len(p.TopApps) > 0 {
			names := make([]string, 0, len(p.TopApps))
			for _, u := range p.TopApps {
				names = append(names, fmt.Sprintf("%s %s", oneLine(u.Name), shortDuration(u.Seconds)))
			}
			lines = append(lines, "Top apps: "+strings.Join(names, ", "))
		}
	}
	if link != "" {
		lines = append(lines, "Work diary: "+link)
	}
	lines = append(lines, marker(sessionID))
	return strings.Join(lines, "\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// oneLine keeps an app name from breaking the description's layout.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}

func shortDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Minute)
	if d < time.Minute {
		return "<1m"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// checkDiaryBase refuses a diary base URL that would make a broken link.
func checkDiaryBase(base string) error {
	if base == "" {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("diary base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("diary base URL %q: want http(s)://host[/path] without query or fragment", base)
	}
	return nil
}
