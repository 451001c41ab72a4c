package activitywatch

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"pow.do/app/capture"
)

// fakeDesk is a scripted desktop: focused window, last input time and input
// counts, all driven by the test's clock.
type fakeDesk struct {
	mu        sync.Mutex
	now       time.Time
	window    capture.Window
	lastInput time.Time
	totals    capture.InputCounts
	winErr    error
}

func (f *fakeDesk) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeDesk) ActiveWindow() (capture.Window, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.winErr != nil {
		return capture.Window{}, f.winErr
	}
	if f.window.ID == 0 {
		return capture.Window{}, capture.ErrNoActiveWindow
	}
	return f.window, nil
}
func (f *fakeDesk) IdleTime() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now.Sub(f.lastInput), nil
}
func (f *fakeDesk) Totals() capture.InputCounts { f.mu.Lock(); defer f.mu.Unlock(); return f.totals }
func (f *fakeDesk) Method() string              { return "fake" }
func (f *fakeDesk) Close() error                { return nil }

var (
	code    = capture.Window{ID: 1, App: "Code", Title: "main.go"}
	firefox = capture.Window{ID: 2, App: "firefox", Title: "docs"}
)

// workScript plays four minutes from t0, polling every second:
// Code 0–59 s, Firefox 60–89 s, Code from 90 s; input every second until
// 120 s, none until 200 s (afk after the 30 s threshold), input again after.
func workScript(t *testing.T) (*Builtin, *fakeDesk) {
	d := &fakeDesk{now: t0, lastInput: t0}
	b := NewBuiltin(d, d, BuiltinConfig{AFKThreshold: 30 * time.Second, Now: d.Now})
	for s := 0; s <= 240; s++ {
		d.mu.Lock()
		d.now = t0.Add(time.Duration(s) * time.Second)
		switch {
		case s < 60:
			d.window = code
		case s < 90:
			d.window = firefox
		default:
			d.window = code
		}
		if s > 0 && (s <= 120 || s > 200) {
			d.lastInput = d.now
			d.totals.Keys += 2
			d.totals.Moves += 3
			d.totals.DeltaX += 30
			if s%10 == 0 {
				d.totals.Clicks++
			}
		}
		d.mu.Unlock()
		if err := b.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	return b, d
}

func TestBuiltinRecordsActivityWatchShapes(t *testing.T) {
	b, _ := workScript(t)
	seg := [2]time.Time{t0, t0.Add(4 * time.Minute)}

	window := b.Window(seg[0], seg[1])
	assertEvents(t, "window", window, []span{{0, 59}, {60, 29}, {90, 150}},
		[]map[string]any{win2(code), win2(firefox), win2(code)})

	afkEvents := b.AFK(seg[0], seg[1])
	// Afk starts at the last input (120 s), noticed at 150 s; back at 201 s.
	assertEvents(t, "afk", afkEvents, []span{{0, 120}, {120, 81}, {201, 39}},
		[]map[string]any{afk("not-afk"), afk("afk"), afk("not-afk")})

	input := b.Input(seg[0], seg[1])
	if len(input) != 4 {
		t.Fatalf("input events: %d, want one per minute", len(input))
	}
	wantPresses := []int64{120, 120, 0, 80} // 2 keys/s while present
	for i, ev := range input {
		if !ev.Timestamp.Equal(t0.Add(time.Duration(i)*time.Minute)) || ev.Duration != 60 {
			t.Fatalf("input %d at %v for %vs", i, ev.Timestamp, ev.Duration)
		}
		if ev.Data["presses"] != wantPresses[i] {
			t.Fatalf("input minute %d presses %v, want %d", i, ev.Data["presses"], wantPresses[i])
		}
	}
	if got := b.Counts(t0.Add(time.Minute + 30*time.Second)); got.Keys != 120 || got.Clicks != 6 || got.Moves != 180 || got.DeltaX != 1800 {
		t.Fatalf("minute 1 counts %+v", got)
	}

	// The JSON is ActivityWatch's: exactly these keys, UTC RFC 3339 times.
	for name, tc := range map[string]struct {
		evs  []Event
		keys []string
	}{
		"window": {window, []string{"app", "title"}},
		"afk":    {afkEvents, []string{"status"}},
		"input":  {input, []string{"clicks", "deltaX", "deltaY", "presses", "scrollX", "scrollY"}},
	} {
		for _, ev := range tc.evs {
			var m map[string]any
			raw, _ := json.Marshal(ev)
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if got := keys(m); !reflect.DeepEqual(got, []string{"data", "duration", "timestamp"}) {
				t.Fatalf("%s event keys %v", name, got)
			}
			if got := keys(m["data"].(map[string]any)); !reflect.DeepEqual(got, tc.keys) {
				t.Fatalf("%s data keys %v, want %v", name, got, tc.keys)
			}
			if ts := m["timestamp"].(string); ts[len(ts)-1] != 'Z' {
				t.Fatalf("%s timestamp %q not UTC", name, ts)
			}
		}
	}
}

func win2(w capture.Window) map[string]any { return map[string]any{"app": w.App, "title": w.Title} }

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func assertEvents(t *testing.T, name string, got []Event, want []span, data []map[string]any) {
	t.Helper()
	if g := spans(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("%s spans %v, want %v", name, g, want)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i].Data, data[i]) {
			t.Fatalf("%s %d data %v, want %v", name, i, got[i].Data, data[i])
		}
	}
}

func TestCollectBuiltin(t *testing.T) {
	b, _ := workScript(t)
	// ActivityWatch configured but not running: built-in data is used.
	c := &Collector{Client: New(Config{BaseURL: "http://127.0.0.1:1/api/0", Timeout: time.Second}), Builtin: b}
	a := c.Collect(context.Background(), t0, t0.Add(4*time.Minute))
	if a.Source != SourceBuiltin || a.V != 1 {
		t.Fatalf("source %q v %d", a.Source, a.V)
	}
	// Flooded window 0–240 s ∩ not-afk (0–120 and 201–240 s) = 120 + 39.
	if a.ActiveSeconds != 159 {
		t.Fatalf("active seconds %d, want 159", a.ActiveSeconds)
	}
	wantActive := []bool{true, true, false, true}
	wantKeys := []int64{120, 120, 0, 80}
	if len(a.Minutes) != 4 {
		t.Fatalf("%d minutes", len(a.Minutes))
	}
	for i, m := range a.Minutes {
		if !m.T.Equal(t0.Add(time.Duration(i)*time.Minute)) || m.Active != wantActive[i] || m.Keys != wantKeys[i] {
			t.Fatalf("minute %d: %+v, want active %v keys %d", i, m, wantActive[i], wantKeys[i])
		}
	}
	if a.Web == nil || len(a.Web) != 0 {
		t.Fatalf("web %v, want an empty list", a.Web)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	if got := keys(m); !reflect.DeepEqual(got, []string{"active_seconds", "afk", "input", "minutes", "source", "v", "web", "window"}) {
		t.Fatalf("activity.json keys %v", got)
	}
}

// asBucket turns recorded events into a bucket as ActivityWatch would store
// them.
func asBucket(t *testing.T, id, typ, host string, evs []Event) rawBucket {
	rb := rawBucket{ID: id, Type: typ, Hostname: host, Client: "aw-watcher-test", Created: "2026-01-01T00:00:00Z"}
	for i, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		rb.Events = append(rb.Events, ev(int64(i+1), e.Timestamp.Format(time.RFC3339Nano), e.Duration, string(data)))
	}
	return rb
}

func TestCollectSameWithOrWithoutActivityWatch(t *testing.T) {
	b, _ := workScript(t)
	// The same four minutes, as ActivityWatch's watchers on host "laptop"
	// would have stored them, plus a browser's tabs and someone else's host.
	day := [2]time.Time{t0.Add(-time.Hour), t0.Add(time.Hour)}
	buckets := map[string]rawBucket{
		"aw-watcher-window_laptop": asBucket(t, "aw-watcher-window_laptop", TypeWindow, "laptop", b.Window(day[0], day[1])),
		"aw-watcher-afk_laptop":    asBucket(t, "aw-watcher-afk_laptop", TypeAFK, "laptop", b.AFK(day[0], day[1])),
		"aw-watcher-window_other":  asBucket(t, "aw-watcher-window_other", TypeWindow, "other", []Event{e(0, 240, win("x"))}),
		"aw-watcher-web-firefox": asBucket(t, "aw-watcher-web-firefox", TypeWeb, "unknown", []Event{
			e(-30, 40, map[string]any{"url": "https://example.org/", "title": "Example", "audible": false, "incognito": false}),
			e(65, 20, map[string]any{"url": "https://go.dev/doc", "title": "Docs", "audible": false, "incognito": false}),
		}),
	}
	_, srv := newAWServer(t, "laptop", buckets)
	ctx := context.Background()
	seg := [2]time.Time{t0, t0.Add(4 * time.Minute)}

	withAW := (&Collector{Client: New(Config{BaseURL: srv.URL + "/api/0"}), Builtin: b}).Collect(ctx, seg[0], seg[1])
	without := (&Collector{Builtin: b}).Collect(ctx, seg[0], seg[1])
	if withAW.Source != SourceActivityWatch || without.Source != SourceBuiltin {
		t.Fatalf("sources %q / %q", withAW.Source, without.Source)
	}
	if withAW.ActiveSeconds != without.ActiveSeconds || !reflect.DeepEqual(withAW.Minutes, without.Minutes) {
		t.Fatalf("activity differs:\n AW %d %+v\n builtin %d %+v", withAW.ActiveSeconds, withAW.Minutes, without.ActiveSeconds, without.Minutes)
	}
	if !reflect.DeepEqual(spans(withAW.Window), spans(without.Window)) || !reflect.DeepEqual(spans(withAW.AFK), spans(without.AFK)) {
		t.Fatalf("events differ:\n AW %v %v\n builtin %v %v", spans(withAW.Window), spans(withAW.AFK), spans(without.Window), spans(without.AFK))
	}
	if got := spans(withAW.Web); !reflect.DeepEqual(got, []span{{0, 10}, {65, 20}}) {
		t.Fatalf("web events %v, want clipped tabs", got)
	}
	// No input bucket in ActivityWatch: the tracker's own input events fill in.
	if len(withAW.Input) != 4 {
		t.Fatalf("input events %d", len(withAW.Input))
	}

	// ActivityWatch without an afk watcher for this host: built-in is used.
	delete(buckets, "aw-watcher-afk_laptop")
	_, srv2 := newAWServer(t, "laptop", buckets)
	if a := (&Collector{Client: New(Config{BaseURL: srv2.URL + "/api/0"}), Builtin: b}).Collect(ctx, seg[0], seg[1]); a.Source != SourceBuiltin || a.ActiveSeconds != without.ActiveSeconds {
		t.Fatalf("without afk bucket: source %q active %d", a.Source, a.ActiveSeconds)
	}
}

func TestBuiltinPollErrorsAndRetention(t *testing.T) {
	d := &fakeDesk{now: t0, lastInput: t0, window: code, winErr: errors.New("X connection lost")}
	b := NewBuiltin(d, nil, BuiltinConfig{Now: d.Now, Retention: 10 * time.Minute})
	if err := b.Poll(); err == nil {
		t.Fatal("window error not reported")
	}
	if len(b.AFK(t0.Add(-time.Hour), t0.Add(time.Hour))) != 1 {
		t.Fatal("idle time not recorded when only the window failed")
	}
	d.winErr = nil
	for s := 1; s <= 3600; s++ {
		d.now = t0.Add(time.Duration(s) * time.Second)
		d.lastInput = d.now
		if s == 1800 {
			d.window = firefox
		}
		if err := b.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	all := b.Window(t0.Add(-time.Hour), t0.Add(2*time.Hour))
	if len(all) != 1 || all[0].Data["app"] != "firefox" {
		t.Fatalf("after retention: %v", spans(all))
	}
	if len(b.Input(t0, t0.Add(2*time.Hour))) != 0 {
		t.Fatal("input events without an input counter")
	}
}

// With nothing focused the watcher does what aw-watcher-window does: the time is "unknown"
// window time, active while the worker is not afk.
func TestBuiltinNoFocusedWindowIsUnknown(t *testing.T) {
	d := &fakeDesk{now: t0, lastInput: t0}
	b := NewBuiltin(d, d, BuiltinConfig{AFKThreshold: 30 * time.Second, Now: d.Now})
	for s := 0; s <= 60; s++ {
		d.now = t0.Add(time.Duration(s) * time.Second)
		d.lastInput = d.now
		if err := b.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	w := b.Window(t0, t0.Add(time.Minute))
	if len(w) != 1 || w[0].Data["app"] != "unknown" || w[0].Data["title"] != "unknown" {
		t.Fatalf("window events with nothing focused: %v", spans(w))
	}
	if got := ActiveTime(w, b.AFK(t0, t0.Add(time.Minute)), DefaultPulsetime); got < 55*time.Second {
		t.Fatalf("active %v in a minute of input with nothing focused", got)
	}
	d.winErr = errors.New("X connection lost")
	d.now = d.now.Add(time.Second)
	if err := b.Poll(); err == nil {
		t.Fatal("a failing window query was not reported")
	}
	if got := b.Window(t0, d.now.Add(time.Second)); got[len(got)-1].End().After(t0.Add(time.Minute)) {
		t.Fatalf("a failing window query was recorded as unknown: %v", spans(got))
	}
}

func TestBuiltinRun(t *testing.T) {
	d := &fakeDesk{now: t0, lastInput: t0, window: code}
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now }
	b := NewBuiltin(d, d, BuiltinConfig{PollInterval: 5 * time.Millisecond, Now: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := b.Window(t0, t0.Add(time.Hour))
		if len(w) == 1 && w[0].Duration >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not poll: %v", spans(w))
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}
