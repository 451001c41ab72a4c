package capture

import (
	"errors"
	"testing"
	"time"
)

// waitCounts polls c until cond holds on its totals.
func waitCounts(t *testing.T, c InputCounter, what string, cond func(InputCounts) bool) InputCounts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.Totals()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: counts stayed at %+v", what, got)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestRecordCounterCountsExactly(t *testing.T) {
	x := startXvfb(t)
	c, err := OpenInputCounter(x.display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Method() != MethodRecord {
		t.Fatalf("method %q, want %q on a server with RECORD", c.Method(), MethodRecord)
	}
	if got := c.Totals(); got != (InputCounts{}) {
		t.Fatalf("fresh counter has %+v", got)
	}

	x.xdotool(t, "key", "a", "b", "c")
	got := waitCounts(t, c, "3 keys", func(v InputCounts) bool { return v.Keys >= 3 })
	if got.Keys != 3 || got.Clicks != 0 {
		t.Fatalf("after 3 key taps: %+v", got)
	}

	x.xdotool(t, "click", "1")
	x.xdotool(t, "click", "3")
	x.xdotool(t, "click", "4") // wheel up
	x.xdotool(t, "click", "6") // wheel left
	got = waitCounts(t, c, "clicks and scrolls", func(v InputCounts) bool {
		return v.Clicks >= 2 && v.ScrollY >= 1 && v.ScrollX >= 1
	})
	if got.Clicks != 2 || got.ScrollY != 1 || got.ScrollX != 1 || got.Keys != 3 {
		t.Fatalf("after 2 clicks, 1 vertical and 1 horizontal scroll: %+v", got)
	}

	x.xdotool(t, "mousemove", "100", "100")
	x.xdotool(t, "mousemove", "300", "150")
	got = waitCounts(t, c, "two moves", func(v InputCounts) bool { return v.Moves >= 2 })
	if got.Moves != 2 || got.DeltaX != 200 || got.DeltaY != 50 {
		t.Fatalf("after moving (100,100)->(300,150): %+v, want 2 moves, dx 200, dy 50", got)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if after := c.Totals(); after != got {
		t.Fatalf("totals after Close %+v, want the last %+v", after, got)
	}
}

func TestInputCounterFallsBackToPolling(t *testing.T) {
	x := startXvfb(t, "-extension", "RECORD", "-screen", "0", "640x480x24")
	if _, err := OpenRecordCounter(x.display); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("OpenRecordCounter without RECORD: err = %v, want ErrNoRecord", err)
	}
	c, err := OpenInputCounter(x.display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Method() != MethodPoll {
		t.Fatalf("method %q, want %q", c.Method(), MethodPoll)
	}
}

func TestPollCounterApproximates(t *testing.T) {
	x := startXvfb(t, "-screen", "0", "640x480x24")
	c, err := OpenPollCounter(x.display, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	// Each jump is one sample apart, so the sampled travel is exact.
	x.xdotool(t, "mousemove", "10", "10")
	got := waitCounts(t, c, "first move", func(v InputCounts) bool { return v.Moves >= 1 })
	x.xdotool(t, "mousemove", "210", "60")
	got2 := waitCounts(t, c, "second move", func(v InputCounts) bool { return v.Moves > got.Moves })
	if d := got2.Sub(got); d.Moves != 1 || d.DeltaX != 200 || d.DeltaY != 50 {
		t.Fatalf("jump (10,10)->(210,60) counted as %+v", d)
	}
	got = got2

	// A held button and a held key are seen by the next sample.
	x.xdotool(t, "mousedown", "1")
	waitCounts(t, c, "button held", func(v InputCounts) bool { return v.Clicks == got.Clicks+1 })
	x.xdotool(t, "mouseup", "1")
	before := c.Totals()
	x.xdotool(t, "keydown", "a")
	waitCounts(t, c, "key held", func(v InputCounts) bool { return v.Keys > before.Keys })
	x.xdotool(t, "keyup", "a")

	// A tap too short to be sampled still shows up through the idle time.
	waitIdlePoll(t, x, 100*time.Millisecond)
	before = c.Totals()
	x.xdotool(t, "key", "b")
	waitCounts(t, c, "tap counted", func(v InputCounts) bool { return v.Keys > before.Keys })

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// waitIdlePoll waits until no input happened for at least min, so the next
// input is unambiguously new.
func waitIdlePoll(t *testing.T, x *xvfb, min time.Duration) {
	t.Helper()
	d := x.open(t)
	waitIdle(t, d, min)
}

func TestDiffSamples(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := inputSample{at: t0, x: 10, y: 10, idle: 5 * time.Second, idleOK: true}
	cur := prev
	cur.at = t0.Add(100 * time.Millisecond)
	cur.idle = prev.idle + 100*time.Millisecond
	if d := diffSamples(prev, cur); d != (InputCounts{}) {
		t.Fatalf("no change counted as %+v", d)
	}
	cur.x, cur.y = 4, 30
	cur.mask = uint16(1<<8 | 1<<11) // button 1 and wheel-up held
	cur.keys[3] = 0b1011
	cur.idle = 10 * time.Millisecond
	want := InputCounts{Keys: 3, Clicks: 1, Moves: 1, ScrollY: 1, DeltaX: 6, DeltaY: 20}
	if d := diffSamples(prev, cur); d != want {
		t.Fatalf("diff %+v, want %+v", d, want)
	}
	// Still held at the next sample: nothing new.
	next := cur
	next.at = cur.at.Add(100 * time.Millisecond)
	next.idle = cur.idle + 100*time.Millisecond
	if d := diffSamples(cur, next); d != (InputCounts{}) {
		t.Fatalf("held input counted again: %+v", d)
	}
	// Idle reset without any visible change: one unattributed key.
	next.idle = 30 * time.Millisecond
	if d := diffSamples(cur, next); d != (InputCounts{Keys: 1}) {
		t.Fatalf("idle reset counted as %+v", d)
	}
}

func TestInputCountsSub(t *testing.T) {
	a := InputCounts{Keys: 10, Clicks: 4, Moves: 7, ScrollX: 1, ScrollY: 2, DeltaX: 100, DeltaY: 50}
	b := InputCounts{Keys: 3, Clicks: 1, Moves: 7, DeltaX: 40, DeltaY: 5}
	if got := a.Sub(b); got != (InputCounts{Keys: 7, Clicks: 3, ScrollX: 1, ScrollY: 2, DeltaX: 60, DeltaY: 45}) {
		t.Fatalf("Sub = %+v", got)
	}
	if (InputCounts{DeltaX: 5}).Any() || !(InputCounts{ScrollX: 1}).Any() {
		t.Fatal("Any is wrong")
	}
}
