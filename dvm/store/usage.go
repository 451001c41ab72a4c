package store

import (
	"encoding/json"
	"sort"
)

// TopN is how many apps, titles and URLs are kept per segment.
const TopN = 5

// Tops sums event durations per app and window title (window bucket) and per URL (web
// bucket) and returns the n largest of each, most first, ties by name. Raw durations are
// used: idle time inside a window event counts (the per-minute counts show idleness).
func Tops(events []Event, n int) (apps, titles, urls []Usage) {
	app, title, url := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, e := range events {
		if e.Bucket != BucketWindow && e.Bucket != BucketWeb {
			continue
		}
		var d struct {
			App   string `json:"app"`
			Title string `json:"title"`
			URL   string `json:"url"`
		}
		if json.Unmarshal(e.Data, &d) != nil {
			continue // not an object: nothing to count
		}
		if e.Bucket == BucketWindow {
			if d.App != "" {
				app[d.App] += e.Duration
			}
			if d.Title != "" {
				title[d.Title] += e.Duration
			}
		} else if d.URL != "" {
			url[d.URL] += e.Duration
		}
	}
	return top(app, n), top(title, n), top(url, n)
}

func top(m map[string]float64, n int) []Usage {
	out := make([]Usage, 0, len(m))
	for k, v := range m {
		out = append(out, Usage{Name: k, Seconds: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seconds != out[j].Seconds {
			return out[i].Seconds > out[j].Seconds
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
