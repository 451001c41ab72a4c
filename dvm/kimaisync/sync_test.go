package kimaisync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/daemon"
	"pow.do/dvm/kimai"
	"pow.do/dvm/kimaiemu"
	"pow.do/dvm/kimaisync"
	"pow.do/dvm/store"
)

// The Syncer is what the daemon's hooks expect.
var (
	_ daemon.SegmentSink = (*kimaisync.Syncer)(nil)
	_ daemon.SessionSink = (*kimaisync.Syncer)(nil)
)

func noDemoTags(s *kimaiemu.Seed) { s.Tags = nil }

func TestStartOpensRunningTimesheet(t *testing.T) {
	e := newEnv(t, envOpts{seed: noDemoTags})
	sid := sessionID("start")
	e.start(sid, worker, t0)
	if n := e.run(); n != 1 {
		t.Fatalf("ran %d jobs, want 1", n)
	}
	s := e.one(aliceKimaiID)
	wantBegin(t, s, t0)
	wantRunning(t, s)
	if !hasTag(s, "pow.do") {
		t.Errorf("tags %v: the pow.do tag was not created before use (Kimai drops unknown tags)", s.Tags)
	}
	contains(t, "description", s.Description, "pow.do session "+sid)
	contains(t, "description", s.Description, fmt.Sprintf("%s/timesheets/%d", diaryBase, s.ID))
	contains(t, "description", s.Description, "fixing the login page")
	if got := e.session(sid).KimaiTimesheetID; got != s.ID {
		t.Errorf("session records timesheet %d, Kimai has %d", got, s.ID)
	}
	// Nothing changed: running the queue again writes nothing new.
	e.sync.Enqueue(e.ctx, sid, worker)
	e.run()
	if again := e.one(aliceKimaiID); again.ID != s.ID || again.Description != s.Description {
		t.Errorf("a second sync changed the timesheet: %+v -> %+v", s, again)
	}
}

func TestSegmentsExtendAndStopEndsAtLastProvenSegment(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("extend")
	e.start(sid, worker, t0)
	e.run()
	first := e.one(aliceKimaiID)

	e.clock.Set(t0.Add(segLen + time.Minute))
	e.segment(sid, worker, 0, t0, 540)
	e.run()
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.segment(sid, worker, 1, t0.Add(segLen), 300)
	e.run()
	s := e.one(aliceKimaiID)
	if s.ID != first.ID {
		t.Fatalf("segments made a new timesheet %d instead of extending %d", s.ID, first.ID)
	}
	wantBegin(t, s, t0)
	wantRunning(t, s)
	contains(t, "description", s.Description, "2 segments, 4 screenshots, 70% active")
	contains(t, "description", s.Description, "Top apps: code 14m")

	// The stop message comes five minutes after the last proven segment: the timesheet
	// ends at the segment's end, not at the stop time.
	e.clock.Set(t0.Add(2*segLen + 5*time.Minute))
	e.stop(sid, worker, t0.Add(2*segLen+5*time.Minute), 2)
	e.run()
	s = e.one(aliceKimaiID)
	wantBegin(t, s, t0)
	wantEnd(t, s, t0.Add(2*segLen))
	contains(t, "description", s.Description, fmt.Sprintf("%s/timesheets/%d", diaryBase, s.ID))
	if got := e.session(sid).KimaiTimesheetID; got != 0 {
		t.Errorf("stopped session still records running timesheet %d", got)
	}
	segs, err := e.st.SessionSegments(e.ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range segs {
		if g.KimaiState != store.KimaiSynced || g.KimaiTimesheetID != s.ID {
			t.Errorf("segment %d: kimai state %s, timesheet %d; want synced to %d", g.Index, g.KimaiState, g.KimaiTimesheetID, s.ID)
		}
	}
	booked, err := e.st.TimesheetSegments(e.ctx, s.ID)
	if err != nil || len(booked) != 2 {
		t.Errorf("work diary finds %d segments for timesheet %d (err %v), want 2", len(booked), s.ID, err)
	}

	// A restarted DVM syncing the same session again books nothing twice.
	e.sync = e.newSyncer()
	e.sync.Enqueue(e.ctx, sid, worker)
	e.run()
	if again := e.one(aliceKimaiID); again.ID != s.ID || !again.End.Equal(*s.End) {
		t.Errorf("resync after restart changed the booking: %+v", again)
	}
}

func TestAutoStopAfterTwoSegmentLengths(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("silent")
	e.start(sid, worker, t0)
	e.clock.Set(t0.Add(segLen + time.Minute))
	e.segment(sid, worker, 0, t0, 400)
	e.run()

	// Exactly two segment lengths of silence: not yet.
	e.clock.Set(t0.Add(segLen + 2*segLen))
	if err := e.sync.Tick(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.run()
	if st := e.session(sid).State; st != store.SessionOpen {
		t.Fatalf("session %s after exactly two segment lengths, want open", st)
	}
	wantRunning(t, e.one(aliceKimaiID))

	e.clock.Advance(time.Second)
	if err := e.sync.Tick(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.run()
	sess := e.session(sid)
	if sess.State != store.SessionExpired || !sess.StoppedAt.Equal(t0.Add(segLen)) {
		t.Errorf("session %s stopped at %s, want expired at %s", sess.State, sess.StoppedAt, t0.Add(segLen))
	}
	s := e.one(aliceKimaiID)
	wantBegin(t, s, t0)
	wantEnd(t, s, t0.Add(segLen))
}

func TestLongGapSplits(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("gap")
	e.start(sid, worker, t0)
	e.segment(sid, worker, 0, t0, 500)
	e.segment(sid, worker, 1, t0.Add(segLen), 500)
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.run()
	// Laptop asleep for three segment lengths, then work goes on in the same session.
	resume := t0.Add(5 * segLen)
	e.clock.Set(resume.Add(segLen + time.Minute))
	e.segment(sid, worker, 2, resume, 500)
	e.run()
	l := e.sheets(aliceKimaiID)
	if len(l) != 2 {
		t.Fatalf("want 2 timesheets after the gap, got %d: %+v", len(l), l)
	}
	wantBegin(t, l[0], t0)
	wantEnd(t, l[0], t0.Add(2*segLen))
	wantBegin(t, l[1], resume)
	wantRunning(t, l[1])
	contains(t, "first description", l[0].Description, "2 segments")
	contains(t, "second description", l[1].Description, "1 segment,")
	if got := e.session(sid).KimaiTimesheetID; got != l[1].ID {
		t.Errorf("session's running timesheet %d, want %d", got, l[1].ID)
	}

	e.stop(sid, worker, resume.Add(segLen+time.Minute), 3)
	e.run()
	l = e.sheets(aliceKimaiID)
	if len(l) != 2 {
		t.Fatalf("want 2 timesheets after stop, got %d", len(l))
	}
	wantEnd(t, l[0], t0.Add(2*segLen))
	wantEnd(t, l[1], resume.Add(segLen))
}

func TestIdleSegmentSplits(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("idle")
	e.start(sid, worker, t0)
	e.run()
	e.segment(sid, worker, 0, t0, 480)
	e.segment(sid, worker, 1, t0.Add(segLen), 0) // away from the keyboard the whole time
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.run()
	s := e.one(aliceKimaiID)
	wantEnd(t, s, t0.Add(segLen))

	e.clock.Set(t0.Add(3*segLen + time.Minute))
	e.segment(sid, worker, 2, t0.Add(2*segLen), 420)
	e.run()
	l := e.sheets(aliceKimaiID)
	if len(l) != 2 {
		t.Fatalf("want 2 timesheets around the idle segment, got %d: %+v", len(l), l)
	}
	wantBegin(t, l[0], t0)
	wantEnd(t, l[0], t0.Add(segLen))
	wantBegin(t, l[1], t0.Add(2*segLen))
	wantRunning(t, l[1])
	idle, err := e.st.SegmentAt(e.ctx, sid, 1)
	if err != nil {
		t.Fatal(err)
	}
	if idle.KimaiState != store.KimaiSkipped || idle.KimaiTimesheetID != 0 {
		t.Errorf("idle segment: state %s timesheet %d, want skipped and unbooked", idle.KimaiState, idle.KimaiTimesheetID)
	}
}

func TestIdleFirstSegmentMovesTheRunningTimesheet(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("idle first")
	e.start(sid, worker, t0)
	e.run()
	e.segment(sid, worker, 0, t0, 0)
	e.run()
	if l := e.sheets(aliceKimaiID); len(l) != 0 {
		t.Fatalf("a session with only an idle segment keeps %d timesheets, want none: %+v", len(l), l)
	}
	e.segment(sid, worker, 1, t0.Add(segLen), 600)
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.run()
	s := e.one(aliceKimaiID)
	wantBegin(t, s, t0.Add(segLen))
	wantRunning(t, s)
}

func TestKimaiDownThenUpBooksExactlyOnce(t *testing.T) {
	for _, mode := range []string{"503", "reset"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOpts{seed: noDemoTags})
			sid := sessionID("outage " + mode)
			e.gate.set(mode)
			e.start(sid, worker, t0)
			e.run()
			e.segment(sid, worker, 0, t0, 500)
			e.clock.Advance(2 * time.Minute) // backoff is one minute in these tests
			e.run()
			e.segment(sid, worker, 1, t0.Add(segLen), 500)
			e.stop(sid, worker, t0.Add(2*segLen), 2)
			e.clock.Set(t0.Add(2*segLen + time.Minute))
			e.run()
			if n := e.emu.TimesheetCount(); n != 0 {
				t.Fatalf("Kimai is down but holds %d timesheets", n)
			}
			depth, err := e.st.QueueDepth(e.ctx)
			if err != nil || depth != 1 {
				t.Fatalf("queue depth %d (err %v), want the one coalesced sync job waiting", depth, err)
			}

			e.gate.set("")
			e.clock.Advance(2 * time.Minute)
			e.run()
			s := e.one(aliceKimaiID)
			wantBegin(t, s, t0)
			wantEnd(t, s, t0.Add(2*segLen))
			if !hasTag(s, "pow.do") {
				t.Errorf("tags %v, want pow.do", s.Tags)
			}
			if depth, _ := e.st.QueueDepth(e.ctx); depth != 0 {
				t.Errorf("queue depth %d after Kimai came back, want 0", depth)
			}
			if n := e.gate.createCount(); n != 1 {
				t.Errorf("%d creates reached Kimai, want 1", n)
			}
			// More runs and a restart change nothing.
			e.sync = e.newSyncer()
			e.sync.Enqueue(e.ctx, sid, worker)
			e.clock.Advance(time.Hour)
			e.run()
			if n := e.emu.TimesheetCount(); n != 1 {
				t.Errorf("Kimai holds %d timesheets, want exactly 1", n)
			}
		})
	}
}

func TestLostCreateAnswerIsFoundNotDoubled(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("lost answer")
	e.start(sid, worker, t0)
	e.segment(sid, worker, 0, t0, 500)
	e.gate.dropNextCreates(1)
	e.run()
	if n := e.emu.TimesheetCount(); n != 1 {
		t.Fatalf("the emulator should have stored the create whose answer was lost; it holds %d", n)
	}
	if id := e.session(sid).KimaiTimesheetID; id != 0 {
		t.Fatalf("the DVM cannot know the id of a create whose answer was lost, yet records %d", id)
	}
	e.clock.Advance(2 * time.Minute)
	e.run()
	s := e.one(aliceKimaiID)
	if n := e.gate.createCount(); n != 1 {
		t.Errorf("the retry POSTed again: %d creates reached Kimai", n)
	}
	if got := e.session(sid).KimaiTimesheetID; got != s.ID {
		t.Errorf("session records timesheet %d, want the adopted %d", got, s.ID)
	}
	wantBegin(t, s, t0)
	wantRunning(t, s)
	contains(t, "description", s.Description, fmt.Sprintf("%s/timesheets/%d", diaryBase, s.ID))
	contains(t, "description", s.Description, "1 segment, 2 screenshots")

	e.stop(sid, worker, t0.Add(segLen), 1)
	e.run()
	wantEnd(t, e.one(aliceKimaiID), t0.Add(segLen))
}

func TestTimeZones(t *testing.T) {
	for _, tc := range []struct{ name, tz, offset string }{
		{"UTC+13", "Pacific/Auckland", "+1300"},
		{"UTC-5", "America/Bogota", "-0500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{dvmTZ: tc.tz})
			sid := sessionID("tz " + tc.tz)
			// Odd minutes; in Auckland the session crosses local midnight (10:53 UTC is 23:53 there).
			begin := time.Date(2024, 1, 31, 10, 53, 0, 0, time.UTC)
			e.clock.Set(begin)
			e.start(sid, worker, begin)
			e.run()
			wantBegin(t, e.one(aliceKimaiID), begin)
			e.segment(sid, worker, 0, begin, 500)
			e.segment(sid, worker, 1, begin.Add(segLen), 500)
			e.stop(sid, worker, begin.Add(2*segLen), 2)
			e.clock.Set(begin.Add(2*segLen + time.Minute))
			e.run()
			s := e.one(aliceKimaiID)
			wantBegin(t, s, begin)
			wantEnd(t, s, begin.Add(2*segLen))
			if !strings.HasSuffix(s.RawBegin, tc.offset) {
				t.Errorf("Kimai answered begin %q; want it in the DVM user's zone (%s)", s.RawBegin, tc.offset)
			}
		})
	}
}

func TestTrackingModeRefused(t *testing.T) {
	e := newEnv(t, envOpts{seed: func(s *kimaiemu.Seed) { s.Settings.TrackingMode = "punch" }})
	err := e.sync.Check(e.ctx)
	if !errors.Is(err, kimaisync.ErrTrackingMode) || !strings.Contains(err.Error(), `"punch"`) {
		t.Fatalf("Check: %v, want ErrTrackingMode naming the mode", err)
	}
	sid := sessionID("punch")
	e.start(sid, worker, t0)
	e.run()
	if n := e.emu.TimesheetCount(); n != 0 {
		t.Errorf("booked %d timesheets into a punch-mode Kimai", n)
	}
	depth, _ := e.st.QueueDepth(e.ctx)
	if depth != 1 {
		t.Errorf("queue depth %d; the job must wait (not die) until Kimai's mode is fixed", depth)
	}
}

func TestNewSessionEndsThePreviousOneExplicitly(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := sessionID("first"), sessionID("second")
	e.start(a, worker, t0)
	e.segment(a, worker, 0, t0, 500)
	e.clock.Set(t0.Add(segLen + 30*time.Second))
	e.run()
	// The tracker restarts and opens a new session without stopping the first one.
	startB := t0.Add(segLen + 20*time.Second)
	e.start(b, worker, startB)
	e.run()
	l := e.sheets(aliceKimaiID)
	if len(l) != 2 {
		t.Fatalf("want 2 timesheets, got %d: %+v", len(l), l)
	}
	// Kimai's activeEntriesHardLimit would have stopped the first at Kimai's now; the
	// DVM ends it first, at its last proven segment.
	wantEnd(t, l[0], t0.Add(segLen))
	wantBegin(t, l[1], startB.Truncate(time.Minute))
	wantRunning(t, l[1])
	if got := e.session(a).KimaiTimesheetID; got != 0 {
		t.Errorf("older session still records running timesheet %d", got)
	}
}

func TestOverlapForbiddenClipsOrReports(t *testing.T) {
	e := newEnv(t, envOpts{seed: func(s *kimaiemu.Seed) { s.Settings.AllowOverlapping = false }})
	admin := e.client("demo-admin-token")
	// Alice booked 09:30–10:05 by hand.
	manual, err := admin.CreateTimesheet(e.ctx, kimai.NewTimesheet{User: aliceKimaiID, Project: 1, Activity: 1,
		Begin: t0.Add(-30 * time.Minute), End: t0.Add(5 * time.Minute), Description: "by hand"})
	if err != nil {
		t.Fatal(err)
	}
	sid := sessionID("overlap")
	e.start(sid, worker, t0)
	e.segment(sid, worker, 0, t0, 500)
	e.segment(sid, worker, 1, t0.Add(segLen), 500)
	e.stop(sid, worker, t0.Add(2*segLen), 2)
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.run()
	var ours []sheet
	for _, s := range e.sheets(aliceKimaiID) {
		if s.ID != manual.ID {
			ours = append(ours, s)
		}
	}
	if len(ours) != 1 {
		t.Fatalf("want one pow.do timesheet beside the manual one, got %+v", ours)
	}
	wantBegin(t, ours[0], t0.Add(5*time.Minute))
	wantEnd(t, ours[0], t0.Add(2*segLen))

	// A session wholly inside a manual booking: a clear error, a dead job, no loop.
	if _, err := admin.CreateTimesheet(e.ctx, kimai.NewTimesheet{User: aliceKimaiID, Project: 1, Activity: 1,
		Begin: t0.Add(3 * time.Hour), End: t0.Add(5 * time.Hour), Description: "meeting day"}); err != nil {
		t.Fatal(err)
	}
	sid2 := sessionID("covered")
	e.start(sid2, worker, t0.Add(4*time.Hour))
	e.segment(sid2, worker, 0, t0.Add(4*time.Hour), 500)
	e.stop(sid2, worker, t0.Add(4*time.Hour+segLen), 1)
	e.clock.Set(t0.Add(5 * time.Hour))
	if n := e.run(); n != 1 {
		t.Errorf("ran %d jobs, want 1", n)
	}
	if n := e.run(); n != 0 {
		t.Errorf("the refused job ran again (%d): it must not loop", n)
	}
	if got := len(e.sheets(aliceKimaiID)); got != 3 {
		t.Errorf("want 3 timesheets (two manual, one pow.do), got %d", got)
	}
	job := lastJob(t, e)
	if job.State != store.JobDead || !strings.Contains(job.LastError, "overlapping") {
		t.Errorf("job %d: state %s, error %q; want dead with an overlap explanation", job.ID, job.State, job.LastError)
	}
}

// lastJob finds the newest job by probing ids upward (the store has no list call).
func lastJob(t *testing.T, e *env) store.Job {
	t.Helper()
	var last store.Job
	for id := int64(1); id < 1000; id++ {
		j, err := e.st.Job(e.ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = j
	}
	return last
}

func TestUnmappedWorkerWaits(t *testing.T) {
	e := newEnv(t, envOpts{})
	if err := e.st.MapWorker(e.ctx, worker, 0); err != nil {
		t.Fatal(err)
	}
	sid := sessionID("unmapped")
	e.start(sid, worker, t0)
	e.run()
	job := lastJob(t, e)
	if job.State != store.JobPending || !strings.Contains(job.LastError, "not mapped") {
		t.Fatalf("job state %s error %q; want pending with the mapping hint", job.State, job.LastError)
	}
	if err := e.st.MapWorker(e.ctx, worker, aliceKimaiID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	e.run()
	wantRunning(t, e.one(aliceKimaiID))
}

func TestTimesheetDeletedInKimaiIsBookedAgain(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("vanish")
	e.start(sid, worker, t0)
	e.segment(sid, worker, 0, t0, 500)
	e.run()
	s := e.one(aliceKimaiID)
	if err := e.client("demo-admin-token").DeleteTimesheet(e.ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.segment(sid, worker, 1, t0.Add(segLen), 500)
	e.run()
	again := e.one(aliceKimaiID)
	if again.ID == s.ID {
		t.Fatalf("timesheet %d still there after deletion?", s.ID)
	}
	wantBegin(t, again, t0)
	contains(t, "description", again.Description, "2 segments")
}

func TestStopWithoutProofDeletesTheRunningTimesheet(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("no proof")
	e.start(sid, worker, t0)
	e.run()
	e.one(aliceKimaiID)
	e.stop(sid, worker, t0.Add(time.Minute), 0)
	e.run()
	if l := e.sheets(aliceKimaiID); len(l) != 0 {
		t.Errorf("a session without any proven segment left %d timesheets: %+v", len(l), l)
	}
}

func TestRunWakesOnHooks(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *kimaisync.Config) { c.PollInterval = time.Hour }})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(e.ctx)
	go func() { done <- e.sync.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	e.start(sessionID("wake"), worker, t0)
	deadline := time.Now().Add(10 * time.Second)
	for e.emu.TimesheetCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not book the started session although the hook woke it")
		}
		time.Sleep(10 * time.Millisecond) // polling a real condition with a deadline
	}
	wantRunning(t, e.one(aliceKimaiID))
}
