package session

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pow.do/shared/bundle"
)

func TestAlign(t *testing.T) {
	for _, c := range []struct {
		in     time.Time
		length time.Duration
		want   time.Time
	}{
		{at(10, 3, 20), time.Minute, at(10, 3, 0)},
		{at(10, 3, 20), 10 * time.Minute, at(10, 0, 0)},
		{at(10, 0, 0), 10 * time.Minute, at(10, 0, 0)},
		{at(10, 0, 19), 20 * time.Second, at(10, 0, 0)},
		{at(10, 0, 20), 20 * time.Second, at(10, 0, 20)},
	} {
		if got := Align(c.in, c.length); !got.Equal(c.want) {
			t.Errorf("Align(%s, %s) = %s, want %s", c.in, c.length, got, c.want)
		}
	}
}

// A session cut into clock-aligned segments: a partial first and last segment, full
// ones between, screenshots inside each, then review, sealing in order and the chain.
func TestSegmentsAlignedPartialAndChained(t *testing.T) {
	r := newRig(t, at(10, 3, 20))
	sess := r.start()
	r.run(at(10, 5, 30), always)
	if err := r.s.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	segs := r.segments(sess.ID)
	want := [][2]time.Time{{at(10, 3, 20), at(10, 4, 0)}, {at(10, 4, 0), at(10, 5, 0)}, {at(10, 5, 0), at(10, 5, 30)}}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d", len(segs), len(want))
	}
	for i, seg := range segs {
		if seg.Index != i || !seg.Start.Equal(want[i][0]) || !seg.End.Equal(want[i][1]) {
			t.Errorf("segment %d = #%d [%s, %s], want [%s, %s]", i, seg.Index, seg.Start, seg.End, want[i][0], want[i][1])
		}
		if seg.State != SegReviewing && seg.State != SegSealed {
			t.Errorf("segment %d state %s after stop", i, seg.State)
		}
	}
	// Nothing is sealed before its review window ends.
	if b, _ := r.out.list(); len(b) != 2 {
		t.Fatalf("%d segments delivered before the last review ended, want 2 (the first two)", len(b))
	}
	r.run(at(10, 5, 30).Add(time.Duration(r.policy.ReviewSeconds)*time.Second), nil)
	bundles, oxs := r.out.list()
	if len(bundles) != 3 {
		t.Fatalf("%d bundles delivered, want 3", len(bundles))
	}
	checkChain(t, bundles, oxs)
	// Screenshots: 2 planned per full minute, a proportional share (rounded up) of a
	// partial first one; a segment cut short keeps those planned before its end.
	if n := len(segs[0].Planned); n != 2 { // ceil(2 × 40 s / 60 s)
		t.Errorf("partial first segment planned %d screenshots, want 2", n)
	}
	wantShots := []int{len(segs[0].Planned), 2, 0}
	for _, p := range segs[2].Planned {
		if p.Before(segs[2].End) {
			wantShots[2]++
		}
	}
	for i, b := range bundles {
		m := b.Manifest
		if m.Worker != worker || m.Session != sess.ID || m.Project != 12 || m.Activity != 5 || m.Memo != "tests" {
			t.Errorf("bundle %d manifest header %+v", i, m)
		}
		if !m.Start.Equal(want[i][0]) || !m.End.Equal(want[i][1]) {
			t.Errorf("bundle %d covers [%s, %s]", i, m.Start, m.End)
		}
		shots := len(m.Files) - 1
		if shots != wantShots[i] {
			t.Errorf("bundle %d has %d screenshots, want %d", i, shots, wantShots[i])
		}
		if b.Activity.Source != bundle.SourceBuiltin || len(b.Activity.Window) == 0 {
			t.Errorf("bundle %d activity %+v", i, b.Activity)
		}
		if got, max := b.Activity.ActiveSeconds, m.End.Sub(m.Start).Seconds(); got < max-2 || got > max {
			t.Errorf("bundle %d active %v s of %v", i, got, max)
		}
		var keys int64
		for _, mn := range b.Activity.Minutes {
			keys += mn.Keys
		}
		if keys == 0 {
			t.Errorf("bundle %d counted no keys", i)
		}
	}
}

func TestPauseResume(t *testing.T) {
	r := newRig(t, at(10, 0, 5))
	sess := r.start()
	r.run(at(10, 0, 30), always)
	if err := r.s.Pause(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Pause(r.ctx); !errors.Is(err, ErrPaused) {
		t.Fatalf("second pause: %v", err)
	}
	snap, err := r.s.Snapshot(r.ctx)
	if err != nil || snap.Open != nil || snap.Session.State != Paused || snap.Elapsed != 25*time.Second {
		t.Fatalf("paused snapshot %+v, %v", snap, err)
	}
	// Time passes while paused: nothing is recorded.
	r.run(at(10, 2, 10), always)
	if err := r.s.Resume(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 2, 40), always)
	if err := r.s.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	segs := r.segments(sess.ID)
	if len(segs) != 2 || !segs[0].End.Equal(at(10, 0, 30)) || !segs[1].Start.Equal(at(10, 2, 10)) || !segs[1].End.Equal(at(10, 2, 40)) || segs[1].Index != 1 {
		t.Fatalf("segments after pause/resume: %+v", segs)
	}
	got, err := r.store.Session(r.ctx, sess.ID)
	if err != nil || got.State != Stopped || !got.EndedAt.Equal(at(10, 2, 40)) {
		t.Fatalf("stopped session %+v, %v", got, err)
	}
	if err := r.s.Stop(r.ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stop twice: %v", err)
	}
}

// kill -9 mid-segment: on restart the interrupted segment ends at its last evidence,
// is marked interrupted (untaken screenshots recorded as skipped), and the session goes on.
func TestCrashResumeClosesInterruptedSegmentHonestly(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	r.policy.Screenshots = 3
	sess := r.start()
	planned := r.segments(sess.ID)[0].Planned
	crashAt := planned[len(planned)-1].Add(-time.Second).Truncate(time.Second)
	if crashAt.Before(at(10, 0, 20)) {
		t.Fatalf("the fixed seed planned the last screenshot at %s; pick another seed", planned[len(planned)-1])
	}
	r.run(crashAt, always)
	before := r.segments(sess.ID)[0]
	shots, _ := r.store.Shots(r.ctx, before.ID, false)
	evidence := before.Checkpoint
	for _, sh := range shots {
		if sh.TakenAt.After(evidence) {
			evidence = sh.TakenAt
		}
	}
	if !evidence.After(at(10, 0, 0)) || evidence.After(crashAt) {
		t.Fatalf("no evidence stored before the crash: %s", evidence)
	}
	r.crash()

	// The machine comes back six minutes later.
	r.clock.Set(at(10, 7, 0))
	r.open()
	segs := r.segments(sess.ID)
	if len(segs) != 2 {
		t.Fatalf("%d segments after restart, want the interrupted one and a new one", len(segs))
	}
	closed, next := segs[0], segs[1]
	if !closed.Interrupted || !closed.End.Equal(evidence.Truncate(time.Second)) || closed.State != SegHeld {
		t.Fatalf("interrupted segment %+v, want end %s", closed, evidence)
	}
	if next.Index != 1 || !next.Start.Equal(at(10, 7, 0)) || next.State != SegOpen {
		t.Fatalf("resumed segment %+v", next)
	}
	untaken := len(closed.Planned) - len(shots)
	skips, _ := r.store.Skips(r.ctx, closed.ID)
	if untaken == 0 || len(skips) != untaken || skips[0].Reason != ReasonInterrupted {
		t.Fatalf("skips %+v for %d untaken screenshots", skips, untaken)
	}
	r.run(at(10, 7, 30), always)
	if err := r.s.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 8, 0), always)
	bundles, oxs := r.out.list()
	if len(bundles) != 2 {
		t.Fatalf("%d bundles", len(bundles))
	}
	checkChain(t, bundles, oxs)
	m := bundles[0].Manifest
	if !m.End.Equal(closed.End) || len(m.Skipped) != untaken {
		t.Fatalf("interrupted manifest end %s skipped %+v", m.End, m.Skipped)
	}
	for _, e := range bundles[0].Activity.Window {
		if e.Timestamp.Add(time.Duration(e.Duration * float64(time.Second))).After(m.End.Add(time.Millisecond)) {
			t.Fatalf("activity after the last evidence: %+v", e)
		}
	}
}

// A crash right after start leaves no evidence: the segment claims no time and is gone.
func TestCrashWithoutEvidenceDropsSegment(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	sess := r.start()
	r.crash()
	r.clock.Set(at(10, 3, 0))
	r.open()
	segs := r.segments(sess.ID)
	if len(segs) != 1 || segs[0].Index != 0 || !segs[0].Start.Equal(at(10, 3, 0)) {
		t.Fatalf("segments %+v", segs)
	}
}

// A suspended laptop: Step is not called for minutes. That time is not claimed.
func TestSuspendGapInterruptsSegment(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	sess := r.start()
	r.run(at(10, 0, 20), always)
	r.clock.Set(at(10, 4, 10))
	r.run(at(10, 4, 30), always)
	segs := r.segments(sess.ID)
	if len(segs) != 2 || !segs[0].Interrupted || !segs[0].End.Equal(at(10, 0, 20)) || !segs[1].Start.Equal(at(10, 4, 11)) {
		t.Fatalf("segments after a suspend: %+v", segs)
	}
}

func TestReviewDeletionRecordedInManifest(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	sess := r.start()
	r.run(at(10, 1, 1), always) // segment 0 closed and in review
	seg := r.segments(sess.ID)[0]
	if seg.State != SegReviewing {
		t.Fatalf("segment 0 is %s", seg.State)
	}
	shots, _ := r.store.Shots(r.ctx, seg.ID, true)
	if len(shots) != 2 || len(shots[0].JPEG) == 0 || len(shots[0].Thumb) == 0 {
		t.Fatalf("screenshots in review: %+v", shots)
	}
	if err := r.s.DeleteScreenshot(r.ctx, seg.ID, shots[0].Name); err != nil {
		t.Fatal(err)
	}
	if err := r.s.DeleteScreenshot(r.ctx, seg.ID, shots[0].Name); !errors.Is(err, ErrNoScreenshot) {
		t.Fatalf("deleting twice: %v", err)
	}
	if err := r.s.DeleteScreenshot(r.ctx, seg.ID, "screenshots/099.jpg"); !errors.Is(err, ErrNoScreenshot) {
		t.Fatalf("deleting a missing screenshot: %v", err)
	}
	deletedAt := r.clock.Now().Truncate(time.Second)
	r.run(at(10, 1, 12), always)
	bundles, _ := r.out.list()
	if len(bundles) != 1 {
		t.Fatalf("%d bundles", len(bundles))
	}
	m := bundles[0].Manifest
	if len(m.Deleted) != 1 || m.Deleted[0].Name != shots[0].Name || !m.Deleted[0].DeletedAt.Equal(deletedAt) ||
		!m.Deleted[0].TakenAt.Equal(shots[0].TakenAt.Truncate(time.Second)) {
		t.Fatalf("deleted = %+v", m.Deleted)
	}
	if _, ok := bundles[0].Screenshot(shots[0].Name); ok {
		t.Fatal("the deleted screenshot is still in the bundle")
	}
	if _, ok := bundles[0].Screenshot(shots[1].Name); !ok {
		t.Fatal("the kept screenshot is missing")
	}
	// Sealed: no more deleting, and the full images are gone from the store.
	if err := r.s.DeleteScreenshot(r.ctx, seg.ID, shots[1].Name); !errors.Is(err, ErrNotInReview) {
		t.Fatalf("deleting after sealing: %v", err)
	}
	after, _ := r.store.Shots(r.ctx, seg.ID, true)
	for _, sh := range after {
		if len(sh.JPEG) != 0 {
			t.Fatalf("%s kept its JPEG after sealing", sh.Name)
		}
	}
}

func TestExcludedAppAndCaptureFailureRecordedAsSkipped(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	sess := r.start()
	r.desk.mu.Lock()
	r.desk.window.App, r.desk.window.Class = "KeePassXC", "keepassxc"
	r.desk.mu.Unlock()
	r.run(at(10, 0, 59), always)
	r.desk.mu.Lock()
	r.desk.window.App, r.desk.window.Class = "code", "code"
	r.desk.fail = errors.New("display gone")
	r.desk.mu.Unlock()
	r.run(at(10, 1, 59), always)
	segs := r.segments(sess.ID)
	for i, want := range []string{"excluded app: KeePassXC", "capture failed: capture screens: display gone"} {
		skips, _ := r.store.Skips(r.ctx, segs[i].ID)
		shots, _ := r.store.Shots(r.ctx, segs[i].ID, false)
		if len(skips) != 2 || len(shots) != 0 || skips[0].Reason != want {
			t.Fatalf("segment %d: skips %+v shots %d, want two skips %q", i, skips, len(shots), want)
		}
	}
}

// idleRig runs a session where the worker is away from 10:01:30 to 10:04:20 (the idle
// threshold is 60 s), then active until 10:05:10, and returns the rig at the prompt.
func idleRig(t *testing.T) (*rig, SessionRow) {
	r := newRig(t, at(10, 0, 0))
	sess := r.start()
	away := func(now time.Time) bool { return now.Before(at(10, 1, 30)) || !now.Before(at(10, 4, 20)) }
	r.run(at(10, 4, 19), away)
	since, back, ok := r.s.IdleNow()
	if !ok || !since.Equal(at(10, 1, 29)) || !back.IsZero() {
		t.Fatalf("while away: idle %v since %s back %s", ok, since, back)
	}
	// Screenshots while away are skipped as idle; nothing after the idle start is released.
	for _, seg := range r.segments(sess.ID) {
		if seg.End.After(since) && seg.State != SegHeld && seg.State != SegOpen {
			t.Fatalf("segment %d is %s during idle time", seg.Index, seg.State)
		}
	}
	r.run(at(10, 5, 10), away)
	since, back, ok = r.s.IdleNow()
	if !ok || !back.Equal(at(10, 4, 20)) {
		t.Fatalf("after return: idle %v since %s back %s", ok, since, back)
	}
	return r, sess
}

func TestIdleKeep(t *testing.T) {
	r, sess := idleRig(t)
	if err := r.s.IdleDecision(r.ctx, IdleKeep); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.s.IdleNow(); ok {
		t.Fatal("still idle after the decision")
	}
	segs := r.segments(sess.ID)
	for i, seg := range segs {
		if seg.Index != i || !seg.Start.Equal(at(10, i, 0)) {
			t.Fatalf("segment %d after keep: %+v", i, seg)
		}
	}
	var idleSkips int
	for _, seg := range segs {
		skips, _ := r.store.Skips(r.ctx, seg.ID)
		for _, sk := range skips {
			if sk.Reason == ReasonIdle {
				idleSkips++
			}
		}
	}
	if idleSkips == 0 {
		t.Fatal("no screenshot was skipped as idle while the worker was away")
	}
	if err := r.s.IdleDecision(r.ctx, IdleKeep); !errors.Is(err, ErrNoIdlePrompt) {
		t.Fatalf("second decision: %v", err)
	}
}

func TestIdleDiscardCutsTheIdleTime(t *testing.T) {
	r, sess := idleRig(t)
	if err := r.s.IdleDecision(r.ctx, IdleDiscard); err != nil {
		t.Fatal(err)
	}
	segs := r.segments(sess.ID)
	// [10:00, 10:01) untouched, [10:01, 10:01:29) cut short, [10:04:20, 10:05) moved, [10:05, …) open.
	want := [][2]time.Time{{at(10, 0, 0), at(10, 1, 0)}, {at(10, 1, 0), at(10, 1, 29)}, {at(10, 4, 20), at(10, 5, 0)}, {at(10, 5, 0), {}}}
	if len(segs) != len(want) {
		t.Fatalf("%d segments after discard: %+v", len(segs), segs)
	}
	for i, seg := range segs {
		if seg.Index != i || !seg.Start.Equal(want[i][0]) || !seg.End.Equal(want[i][1]) {
			t.Errorf("segment %d = #%d [%s, %s], want [%s, %s]", i, seg.Index, seg.Start, seg.End, want[i][0], want[i][1])
		}
		shots, _ := r.store.Shots(r.ctx, seg.ID, false)
		skips, _ := r.store.Skips(r.ctx, seg.ID)
		for _, sh := range shots {
			if !sh.TakenAt.Before(at(10, 1, 29)) && sh.TakenAt.Before(at(10, 4, 20)) {
				t.Errorf("screenshot %s at %s from the discarded time kept", sh.Name, sh.TakenAt)
			}
		}
		for _, sk := range skips {
			if sk.Reason == ReasonIdle {
				t.Errorf("idle skip at %s kept in segment %d", sk.At, i)
			}
		}
	}
	r.run(at(10, 5, 30), always)
	if err := r.s.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 6, 0), always)
	bundles, oxs := r.out.list()
	if len(bundles) != 4 {
		t.Fatalf("%d bundles", len(bundles))
	}
	checkChain(t, bundles, oxs)
	var total time.Duration
	for _, b := range bundles {
		total += b.Manifest.End.Sub(b.Manifest.Start)
	}
	if want := 89*time.Second + 70*time.Second; total != want {
		t.Fatalf("claimed %s, want %s", total, want)
	}
}

func TestIdleStopEndsWhereTheIdleTimeBegan(t *testing.T) {
	r, sess := idleRig(t)
	if err := r.s.IdleDecision(r.ctx, IdleStop); err != nil {
		t.Fatal(err)
	}
	got, _ := r.store.Session(r.ctx, sess.ID)
	if got.State != Stopped || !got.EndedAt.Equal(at(10, 1, 29)) {
		t.Fatalf("session after stop decision: %+v", got)
	}
	segs := r.segments(sess.ID)
	if len(segs) != 2 || !segs[1].End.Equal(at(10, 1, 29)) {
		t.Fatalf("segments %+v", segs)
	}
	if snap, _ := r.s.Snapshot(r.ctx); snap.Session != nil {
		t.Fatal("a session is still open")
	}
}

func TestIdleDecisionRefusesUnknownChoice(t *testing.T) {
	r, _ := idleRig(t)
	if err := r.s.IdleDecision(r.ctx, "later"); !errors.Is(err, ErrBadChoice) {
		t.Fatalf("unknown choice: %v", err)
	}
}

// The key is locked after a restart: finished segments wait in the store, then go out
// in order once it is unlocked.
func TestSealingWaitsForTheKeyAndDeliveryRetries(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	r.out.fail = errors.New("outbox disk full")
	var stepErrs int
	r.stepErrs = &stepErrs
	sess := r.start()
	r.run(at(10, 2, 30), always)
	if b, _ := r.out.list(); len(b) != 0 || stepErrs == 0 {
		t.Fatalf("delivered %d despite the failing outbox (%d step errors)", len(b), stepErrs)
	}
	for _, seg := range r.segments(sess.ID)[:2] {
		if seg.State != SegReviewing {
			t.Fatalf("segment %d is %s after a failed delivery", seg.Index, seg.State)
		}
	}
	snap, _ := r.s.Snapshot(r.ctx)
	if snap.LastErr == nil || !strings.Contains(snap.LastErr.Error(), "outbox disk full") {
		t.Fatalf("last error %v", snap.LastErr)
	}
	r.out.mu.Lock()
	r.out.fail = nil
	r.out.mu.Unlock()
	r.run(at(10, 3, 40), always)
	bundles, oxs := r.out.list()
	if len(bundles) != 3 {
		t.Fatalf("%d bundles after the outbox recovered", len(bundles))
	}
	checkChain(t, bundles, oxs)
}

func TestStartTwiceAndCommandsWithoutSession(t *testing.T) {
	r := newRig(t, at(10, 0, 0))
	if err := r.s.Pause(r.ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("pause: %v", err)
	}
	if err := r.s.Resume(r.ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("resume: %v", err)
	}
	r.start()
	if _, err := r.s.Start(r.ctx, StartParams{Project: 1, Activity: 1}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second start: %v", err)
	}
	if err := r.s.Resume(r.ctx); !errors.Is(err, ErrNotPaused) {
		t.Fatalf("resume while running: %v", err)
	}
}
