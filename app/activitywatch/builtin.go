package activitywatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"pow.do/app/capture"
)

// Defaults for BuiltinConfig, the same as ActivityWatch's own watchers so a
// segment looks alike with or without it.
const (
	DefaultPollInterval = time.Second     // aw-watcher-window polls every second
	DefaultAFKThreshold = 3 * time.Minute // aw-watcher-afk's default timeout
	DefaultRetention    = 3 * time.Hour
)

// BuiltinConfig tunes the built-in watcher.
type BuiltinConfig struct {
	PollInterval time.Duration    // default DefaultPollInterval
	AFKThreshold time.Duration    // idle this long means afk; default DefaultAFKThreshold
	Retention    time.Duration    // events older than this are forgotten; default DefaultRetention
	Now          func() time.Time // clock; default time.Now
}

// Builtin records window, afk and input events from the desktop itself, in
// ActivityWatch's shapes, for when ActivityWatch is not running. Call Poll
// once per PollInterval (Run does).
type Builtin struct {
	act capture.Activity
	in  capture.InputCounter // nil: no input events
	cfg BuiltinConfig

	mu       sync.Mutex
	window   []Event
	afk      []Event
	input    []Event
	minutes  map[int64]capture.InputCounts // unix minute -> counts
	lastPoll time.Time
	lastIn   capture.InputCounts
	started  bool
}

// NewBuiltin returns a watcher reading act (and in, which may be nil).
func NewBuiltin(act capture.Activity, in capture.InputCounter, cfg BuiltinConfig) *Builtin {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.AFKThreshold <= 0 {
		cfg.AFKThreshold = DefaultAFKThreshold
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Builtin{act: act, in: in, cfg: cfg, minutes: map[int64]capture.InputCounts{}}
}

// pulsetime is how far apart two equal samples may be and still extend one
// event, as ActivityWatch's heartbeats use poll time + 1 s.
func (b *Builtin) pulsetime() time.Duration { return b.cfg.PollInterval + time.Second }

// Run polls until ctx is done.
func (b *Builtin) Run(ctx context.Context) error {
	t := time.NewTicker(b.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := b.Poll(); err != nil {
			slog.Warn("builtin activity watcher", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll takes one sample of the focused window, the idle time and the input
// counts at the watcher's clock.
func (b *Builtin) Poll() error {
	now := b.cfg.Now().UTC()
	var errs []error

	w, werr := b.act.ActiveWindow()
	if werr != nil && !errors.Is(werr, capture.ErrNoActiveWindow) {
		errs = append(errs, fmt.Errorf("active window: %w", werr))
	}
	idle, ierr := b.act.IdleTime()
	if ierr != nil {
		errs = append(errs, fmt.Errorf("idle time: %w", ierr))
	}
	var counts capture.InputCounts
	if b.in != nil {
		counts = b.in.Totals()
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case werr == nil && w.ID != 0:
		b.heartbeat(&b.window, now, map[string]any{"app": w.App, "title": w.Title})
	case werr == nil || errors.Is(werr, capture.ErrNoActiveWindow):
		// aw-watcher-window records "unknown" when nothing has focus (a bare desktop,
		// no window manager), so time there still counts as active when not afk.
		b.heartbeat(&b.window, now, map[string]any{"app": "unknown", "title": "unknown"})
	}
	if ierr == nil {
		b.afkSample(now, idle)
	}
	if b.in != nil {
		b.inputSample(now, counts)
	}
	b.lastPoll = now
	b.started = true
	b.forget(now.Add(-b.cfg.Retention))
	return errors.Join(errs...)
}

// heartbeat extends the last event when data is unchanged and the previous
// sample is recent, otherwise starts a new one: ActivityWatch's heartbeat
// merge.
func (b *Builtin) heartbeat(events *[]Event, now time.Time, data map[string]any) {
	ev := Event{Timestamp: now, Data: data}
	if n := len(*events); n > 0 {
		last := &(*events)[n-1]
		if sameData(*last, ev) && now.Sub(last.End()) <= b.pulsetime() && !now.Before(last.Timestamp) {
			last.Duration = durationSeconds(now.Sub(last.Timestamp))
			return
		}
	}
	*events = append(*events, ev)
}

// afkSample follows aw-watcher-afk: a change of state is placed at the
// moment of the last input, not at the moment it was noticed.
func (b *Builtin) afkSample(now time.Time, idle time.Duration) {
	status := "not-afk"
	if idle >= b.cfg.AFKThreshold {
		status = "afk"
	}
	n := len(b.afk)
	if n == 0 || b.afk[n-1].Data["status"] == status {
		b.heartbeat(&b.afk, now, map[string]any{"status": status})
		return
	}
	last := &b.afk[n-1]
	at := now.Add(-idle) // last input
	if at.Before(last.Timestamp) {
		at = last.Timestamp
	}
	// The old state (not-afk, or afk) ended at that input.
	last.Duration = durationSeconds(at.Sub(last.Timestamp))
	b.afk = append(b.afk, Event{Timestamp: at, Duration: durationSeconds(now.Sub(at)), Data: map[string]any{"status": status}})
}

// inputSample adds the counts since the previous poll to the minute that
// poll started in, and keeps one aw-watcher-input shaped event per minute.
func (b *Builtin) inputSample(now time.Time, totals capture.InputCounts) {
	if !b.started {
		b.lastIn = totals
		return
	}
	d := totals.Sub(b.lastIn)
	b.lastIn = totals
	minute := b.lastPoll.Truncate(time.Minute)
	key := minute.Unix() / 60
	b.minutes[key] = addCounts(b.minutes[key], d)
	c := b.minutes[key]
	data := map[string]any{
		"presses": c.Keys, "clicks": c.Clicks,
		"deltaX": c.DeltaX, "deltaY": c.DeltaY,
		"scrollX": c.ScrollX, "scrollY": c.ScrollY,
	}
	if n := len(b.input); n > 0 && b.input[n-1].Timestamp.Equal(minute) {
		b.input[n-1].Data = data
		return
	}
	b.input = append(b.input, Event{Timestamp: minute, Duration: 60, Data: data})
}

func addCounts(a, b capture.InputCounts) capture.InputCounts {
	return capture.InputCounts{
		Keys: a.Keys + b.Keys, Clicks: a.Clicks + b.Clicks, Moves: a.Moves + b.Moves,
		ScrollX: a.ScrollX + b.ScrollX, ScrollY: a.ScrollY + b.ScrollY,
		DeltaX: a.DeltaX + b.DeltaX, DeltaY: a.DeltaY + b.DeltaY,
	}
}

// forget drops what ended before cutoff so memory stays bounded.
func (b *Builtin) forget(cutoff time.Time) {
	trim := func(evs []Event) []Event {
		i := 0
		for i < len(evs)-1 && evs[i].End().Before(cutoff) {
			i++
		}
		return append(evs[:0:0], evs[i:]...)
	}
	if len(b.window) > 0 && b.window[0].End().Before(cutoff) {
		b.window = trim(b.window)
	}
	if len(b.afk) > 0 && b.afk[0].End().Before(cutoff) {
		b.afk = trim(b.afk)
	}
	if len(b.input) > 0 && b.input[0].End().Before(cutoff) {
		b.input = trim(b.input)
	}
	for k := range b.minutes {
		if time.Unix(k*60+60, 0).Before(cutoff) {
			delete(b.minutes, k)
		}
	}
}

// Window, AFK and Input return the recorded events inside [start, end),
// clipped and oldest first.
func (b *Builtin) Window(start, end time.Time) []Event { return b.clip(&b.window, start, end) }

// AFK returns the afk-status events inside [start, end).
func (b *Builtin) AFK(start, end time.Time) []Event { return b.clip(&b.afk, start, end) }

// Input returns the per-minute input events inside [start, end).
func (b *Builtin) Input(start, end time.Time) []Event { return b.clip(&b.input, start, end) }

func (b *Builtin) clip(events *[]Event, start, end time.Time) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	cp := make([]Event, len(*events))
	for i, e := range *events {
		cp[i] = e
		cp[i].Data = cloneData(e.Data)
	}
	return Clip(cp, start, end)
}

func cloneData(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Counts returns the input counts of the minute starting at t (UTC minute).
func (b *Builtin) Counts(minute time.Time) capture.InputCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.minutes[minute.Truncate(time.Minute).Unix()/60]
}

// InputMethod is the input counter's method ("" without a counter).
func (b *Builtin) InputMethod() string {
	if b.in == nil {
		return ""
	}
	return b.in.Method()
}
