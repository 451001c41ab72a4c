package bundle

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Activity sources.
const (
	SourceActivityWatch = "activitywatch"
	SourceBuiltin       = "builtin"
)

// Activity is activity.json: ActivityWatch-shaped events clipped to the segment, oldest
// first, plus per-minute input counts (counts only, never keys).
type Activity struct {
	V             int      `json:"v"`
	Source        string   `json:"source"`
	Window        []Event  `json:"window"`
	AFK           []Event  `json:"afk"`
	Web           []Event  `json:"web"`
	Input         []Event  `json:"input"`
	Minutes       []Minute `json:"minutes"`
	ActiveSeconds float64  `json:"active_seconds"`
}

// Event is one ActivityWatch event.
type Event struct {
	Timestamp time.Time      `json:"timestamp"`
	Duration  float64        `json:"duration"` // seconds
	Data      map[string]any `json:"data"`
}

// Minute holds the input counts of one wall-clock minute.
type Minute struct {
	T      time.Time `json:"t"`
	Keys   int64     `json:"keys"`
	Clicks int64     `json:"clicks"`
	Moves  int64     `json:"moves"`
	Active bool      `json:"active"`
}

// clipSlack absorbs float rounding when a tracker clips event durations to the end.
const clipSlack = time.Millisecond

// Validate checks activity.json's shape against the segment [start, end].
func (a *Activity) Validate(start, end time.Time) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if a.V != Version {
		bad("v is %d, want %d", a.V, Version)
	}
	if a.Source != SourceActivityWatch && a.Source != SourceBuiltin {
		bad("source %q is neither %s nor %s", a.Source, SourceActivityWatch, SourceBuiltin)
	}
	for _, list := range []struct {
		name   string
		events []Event
	}{{"window", a.Window}, {"afk", a.AFK}, {"web", a.Web}, {"input", a.Input}} {
		var prev time.Time
		for i, e := range list.events {
			switch {
			case !isUTC(e.Timestamp):
				bad("%s[%d]: timestamp %s is not UTC", list.name, i, e.Timestamp)
			case math.IsNaN(e.Duration) || e.Duration < 0 || e.Duration > end.Sub(start).Seconds()+clipSlack.Seconds():
				bad("%s[%d]: duration %v outside the segment", list.name, i, e.Duration)
			case !within(e.Timestamp, start, end) ||
				e.Timestamp.Add(time.Duration(e.Duration*float64(time.Second))).After(end.Add(clipSlack)):
				bad("%s[%d]: event at %s lasting %vs is not clipped to the segment", list.name, i, e.Timestamp, e.Duration)
			case e.Timestamp.Before(prev):
				bad("%s[%d]: events are not oldest first", list.name, i)
			}
			prev = e.Timestamp
		}
	}
	first := start.Truncate(time.Minute)
	var prev time.Time
	for i, m := range a.Minutes {
		switch {
		case !isUTC(m.T) || m.T.Truncate(time.Minute) != m.T:
			bad("minutes[%d]: t %s is not a whole UTC minute", i, m.T)
		case m.T.Before(first) || !m.T.Before(end):
			bad("minutes[%d]: t %s outside the segment", i, m.T)
		case i > 0 && !m.T.After(prev):
			bad("minutes[%d]: t %s not after the previous minute", i, m.T)
		case m.Keys < 0 || m.Clicks < 0 || m.Moves < 0:
			bad("minutes[%d]: negative count", i)
		}
		prev = m.T
	}
	if math.IsNaN(a.ActiveSeconds) || a.ActiveSeconds < 0 || a.ActiveSeconds > end.Sub(start).Seconds() {
		bad("active_seconds %v outside 0..segment length", a.ActiveSeconds)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidActivity, strings.Join(errs, "; "))
	}
	return nil
}

// normalized returns a copy with UTC times, version set and nil lists/data made empty,
// so activity.json always has the same shape. The caller's slices are not modified.
func (a Activity) normalized() Activity {
	a.V = Version
	events := func(in []Event) []Event {
		out := make([]Event, len(in))
		for i, e := range in {
			e.Timestamp = e.Timestamp.UTC()
			if e.Data == nil {
				e.Data = map[string]any{}
			}
			out[i] = e
		}
		return out
	}
	a.Window, a.AFK, a.Web, a.Input = events(a.Window), events(a.AFK), events(a.Web), events(a.Input)
	minutes := make([]Minute, len(a.Minutes))
	for i, m := range a.Minutes {
		m.T = m.T.UTC()
		minutes[i] = m
	}
	a.Minutes = minutes
	return a
}
