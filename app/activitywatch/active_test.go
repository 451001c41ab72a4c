package activitywatch

import (
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// e is an event starting s seconds after t0, lasting d seconds.
func e(s, d float64, data map[string]any) Event {
	return Event{Timestamp: t0.Add(time.Duration(s * float64(time.Second))), Duration: d, Data: data}
}

func win(app string) map[string]any    { return map[string]any{"app": app, "title": app + " title"} }
func afk(status string) map[string]any { return map[string]any{"status": status} }

type span struct{ s, d float64 }

func spans(evs []Event) []span {
	out := make([]span, len(evs))
	for i, v := range evs {
		out[i] = span{v.Timestamp.Sub(t0).Seconds(), v.Duration}
	}
	return out
}

func TestFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Event
		want []span
	}{
		{"small gap, same data: merged", []Event{e(0, 10, win("a")), e(13, 7, win("a"))}, []span{{0, 20}}},
		{"small gap, other data: meet in the middle", []Event{e(0, 10, win("a")), e(14, 6, win("b"))}, []span{{0, 12}, {12, 8}}},
		{"gap of exactly pulsetime is flooded", []Event{e(0, 10, win("a")), e(15, 5, win("b"))}, []span{{0, 12.5}, {12.5, 7.5}}},
		{"large gap kept", []Event{e(0, 10, win("a")), e(16, 4, win("b"))}, []span{{0, 10}, {16, 4}}},
		{"unsorted input", []Event{e(14, 6, win("b")), e(0, 10, win("a"))}, []span{{0, 12}, {12, 8}}},
		{"overlap, same data: merged", []Event{e(0, 10, win("a")), e(5, 10, win("a"))}, []span{{0, 15}}},
		{"overlap, other data: later wins", []Event{e(0, 10, win("a")), e(6, 10, win("b"))}, []span{{0, 6}, {6, 10}}},
		{"later event inside earlier: earlier resumes", []Event{e(0, 30, win("a")), e(10, 5, win("b"))}, []span{{0, 10}, {10, 5}, {15, 15}}},
		{"same start, other data: later wins", []Event{e(0, 10, win("a")), e(0, 4, win("b"))}, []span{{0, 4}, {4, 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]Event, len(tc.in))
			copy(in, tc.in)
			got := spans(Flood(tc.in, DefaultPulsetime))
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if abs(got[i].s-tc.want[i].s) > 1e-6 || abs(got[i].d-tc.want[i].d) > 1e-6 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			for i := range in {
				if in[i].Timestamp != tc.in[i].Timestamp || in[i].Duration != tc.in[i].Duration {
					t.Fatal("Flood modified its input")
				}
			}
		})
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func TestActiveTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window []Event
		afk    []Event
		want   float64
	}{
		{"no afk data: nothing proven active", []Event{e(0, 600, win("a"))}, nil, 0},
		{"all active", []Event{e(0, 600, win("a"))}, []Event{e(0, 600, afk("not-afk"))}, 600},
		{"afk half", []Event{e(0, 600, win("a"))}, []Event{e(0, 300, afk("not-afk")), e(300, 300, afk("afk"))}, 300},
		{"window polling gaps are flooded",
			[]Event{e(0, 59, win("a")), e(60, 59, win("b")), e(120, 60, win("a"))},
			[]Event{e(0, 180, afk("not-afk"))}, 180},
		{"a long gap is not activity",
			[]Event{e(0, 100, win("a")), e(200, 100, win("a"))},
			[]Event{e(0, 300, afk("not-afk"))}, 200},
		{"afk heartbeat gaps are flooded",
			[]Event{e(0, 120, win("a"))},
			[]Event{e(0, 58, afk("not-afk")), e(61, 59, afk("not-afk"))}, 120},
		{"overlapping window events are not counted twice",
			[]Event{e(0, 100, win("a")), e(50, 100, win("b"))},
			[]Event{e(0, 600, afk("not-afk"))}, 150},
		{"not-afk without a window is not active",
			[]Event{e(100, 50, win("a"))},
			[]Event{e(0, 600, afk("not-afk"))}, 50},
		{"afk flood gives way to the later state",
			[]Event{e(0, 100, win("a"))},
			[]Event{e(0, 40, afk("not-afk")), e(42, 58, afk("afk"))}, 41},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ActiveTime(tc.window, tc.afk, DefaultPulsetime).Seconds()
			if abs(got-tc.want) > 1e-6 {
				t.Fatalf("active %vs, want %vs", got, tc.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	evs := []Event{
		e(-30, 60, win("cross-start")),
		e(550, 100, win("cross-end")),
		e(100, 0, win("point")),
		e(600, 0, win("point-at-end")),
		e(-10, 10, win("touches-start")),
		e(200, 50, win("inside")),
	}
	got := Clip(evs, t0, t0.Add(600*time.Second))
	want := []span{{0, 30}, {100, 0}, {200, 50}, {550, 50}}
	if g := spans(got); len(g) != len(want) {
		t.Fatalf("got %v, want %v", g, want)
	} else {
		for i := range g {
			if g[i] != want[i] {
				t.Fatalf("got %v, want %v", g, want)
			}
		}
	}
	if evs[0].Duration != 60 {
		t.Fatal("Clip modified its input")
	}
}

func TestEventJSONShape(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	b, err := json.Marshal(Event{Timestamp: time.Date(2026, 11, 21, 11, 0, 3, 500_000_000, local), Duration: 41.5, Data: win("code")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"timestamp":"2026-11-21T10:00:03.5Z","duration":41.5,"data":{"app":"code","title":"code title"}}` {
		t.Fatalf("json %s", b)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || !back.Timestamp.Equal(time.Date(2026, 11, 21, 10, 0, 3, 500_000_000, time.UTC)) {
		t.Fatalf("round trip %+v %v", back, err)
	}
}
