package activitywatch

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"pow.do/shared/bundle"
)

// Sources of a segment's activity: activity.json's values.
const (
	SourceActivityWatch = bundle.SourceActivityWatch
	SourceBuiltin       = bundle.SourceBuiltin
)

// Minute is one minute of a segment: input counts only, never keys. It is
// activity.json's minute as is.
type Minute = bundle.Minute

// Activity is the tracker's record of a segment's activity, converted to
// activity.json (PROTOCOL.md, section 2) when sealed; unlike bundle.Activity it
// counts active time in whole seconds and keeps ActivityWatch's event ids.
type Activity struct {
	V             int      `json:"v"`
	Source        string   `json:"source"`
	Window        []Event  `json:"window"`
	AFK           []Event  `json:"afk"`
	Web           []Event  `json:"web"`
	Input         []Event  `json:"input"`
	Minutes       []Minute `json:"minutes"`
	ActiveSeconds int64    `json:"active_seconds"`
}

// Collector assembles a segment's activity from ActivityWatch when it runs
// and has this host's window and afk watchers, otherwise from the built-in
// watcher. Input counts per minute always come from the built-in watcher
// (the tracker's own counter); web events only exist with ActivityWatch.
type Collector struct {
	Client    *Client  // nil: never ask ActivityWatch
	Builtin   *Builtin // nil: no built-in data
	Pulsetime time.Duration
}

// Collect returns the activity inside [start, end). It does not fail when
// ActivityWatch is missing or misbehaves: it falls back to the built-in
// watcher and says so in Source.
func (c *Collector) Collect(ctx context.Context, start, end time.Time) Activity {
	start, end = start.UTC(), end.UTC()
	a := Activity{V: 1, Source: SourceBuiltin}
	if c.Client != nil && c.Client.Available(ctx) {
		if err := c.fromActivityWatch(ctx, &a, start, end); err != nil {
			slog.Warn("activitywatch unusable, using the built-in watcher", "url", c.Client.BaseURL(), "err", err)
			a = Activity{V: 1, Source: SourceBuiltin}
		}
	}
	if a.Source == SourceBuiltin && c.Builtin != nil {
		a.Window = c.Builtin.Window(start, end)
		a.AFK = c.Builtin.AFK(start, end)
	}
	if a.Input == nil && c.Builtin != nil {
		a.Input = c.Builtin.Input(start, end)
	}
	pulse := c.Pulsetime
	if pulse <= 0 {
		pulse = DefaultPulsetime
	}
	active := ActiveIntervals(a.Window, a.AFK, pulse)
	var total time.Duration
	for _, v := range active {
		total += v.End.Sub(v.Start)
	}
	a.ActiveSeconds = int64(math.Round(total.Seconds()))
	for t := start.Truncate(time.Minute); t.Before(end); t = t.Add(time.Minute) {
		m := Minute{T: t, Active: overlap(active, t, t.Add(time.Minute)) > 0}
		if c.Builtin != nil {
			n := c.Builtin.Counts(t)
			m.Keys, m.Clicks, m.Moves = n.Keys, n.Clicks, n.Moves
		}
		a.Minutes = append(a.Minutes, m)
	}
	for _, evs := range []*[]Event{&a.Window, &a.AFK, &a.Web, &a.Input} {
		if *evs == nil {
			*evs = []Event{}
		}
	}
	return a
}

func (c *Collector) fromActivityWatch(ctx context.Context, a *Activity, start, end time.Time) error {
	hb, err := c.Client.FindBuckets(ctx)
	if err != nil {
		return err
	}
	if hb.Window == "" || hb.AFK == "" {
		return fmt.Errorf("host %q lacks a window or afk watcher (window %q, afk %q)", hb.Hostname, hb.Window, hb.AFK)
	}
	if a.Window, err = c.Client.Events(ctx, hb.Window, start, end); err != nil {
		return err
	}
	if a.AFK, err = c.Client.Events(ctx, hb.AFK, start, end); err != nil {
		return err
	}
	for _, id := range hb.Web {
		evs, err := c.Client.Events(ctx, id, start, end)
		if err != nil {
			return err
		}
		a.Web = append(a.Web, evs...)
	}
	SortOldestFirst(a.Web)
	if hb.Input != "" {
		if a.Input, err = c.Client.Events(ctx, hb.Input, start, end); err != nil {
			return err
		}
	}
	a.Source = SourceActivityWatch
	return nil
}
