package kimaisync

import (
	"strings"
	"testing"
	"time"

	"pow.do/dvm/store"
)

var p0 = time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)

func seg(id int64, idx int, startMin, endMin int, active int, project int64) store.Segment {
	return store.Segment{ID: id, Index: idx, Start: p0.Add(time.Duration(startMin) * time.Minute),
		End: p0.Add(time.Duration(endMin) * time.Minute), ActiveSeconds: active, Project: project, Activity: 1}
}

func TestPlanSplitsOnProjectChangeAndSortsArrivals(t *testing.T) {
	sess := store.Session{ID: "s", State: store.SessionOpen, Announced: true, StartedAt: p0, Project: 1, Activity: 1}
	// Arrived out of order; the third segment switches project.
	segs := []store.Segment{seg(2, 1, 10, 20, 300, 1), seg(1, 0, 0, 10, 300, 1), seg(3, 2, 20, 30, 300, 2)}
	parts, idle := plan(planInput{Session: sess, Segments: segs, Now: p0.Add(31 * time.Minute),
		SegmentLength: 10 * time.Minute, Current: true})
	if len(idle) != 0 || len(parts) != 2 {
		t.Fatalf("parts %+v idle %+v, want 2 parts", parts, idle)
	}
	if !parts[0].Begin.Equal(p0) || !parts[0].End.Equal(p0.Add(20*time.Minute)) || parts[0].Running || len(parts[0].Segments) != 2 {
		t.Errorf("first part %+v", parts[0])
	}
	if parts[1].Project != 2 || !parts[1].Running {
		t.Errorf("second part %+v, want project 2 running", parts[1])
	}
}

func TestPlanNotCurrentOrSilentNeverRuns(t *testing.T) {
	sess := store.Session{ID: "s", State: store.SessionOpen, Announced: true, StartedAt: p0, Project: 1, Activity: 1}
	segs := []store.Segment{seg(1, 0, 0, 10, 300, 1)}
	for _, tc := range []struct {
		name    string
		now     time.Time
		current bool
	}{
		{"older session of the worker", p0.Add(11 * time.Minute), false},
		{"silent for more than two lengths", p0.Add(31 * time.Minute), true},
	} {
		parts, _ := plan(planInput{Session: sess, Segments: segs, Now: tc.now, SegmentLength: 10 * time.Minute, Current: tc.current})
		if len(parts) != 1 || parts[0].Running {
			t.Errorf("%s: %+v, want one closed part", tc.name, parts)
		}
	}
	// Without segments: a provisional part only while live, current and announced.
	parts, _ := plan(planInput{Session: sess, Now: p0.Add(time.Minute), SegmentLength: 10 * time.Minute, Current: true})
	if len(parts) != 1 || !parts[0].Provisional || !parts[0].Running {
		t.Errorf("fresh session: %+v, want a provisional running part", parts)
	}
	sess.Announced = false
	if parts, _ := plan(planInput{Session: sess, Now: p0.Add(time.Minute), SegmentLength: 10 * time.Minute, Current: true}); len(parts) != 0 {
		t.Errorf("unannounced session without segments: %+v, want nothing", parts)
	}
}

func TestDescribe(t *testing.T) {
	d := describe("  memo  ", proof{Segments: 1, Screenshots: 3, Tracked: 10 * time.Minute, Active: 5 * time.Minute,
		TopApps: []store.Usage{{Name: "code\nevil", Seconds: 3600 + 120}}}, false, "https://d/timesheets/7", "abc")
	want := "memo\npow.do proof: 1 segment, 3 screenshots, 50% active\nTop apps: code evil 1h02m\nWork diary: https://d/timesheets/7\npow.do session abc"
	if d != want {
		t.Errorf("describe:\n%s\nwant:\n%s", d, want)
	}
	if !hasMarker(d, "abc") || hasMarker(d, "ab") {
		t.Error("marker detection")
	}
	p := summarize([]store.SegmentDetail{
		{Segment: store.Segment{Start: p0, End: p0.Add(time.Minute), ActiveSeconds: 60, ChainStatus: store.ChainVerified}},
		{Segment: store.Segment{Start: p0, End: p0.Add(time.Minute), ActiveSeconds: 30, ChainStatus: store.ChainGap}},
	})
	d = describe("", p, false, "", "abc")
	if !strings.Contains(d, "2 segments, 0 screenshots, 75% active") || !strings.Contains(d, "Hash chain: 1 segment after a missing segment, 0 broken") {
		t.Errorf("describe with a chain gap:\n%s", d)
	}
}
