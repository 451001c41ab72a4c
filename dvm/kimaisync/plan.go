package kimaisync

import (
	"sort"
	"time"

	"pow.do/dvm/store"
)

// part is one Kimai timesheet a session should have: a run of consecutive active
// segments with the same project and activity, without a long gap or an idle segment
// inside. Its times are proven by its segments, never by the tracker's stop time.
type part struct {
	Begin, End        time.Time // End: the end of the last proven segment (zero for a provisional part)
	Running           bool      // the session is live and this is its newest run: no end in Kimai
	Provisional       bool      // opened by the start message, no segment yet
	Project, Activity int64
	Segments          []store.Segment // active segments, by start
}

// spans reports whether t falls inside the part (a running or provisional part is open-ended).
func (p part) spans(t time.Time) bool {
	if t.Before(p.Begin) {
		return false
	}
	return p.Running || p.Provisional || !t.After(p.End)
}

// planInput is everything the plan depends on; plan itself reads no clock and no store.
type planInput struct {
	Session  store.Session
	Segments []store.Segment
	Now      time.Time
	// SegmentLength is the session's segment length; a silence or gap longer than two of
	// them (plus Grace for silence) ends a run.
	SegmentLength time.Duration
	// Grace is added to the two segment lengths before a silent session counts as ended:
	// a tracker holds each segment for the review window before sending it.
	Grace time.Duration
	// Current: the session is its worker's newest open session. Only it may have a
	// running timesheet, so Kimai's activeEntriesHardLimit never stops one of ours.
	Current bool
}

// idle reports whether a segment proves no work at all.
func idle(s store.Segment) bool { return s.ActiveSeconds <= 0 }

// lastSeen is the newest instant the session is known to have been alive.
func lastSeen(s store.Session, segs []store.Segment) time.Time {
	t := s.StartedAt
	if s.LastSegmentEnd.After(t) {
		t = s.LastSegmentEnd
	}
	for _, g := range segs {
		if g.End.After(t) {
			t = g.End
		}
	}
	return t
}

// silent reports whether no segment has arrived for two segment lengths (plus grace).
func silent(s store.Session, segs []store.Segment, now time.Time, segLen, grace time.Duration) bool {
	return now.Sub(lastSeen(s, segs)) > 2*segLen+grace
}

// plan works out the timesheets a session should have in Kimai, and its idle segments
// (which are booked nowhere).
func plan(in planInput) (parts []part, idleSegs []store.Segment) {
	segs := append([]store.Segment(nil), in.Segments...)
	sort.Slice(segs, func(i, j int) bool {
		if !segs[i].Start.Equal(segs[j].Start) {
			return segs[i].Start.Before(segs[j].Start)
		}
		return segs[i].Index < segs[j].Index
	})
	maxGap := 2 * in.SegmentLength
	var cur *part
	closeRun := func() {
		if cur != nil {
			parts = append(parts, *cur)
			cur = nil
		}
	}
	for _, g := range segs {
		if idle(g) {
			idleSegs = append(idleSegs, g)
			closeRun()
			continue
		}
		if cur != nil && (g.Start.Sub(cur.End) > maxGap || g.Project != cur.Project || g.Activity != cur.Activity) {
			closeRun()
		}
		if cur == nil {
			cur = &part{Begin: g.Start, End: g.End, Project: g.Project, Activity: g.Activity}
		}
		cur.Segments = append(cur.Segments, g)
		if g.End.After(cur.End) {
			cur.End = g.End
		}
	}
	endsWithActive := cur != nil
	closeRun()

	live := in.Session.State == store.SessionOpen && in.Current &&
		!silent(in.Session, segs, in.Now, in.SegmentLength, in.Grace)
	switch {
	case len(parts) > 0:
		// The newest run stays running while the session is live and no idle segment
		// came after it.
		parts[len(parts)-1].Running = live && endsWithActive
	case len(segs) == 0 && live && in.Session.Announced && in.Session.Project > 0 && in.Session.Activity > 0:
		// A start message without any segment yet: open a running timesheet at once.
		parts = append(parts, part{Begin: in.Session.StartedAt, Running: true, Provisional: true,
			Project: in.Session.Project, Activity: in.Session.Activity})
	}
	return parts, idleSegs
}
