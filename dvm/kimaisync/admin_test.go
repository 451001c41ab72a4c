package kimaisync_test

import (
	"testing"
	"time"

	"pow.do/dvm/store"
)

// dropQueue completes every due job without running it, as if the hooks' enqueues had
// failed: the store holds the session and segments, the queue nothing for them.
func dropQueue(t *testing.T, e *env) {
	t.Helper()
	jobs, err := e.st.LeaseJobs(e.ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if err := e.st.CompleteJob(e.ctx, j.ID, j.Lease, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.st.QueueDepth(e.ctx); err != nil || n != 0 {
		t.Fatalf("queue depth %d (err %v) after dropping it", n, err)
	}
}

// TestStartupQueuesStoppedUnsyncedSessions: a stopped session whose sync was never queued
// is booked when a restarted syncer starts, although it is no longer open.
func TestStartupQueuesStoppedUnsyncedSessions(t *testing.T) {
	e := newEnv(t, envOpts{})
	sid := sessionID("lost hooks")
	e.start(sid, worker, t0)
	e.segment(sid, worker, 0, t0, 540)
	e.segment(sid, worker, 1, t0.Add(segLen), 300)
	e.clock.Set(t0.Add(2*segLen + time.Minute))
	e.stop(sid, worker, t0.Add(2*segLen+time.Minute), 2)
	dropQueue(t, e)
	if l := e.sheets(aliceKimaiID); len(l) != 0 {
		t.Fatalf("timesheets before the restart: %+v", l)
	}

	e.sync = e.newSyncer()
	if err := e.sync.EnqueueStartup(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.run()
	s := e.one(aliceKimaiID)
	wantBegin(t, s, t0)
	wantEnd(t, s, t0.Add(2*segLen))
	segs, err := e.st.SessionSegments(e.ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range segs {
		if g.KimaiState != store.KimaiSynced {
			t.Errorf("segment %d still %s after the start-up sync", g.Index, g.KimaiState)
		}
	}
	if left, err := e.st.UnsyncedSessions(e.ctx); err != nil || len(left) != 0 {
		t.Errorf("unsynced sessions after the sync: %v (err %v)", left, err)
	}
	// Another restart books nothing twice.
	e.sync = e.newSyncer()
	if err := e.sync.EnqueueStartup(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.one(aliceKimaiID)
}
