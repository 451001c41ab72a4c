// Package storetest is the behavioural test suite every store.Store implementation must
// pass. An implementation's tests call Run with a function that opens a fresh, empty store
// on real storage (a temp dir, a scratch database) using the given clock.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"pow.do/dvm/store"
)

// Opener opens a fresh empty store whose clock is now. The store is closed by the suite.
type Opener func(t *testing.T, now func() time.Time) store.Store

// Clock is a settable clock for the tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Epoch is where the suite's clock starts: a Saturday.
var Epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Run runs every behavioural test against stores from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Roster", testRoster},
		{"Invites", testInvites},
		{"Wraps", testWraps},
		{"RelayCursor", testRelayCursor},
		{"Sessions", testSessions},
		{"InsertAndReadBack", testInsertAndReadBack},
		{"Duplicate", testDuplicate},
		{"Conflict", testConflict},
		{"Chain", testChain},
		{"InvalidRecords", testInvalidRecords},
		{"FailedInsertLeavesNothing", testFailedInsert},
		{"SweepFiles", testSweepFiles},
		{"ConcurrentInserts", testConcurrentInserts},
		{"TimezoneDays", testTimezoneDays},
		{"WeekTotals", testWeekTotals},
		{"KimaiState", testKimaiState},
		{"QueueLeaseBackoff", testQueueLeaseBackoff},
		{"QueueLeaseExpiry", testQueueLeaseExpiry},
		{"QueueGroupsAndKeys", testQueueGroupsAndKeys},
		{"Reviewers", testReviewers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// --- helpers -------------------------------------------------------------------------

func setup(t *testing.T, open Opener) (store.Store, *Clock, context.Context) {
	t.Helper()
	c := NewClock(Epoch)
	s := open(t, c.Now)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, c, context.Background()
}

// Key is a deterministic 64-hex key named by label.
func Key(label string) string { return store.HashHex([]byte("key:" + label)) }

// SessionID is a deterministic 32-hex session id named by label.
func SessionID(label string) string { return Key("session:" + label)[:32] }

func addWorker(t *testing.T, s store.Store, ctx context.Context, label string) string {
	t.Helper()
	pk := Key(label)
	if err := s.AddWorker(ctx, store.Worker{Pubkey: pk, Name: label}); err != nil {
		t.Fatalf("add worker %s: %v", label, err)
	}
	return pk
}

// Record builds a complete segment record: 10 minutes from start, with events, minutes,
// one screenshot whose bytes depend on salt, a deletion and a skip. Its OX is derived from
// the worker, session, index and salt, so a different salt is a different bundle.
func Record(worker, session string, index int, start time.Time, prev, salt string) *store.SegmentRecord {
	end := start.Add(10 * time.Minute)
	shot := []byte(fmt.Sprintf("\xff\xd8 jpeg %s/%d %s", session, index, salt))
	r := &store.SegmentRecord{
		Worker: worker, Session: session, Index: index, Start: start, End: end,
		Project: 12, Activity: 5, Memo: "memo " + salt, AppVersion: "0.1.0", Source: "activitywatch",
		Policy:  store.Policy{SegmentSeconds: 600, Screenshots: 1, JPEGQuality: 80, MaxWidth: 1920},
		RumorID: store.HashHex([]byte("rumor" + session + fmt.Sprint(index) + salt)),
		X:       store.HashHex([]byte("x" + session + fmt.Sprint(index) + salt)),
		OX:      store.HashHex([]byte("ox" + worker + session + fmt.Sprint(index) + salt)),
		Prev:    prev, ActiveSeconds: 420,
		Events: []store.Event{
			{Bucket: store.BucketWindow, Timestamp: start.Add(3 * time.Second), Duration: 300, Data: json.RawMessage(`{"app":"code","title":"main.go"}`)},
			{Bucket: store.BucketWindow, Timestamp: start.Add(303 * time.Second), Duration: 200, Data: json.RawMessage(`{"app":"firefox","title":"Docs"}`)},
			{Bucket: store.BucketWindow, Timestamp: start.Add(503 * time.Second), Duration: 60, Data: json.RawMessage(`{"app":"code","title":"store.go"}`)},
			{Bucket: store.BucketAFK, Timestamp: start, Duration: 600, Data: json.RawMessage(`{"status":"not-afk"}`)},
			{Bucket: store.BucketWeb, Timestamp: start.Add(303 * time.Second), Duration: 200, Data: json.RawMessage(`{"url":"https://go.dev/doc","title":"Docs","audible":false,"incognito":false}`)},
			{Bucket: store.BucketInput, Timestamp: start, Duration: 60, Data: json.RawMessage(`{"presses":40,"clicks":3}`)},
		},
		Screenshots: []store.Screenshot{{Name: "screenshots/001.jpg", TakenAt: start.Add(197 * time.Second), Data: shot}},
		Deleted:     []store.DeletedScreenshot{{Name: "screenshots/002.jpg", TakenAt: start.Add(461 * time.Second), DeletedAt: end.Add(62 * time.Second)}},
		Skipped:     []store.SkippedCapture{{At: start.Add(5 * time.Minute), Reason: "excluded app: keepassxc"}},
		Evidence:    store.Evidence{Manifest: []byte(`{"v":1}`), Activity: []byte(`{"v":1,"source":"activitywatch"}`), Rumor: []byte(`{"kind":15}`), Seal: []byte(`{"kind":13}`)},
	}
	for m := 0; m < 10; m++ {
		r.Minutes = append(r.Minutes, store.Minute{T: start.Add(time.Duration(m) * time.Minute), Keys: 10 * m, Clicks: m, Moves: 100 + m, Active: m%3 != 0})
	}
	return r
}

func mustInsert(t *testing.T, s store.Store, ctx context.Context, r *store.SegmentRecord) {
	t.Helper()
	ok, err := s.InsertSegment(ctx, r)
	if err != nil {
		t.Fatalf("insert %s/%d: %v", r.Session, r.Index, err)
	}
	if !ok {
		t.Fatalf("insert %s/%d: reported duplicate on first insert", r.Session, r.Index)
	}
}

func chainOf(t *testing.T, s store.Store, ctx context.Context, session string, index int) store.ChainStatus {
	t.Helper()
	d, err := s.SegmentAt(ctx, session, index)
	if err != nil {
		t.Fatalf("segment %s/%d: %v", session, index, err)
	}
	return d.ChainStatus
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// --- roster --------------------------------------------------------------------------

func testRoster(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	bob := addWorker(t, s, ctx, "bob")
	wantErr(t, s.AddWorker(ctx, store.Worker{Pubkey: alice, Name: "again"}), store.ErrExists, "add active worker twice")
	wantErr(t, s.AddWorker(ctx, store.Worker{Pubkey: "not-hex", Name: "x"}), store.ErrInvalid, "add bad pubkey")

	if err := s.MapWorker(ctx, alice, 7); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.MapWorker(ctx, Key("nobody"), 7), store.ErrNotFound, "map unknown worker")
	w, err := s.Worker(ctx, alice)
	if err != nil || w.KimaiUserID != 7 || w.Name != "alice" || !w.JoinedAt.Equal(Epoch) {
		t.Fatalf("worker alice = %+v, %v", w, err)
	}

	c.Advance(time.Hour)
	if err := s.RemoveWorker(ctx, bob); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RemoveWorker(ctx, bob), store.ErrNotFound, "remove removed worker")
	active, err := s.Workers(ctx, false)
	if err != nil || len(active) != 1 || active[0].Pubkey != alice {
		t.Fatalf("active workers = %+v, %v", active, err)
	}
	all, err := s.Workers(ctx, true)
	if err != nil || len(all) != 2 || !all[1].RemovedAt.Equal(Epoch.Add(time.Hour)) {
		t.Fatalf("all workers = %+v, %v", all, err)
	}
	// A removed worker can be re-admitted.
	if err := s.AddWorker(ctx, store.Worker{Pubkey: bob, Name: "bob2"}); err != nil {
		t.Fatalf("re-admit: %v", err)
	}
	w, err = s.Worker(ctx, bob)
	if err != nil || !w.RemovedAt.IsZero() || w.Name != "bob2" {
		t.Fatalf("re-admitted bob = %+v, %v", w, err)
	}
	_, err = s.Worker(ctx, Key("nobody"))
	wantErr(t, err, store.ErrNotFound, "unknown worker")
}

func testInvites(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	inv := store.Invite{Pubkey: Key("invite1"), Name: "Carol", KimaiUserID: 3, Quota: 2, ExpiresAt: Epoch.Add(72 * time.Hour)}
	if err := s.AddInvite(ctx, inv); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddInvite(ctx, inv), store.ErrExists, "add invite twice")
	wantErr(t, s.AddInvite(ctx, store.Invite{Pubkey: Key("i9")}), store.ErrInvalid, "invite without expiry")

	carol := Key("carol")
	w, err := s.ConsumeInvite(ctx, inv.Pubkey, carol)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if w.Pubkey != carol || w.Name != "Carol" || w.KimaiUserID != 3 {
		t.Fatalf("worker from invite = %+v", w)
	}
	if got, err := s.Worker(ctx, carol); err != nil || got.Name != "Carol" {
		t.Fatalf("roster after consume: %+v, %v", got, err)
	}
	got, err := s.Invite(ctx, inv.Pubkey)
	if err != nil || got.ConsumedBy != carol || !got.ConsumedAt.Equal(Epoch) || got.Quota != 2 {
		t.Fatalf("consumed invite = %+v, %v", got, err)
	}
	_, err = s.ConsumeInvite(ctx, inv.Pubkey, Key("mallory"))
	wantErr(t, err, store.ErrInviteConsumed, "consume twice")
	if _, err := s.Worker(ctx, Key("mallory")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second consumer was added: %v", err)
	}

	inv2 := store.Invite{Pubkey: Key("invite2"), Name: "Dave", ExpiresAt: Epoch.Add(time.Hour)}
	if err := s.AddInvite(ctx, inv2); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	_, err = s.ConsumeInvite(ctx, inv2.Pubkey, Key("dave"))
	wantErr(t, err, store.ErrInviteExpired, "consume expired")
	_, err = s.ConsumeInvite(ctx, Key("never-issued"), Key("eve"))
	wantErr(t, err, store.ErrNotFound, "consume unknown")
	list, err := s.Invites(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("invites = %+v, %v", list, err)
	}
}

func testWraps(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	a, b := Key("wrap-a"), Key("wrap-b")
	if ok, err := s.WrapProcessed(ctx, a); err != nil || ok {
		t.Fatalf("fresh wrap processed = %v, %v", ok, err)
	}
	if err := s.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: a, Outcome: store.WrapAccepted}); err != nil {
		t.Fatal(err)
	}
	// Marking again (e.g. after a crash between commit and mark) is harmless.
	if err := s.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: a, Outcome: store.WrapDuplicate}); err != nil {
		t.Fatal(err)
	}
	c.Advance(48 * time.Hour)
	if err := s.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: b, Outcome: store.WrapRejected, Reason: "not on roster"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: Key("c"), Outcome: "maybe"}), store.ErrInvalid, "bad outcome")
	wantErr(t, s.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: "zz", Outcome: store.WrapIgnored}), store.ErrInvalid, "bad id")
	for _, id := range []string{a, b} {
		if ok, err := s.WrapProcessed(ctx, id); err != nil || !ok {
			t.Fatalf("wrap %s processed = %v, %v", id[:8], ok, err)
		}
	}
	n, err := s.PruneWraps(ctx, Epoch.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	if ok, _ := s.WrapProcessed(ctx, a); ok {
		t.Fatal("pruned wrap still processed")
	}
	if ok, _ := s.WrapProcessed(ctx, b); !ok {
		t.Fatal("recent wrap was pruned")
	}
}

func testRelayCursor(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	const u = "wss://relay.example/"
	if cur, err := s.RelayCursor(ctx, u); err != nil || !cur.IsZero() {
		t.Fatalf("fresh cursor = %v, %v", cur, err)
	}
	t1 := Epoch.Add(time.Hour)
	if err := s.AdvanceRelayCursor(ctx, u, t1); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceRelayCursor(ctx, u, Epoch); err != nil { // older: ignored
		t.Fatal(err)
	}
	if cur, err := s.RelayCursor(ctx, u); err != nil || !cur.Equal(t1) {
		t.Fatalf("cursor = %v, %v; want %v", cur, err, t1)
	}
	if cur, _ := s.RelayCursor(ctx, "wss://other/"); !cur.IsZero() {
		t.Fatalf("other relay's cursor = %v", cur)
	}
}

// --- sessions ------------------------------------------------------------------------

func testSessions(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	bob := addWorker(t, s, ctx, "bob")

	// Segments before the start message create the session.
	sid := SessionID("s1")
	start := Epoch.Truncate(10 * time.Minute)
	mustInsert(t, s, ctx, Record(alice, sid, 1, start.Add(10*time.Minute), Key("whatever"), "a"))
	got, err := s.Session(ctx, sid)
	if err != nil || got.Announced || got.State != store.SessionOpen || !got.LastSegmentEnd.Equal(start.Add(20*time.Minute)) {
		t.Fatalf("implicit session = %+v, %v", got, err)
	}
	got, err = s.StartSession(ctx, store.Session{ID: sid, Worker: alice, Project: 44, Activity: 9, Memo: "real", StartedAt: start.Add(-time.Minute)})
	if err != nil || !got.Announced || got.Project != 44 || got.Memo != "real" || !got.StartedAt.Equal(start.Add(-time.Minute)) {
		t.Fatalf("session after start message = %+v, %v", got, err)
	}
	_, err = s.StartSession(ctx, store.Session{ID: sid, Worker: bob, StartedAt: start})
	wantErr(t, err, store.ErrConflict, "another worker's session")
	// The same session id used by another worker in a segment is a conflict too.
	_, err = s.InsertSegment(ctx, Record(bob, sid, 5, start.Add(time.Hour), Key("p"), "b"))
	wantErr(t, err, store.ErrConflict, "segment in another worker's session")

	sid2 := SessionID("s2")
	if _, err := s.StartSession(ctx, store.Session{ID: sid2, Worker: bob, Project: 1, Activity: 2, StartedAt: start}); err != nil {
		t.Fatal(err)
	}
	open2, err := s.OpenSessions(ctx)
	if err != nil || len(open2) != 2 {
		t.Fatalf("open sessions = %+v, %v", open2, err)
	}
	stopped, err := s.StopSession(ctx, sid, alice, start.Add(20*time.Minute), 2)
	if err != nil || stopped.State != store.SessionStopped || stopped.DeclaredSegments != 2 || !stopped.StoppedAt.Equal(start.Add(20*time.Minute)) {
		t.Fatalf("stopped = %+v, %v", stopped, err)
	}
	_, err = s.StopSession(ctx, sid2, alice, start, 0)
	wantErr(t, err, store.ErrConflict, "stop another worker's session")
	_, err = s.StopSession(ctx, SessionID("none"), alice, start, 0)
	wantErr(t, err, store.ErrNotFound, "stop unknown session")
	if err := s.EndSession(ctx, sid2, store.SessionExpired, start.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionTimesheet(ctx, sid2, 901); err != nil {
		t.Fatal(err)
	}
	got, err = s.Session(ctx, sid2)
	if err != nil || got.State != store.SessionExpired || got.KimaiTimesheetID != 901 || got.DeclaredSegments != -1 {
		t.Fatalf("expired session = %+v, %v", got, err)
	}
	if o, err := s.OpenSessions(ctx); err != nil || len(o) != 0 {
		t.Fatalf("open sessions after stop/expire = %+v, %v", o, err)
	}
	wantErr(t, s.SetSessionTimesheet(ctx, SessionID("none"), 1), store.ErrNotFound, "timesheet on unknown session")
}

// --- segments ------------------------------------------------------------------------

func testInsertAndReadBack(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rec := Record(alice, sid, 0, start, "", "a")
	rec.Bundle = []byte("the plaintext zip")
	rec.OX = store.HashHex(rec.Bundle)
	c.Advance(90 * time.Second)
	mustInsert(t, s, ctx, rec)

	d, err := s.SegmentAt(ctx, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Worker != alice || d.Session != sid || d.Index != 0 || !d.Start.Equal(start) || !d.End.Equal(rec.End) ||
		d.Project != 12 || d.Activity != 5 || d.Memo != rec.Memo || d.AppVersion != "0.1.0" || d.Policy != rec.Policy ||
		d.Source != "activitywatch" || d.RumorID != rec.RumorID || d.X != rec.X || d.OX != rec.OX || d.Prev != "" ||
		d.ActiveSeconds != 420 || d.ChainStatus != store.ChainVerified || d.KimaiState != store.KimaiPending ||
		d.KimaiTimesheetID != 0 || d.ScreenshotCount != 1 || !d.BundleKept || !d.ReceivedAt.Equal(c.Now()) {
		t.Fatalf("segment read back = %+v", d.Segment)
	}
	if !reflect.DeepEqual(d.Minutes, rec.Minutes) {
		t.Fatalf("minutes = %+v\nwant %+v", d.Minutes, rec.Minutes)
	}
	wantApps := []store.Usage{{Name: "code", Seconds: 360}, {Name: "firefox", Seconds: 200}}
	if !reflect.DeepEqual(d.TopApps, wantApps) {
		t.Fatalf("top apps = %+v, want %+v", d.TopApps, wantApps)
	}
	if len(d.TopTitles) != 3 || d.TopTitles[0].Name != "main.go" || len(d.TopURLs) != 1 || d.TopURLs[0].Name != "https://go.dev/doc" {
		t.Fatalf("top titles %+v, urls %+v", d.TopTitles, d.TopURLs)
	}
	if !reflect.DeepEqual(d.Deleted, rec.Deleted) || !reflect.DeepEqual(d.Skipped, rec.Skipped) {
		t.Fatalf("deleted %+v skipped %+v", d.Deleted, d.Skipped)
	}
	sh := rec.Screenshots[0]
	if len(d.Screenshots) != 1 || d.Screenshots[0].Name != sh.Name || d.Screenshots[0].SHA256 != store.HashHex(sh.Data) ||
		d.Screenshots[0].Size != int64(len(sh.Data)) || !d.Screenshots[0].TakenAt.Equal(sh.TakenAt) {
		t.Fatalf("screenshots = %+v", d.Screenshots)
	}
	f, err := s.OpenScreenshot(d.Screenshots[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(b, sh.Data) {
		t.Fatalf("screenshot bytes differ (%v)", err)
	}
	_, err = s.OpenScreenshot(Key("missing"))
	wantErr(t, err, store.ErrNotFound, "missing screenshot")
	if _, err := s.OpenScreenshot("../../etc/passwd"); err == nil {
		t.Fatal("a path was accepted as a screenshot hash")
	}
	bf, err := s.OpenBundle(rec.OX)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(bf)
	bf.Close()
	if !bytes.Equal(b, rec.Bundle) {
		t.Fatal("bundle bytes differ")
	}

	evs, err := s.SegmentEvents(ctx, d.ID)
	if err != nil || len(evs) != len(rec.Events) {
		t.Fatalf("events = %d, %v", len(evs), err)
	}
	for _, e := range evs {
		found := false
		for _, w := range rec.Events {
			if e.Bucket == w.Bucket && e.Timestamp.Equal(w.Timestamp) && e.Duration == w.Duration && bytes.Equal(e.Data, w.Data) {
				found = true
			}
		}
		if !found {
			t.Fatalf("event %+v not among those inserted", e)
		}
	}
	ev, err := s.SegmentEvidence(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(ev, rec.Evidence) {
		t.Fatalf("evidence = %+v, %v", ev, err)
	}
	_, err = s.SegmentEvidence(ctx, d.ID+1000)
	wantErr(t, err, store.ErrNotFound, "evidence of unknown segment")
	byID, err := s.Segment(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(byID, d) {
		t.Fatalf("Segment(id) differs from SegmentAt: %v", err)
	}
	_, err = s.SegmentAt(ctx, sid, 1)
	wantErr(t, err, store.ErrNotFound, "unknown segment")
}

func testDuplicate(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	rec := Record(alice, sid, 0, Epoch, "", "a")
	mustInsert(t, s, ctx, rec)
	before, err := s.SegmentAt(ctx, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	again := Record(alice, sid, 0, Epoch, "", "a")
	again.RumorID = Key("a resent rumor") // the tracker re-sent the same bundle
	ok, err := s.InsertSegment(ctx, again)
	if err != nil || ok {
		t.Fatalf("second insert = %v, %v; want false, nil", ok, err)
	}
	after, err := s.SegmentAt(ctx, sid, 0)
	if err != nil || !reflect.DeepEqual(before, after) {
		t.Fatalf("duplicate changed the segment:\n%+v\n%+v", before, after)
	}
	segs, _ := s.SessionSegments(ctx, sid)
	if len(segs) != 1 {
		t.Fatalf("%d segments after duplicate", len(segs))
	}
}

func testConflict(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	mustInsert(t, s, ctx, Record(alice, sid, 0, Epoch, "", "a"))
	ok, err := s.InsertSegment(ctx, Record(alice, sid, 0, Epoch, "", "different"))
	if ok {
		t.Fatal("conflicting bundle reported inserted")
	}
	wantErr(t, err, store.ErrConflict, "different bundle for the same slot")
	d, _ := s.SegmentAt(ctx, sid, 0)
	if d.Memo != "memo a" {
		t.Fatalf("conflict overwrote the segment: memo %q", d.Memo)
	}
}

func testChain(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("chain")
	at := func(i int) time.Time { return Epoch.Add(time.Duration(i) * 10 * time.Minute) }
	r0 := Record(alice, sid, 0, at(0), "", "0")
	r1 := Record(alice, sid, 1, at(1), r0.OX, "1")
	r2 := Record(alice, sid, 2, at(2), r1.OX, "2")
	r3 := Record(alice, sid, 3, at(3), r2.OX, "3")

	mustInsert(t, s, ctx, r0)
	if st := chainOf(t, s, ctx, sid, 0); st != store.ChainVerified {
		t.Fatalf("index 0 = %s", st)
	}
	mustInsert(t, s, ctx, r2) // 1 missing
	if st := chainOf(t, s, ctx, sid, 2); st != store.ChainGap {
		t.Fatalf("segment after a missing one = %s, want gap", st)
	}
	mustInsert(t, s, ctx, r1) // arrives late: 2 is re-evaluated
	if st := chainOf(t, s, ctx, sid, 1); st != store.ChainVerified {
		t.Fatalf("late segment = %s", st)
	}
	if st := chainOf(t, s, ctx, sid, 2); st != store.ChainVerified {
		t.Fatalf("segment after the late one = %s, want verified", st)
	}
	r3.Prev = Key("tampered")
	mustInsert(t, s, ctx, r3)
	if st := chainOf(t, s, ctx, sid, 3); st != store.ChainBroken {
		t.Fatalf("wrong prev = %s, want broken", st)
	}

	// A late arrival whose ox does not match the next segment's prev breaks the next one.
	sid2 := SessionID("chain2")
	q0 := Record(alice, sid2, 0, at(10), "", "0")
	q1 := Record(alice, sid2, 1, at(11), q0.OX, "1")
	q2 := Record(alice, sid2, 2, at(12), Key("not q1's ox"), "2")
	mustInsert(t, s, ctx, q0)
	mustInsert(t, s, ctx, q2)
	if st := chainOf(t, s, ctx, sid2, 2); st != store.ChainGap {
		t.Fatalf("q2 = %s, want gap", st)
	}
	mustInsert(t, s, ctx, q1)
	if st := chainOf(t, s, ctx, sid2, 2); st != store.ChainBroken {
		t.Fatalf("q2 after q1 = %s, want broken", st)
	}
	// Index 0 must not claim a predecessor.
	sid3 := SessionID("chain3")
	mustInsert(t, s, ctx, Record(alice, sid3, 0, at(20), Key("x"), "0"))
	if st := chainOf(t, s, ctx, sid3, 0); st != store.ChainBroken {
		t.Fatalf("index 0 with prev = %s, want broken", st)
	}
}

func testInvalidRecords(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	cases := map[string]func(r *store.SegmentRecord){
		"bad worker":       func(r *store.SegmentRecord) { r.Worker = "ALICE" },
		"bad session":      func(r *store.SegmentRecord) { r.Session = "../../x" },
		"negative index":   func(r *store.SegmentRecord) { r.Index = -1 },
		"end before start": func(r *store.SegmentRecord) { r.End = r.Start },
		"bad ox":           func(r *store.SegmentRecord) { r.OX = "00" },
		"bad prev":         func(r *store.SegmentRecord) { r.Prev = "zz" },
		"long memo":        func(r *store.SegmentRecord) { r.Memo = string(make([]byte, store.MaxMemoBytes+1)) },
		"bucket":           func(r *store.SegmentRecord) { r.Events[0].Bucket = "keylog" },
		"event data":       func(r *store.SegmentRecord) { r.Events[0].Data = json.RawMessage(`{"app":`) },
		"negative dur":     func(r *store.SegmentRecord) { r.Events[0].Duration = -1 },
		"too active":       func(r *store.SegmentRecord) { r.ActiveSeconds = 601 },
		"shot hash":        func(r *store.SegmentRecord) { r.Screenshots[0].SHA256 = Key("other") },
		"empty shot":       func(r *store.SegmentRecord) { r.Screenshots[0].Data = nil },
		"bundle vs ox":     func(r *store.SegmentRecord) { r.Bundle = []byte("not the zip") },
	}
	for name, mutate := range cases {
		r := Record(alice, sid, 0, Epoch, "", "a")
		mutate(r)
		ok, err := s.InsertSegment(ctx, r)
		if ok || !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, %v; want ErrInvalid", name, ok, err)
		}
	}
	if _, err := s.InsertSegment(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("nil record: %v", err)
	}
	if _, err := s.Session(ctx, sid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an invalid record created its session: %v", err)
	}
	// Unknown worker: refused by the roster's foreign key, nothing stored.
	_, err := s.InsertSegment(ctx, Record(Key("stranger"), sid, 0, Epoch, "", "a"))
	if err == nil {
		t.Fatal("segment of a worker not on the roster was stored")
	}
	if _, err := s.SegmentAt(ctx, sid, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stranger's segment: %v", err)
	}
}

func testFailedInsert(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	// A later segment exists; the failing one would re-evaluate it if it got that far.
	r0 := Record(alice, sid, 0, Epoch, "", "0")
	r1 := Record(alice, sid, 1, Epoch.Add(10*time.Minute), r0.OX, "1")
	mustInsert(t, s, ctx, r1)
	bad := Record(alice, sid, 0, Epoch, "", "0")
	bad.Minutes = append(bad.Minutes, bad.Minutes[3]) // duplicate minute: the database refuses it midway
	ok, err := s.InsertSegment(ctx, bad)
	if ok || err == nil {
		t.Fatalf("insert with duplicate minute = %v, %v; want an error", ok, err)
	}
	if _, err := s.SegmentAt(ctx, sid, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed segment is readable: %v", err)
	}
	if st := chainOf(t, s, ctx, sid, 1); st != store.ChainGap {
		t.Fatalf("failed insert re-evaluated the next segment: %s", st)
	}
	days, err := s.DayTotals(ctx, alice, time.UTC, store.Day{}, store.Day{})
	if err != nil || len(days) != 1 || days[0].Segments != 1 {
		t.Fatalf("day totals after failed insert = %+v, %v", days, err)
	}
	// The good bundle still goes in afterwards.
	mustInsert(t, s, ctx, r0)
	if st := chainOf(t, s, ctx, sid, 1); st != store.ChainVerified {
		t.Fatalf("next after good insert = %s", st)
	}
}

func testSweepFiles(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("s")
	good := Record(alice, sid, 0, Epoch, "", "good")
	mustInsert(t, s, ctx, good)
	bad := Record(alice, sid, 1, Epoch.Add(10*time.Minute), good.OX, "bad")
	bad.Minutes = append(bad.Minutes, bad.Minutes[0])
	if _, err := s.InsertSegment(ctx, bad); err == nil {
		t.Fatal("bad insert succeeded")
	}
	orphan := store.HashHex(bad.Screenshots[0].Data)
	kept := store.HashHex(good.Screenshots[0].Data)
	f, err := s.OpenScreenshot(orphan)
	if err != nil {
		t.Fatalf("files are written before the transaction, so the orphan should exist: %v", err)
	}
	f.Close()
	// Files younger than the cut-off stay (an insert may be about to commit them).
	if n, err := s.SweepFiles(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweep of young files removed %d, %v", n, err)
	}
	n, err := s.SweepFiles(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want 1", n, err)
	}
	if _, err := s.OpenScreenshot(orphan); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("orphan after sweep: %v", err)
	}
	f, err = s.OpenScreenshot(kept)
	if err != nil {
		t.Fatalf("referenced screenshot swept: %v", err)
	}
	f.Close()
}

func testConcurrentInserts(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	const workers, segs = 4, 6
	var pks []string
	for i := 0; i < workers; i++ {
		pks = append(pks, addWorker(t, s, ctx, fmt.Sprintf("w%d", i)))
	}
	recs := map[string][]*store.SegmentRecord{}
	for _, pk := range pks {
		sid := SessionID(pk)
		prev := ""
		for i := 0; i < segs; i++ {
			r := Record(pk, sid, i, Epoch.Add(time.Duration(i)*10*time.Minute), prev, fmt.Sprint(i))
			prev = r.OX
			recs[pk] = append(recs[pk], r)
		}
	}
	// Every record is sent twice at once, in mixed order: exactly one of each pair wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted, dups := 0, 0
	var errs []error
	for round := 0; round < 2; round++ {
		for _, pk := range pks {
			for i := range recs[pk] {
				r := recs[pk][i]
				if round == 1 {
					r = recs[pk][segs-1-i]
				}
				wg.Add(1)
				go func(r store.SegmentRecord) {
					defer wg.Done()
					ok, err := s.InsertSegment(ctx, &r)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						errs = append(errs, err)
					case ok:
						inserted++
					default:
						dups++
					}
				}(*r)
			}
		}
	}
	// Readers run beside the writers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if _, err := s.DaySegments(ctx, pks[0], store.DayOf(Epoch, time.UTC), time.UTC); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent errors: %v", errors.Join(errs...))
	}
	if inserted != workers*segs || dups != workers*segs {
		t.Fatalf("inserted %d, duplicates %d; want %d each", inserted, dups, workers*segs)
	}
	for _, pk := range pks {
		list, err := s.SessionSegments(ctx, SessionID(pk))
		if err != nil || len(list) != segs {
			t.Fatalf("worker %s: %d segments, %v", pk[:8], len(list), err)
		}
		for _, sg := range list {
			if sg.ChainStatus != store.ChainVerified {
				t.Fatalf("segment %d of %s = %s after all arrived", sg.Index, pk[:8], sg.ChainStatus)
			}
		}
	}
}

// --- diary ---------------------------------------------------------------------------

func testTimezoneDays(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	bob := addWorker(t, s, ctx, "bob")
	plus13 := time.FixedZone("UTC+13", 13*3600)
	late := time.Date(2026, 11, 21, 23, 55, 0, 0, time.UTC) // 12:55 on the 22nd in UTC+13
	early := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)  // 22:00 on the 21st in UTC+13
	sid := SessionID("tz")
	r0 := Record(alice, sid, 0, early, "", "0")
	r1 := Record(alice, sid, 1, late, r0.OX, "1")
	r1.End = late.Add(5 * time.Minute) // the session stops at 00:00 UTC
	r1.ActiveSeconds = 200
	mustInsert(t, s, ctx, r0)
	mustInsert(t, s, ctx, r1)
	mustInsert(t, s, ctx, Record(bob, SessionID("bob"), 0, early, "", "b"))

	d21, d22 := store.Day{Year: 2026, Month: 11, Day: 21}, store.Day{Year: 2026, Month: 11, Day: 22}
	utc, err := s.DayTotals(ctx, alice, time.UTC, store.Day{}, store.Day{})
	if err != nil || len(utc) != 1 || utc[0].Day != d21 || utc[0].Segments != 2 || utc[0].TrackedSeconds != 900 || utc[0].ActiveSeconds != 620 {
		t.Fatalf("UTC days = %+v, %v", utc, err)
	}
	nz, err := s.DayTotals(ctx, alice, plus13, store.Day{}, store.Day{})
	if err != nil || len(nz) != 2 || nz[0].Day != d21 || nz[1].Day != d22 || nz[1].Segments != 1 || nz[1].TrackedSeconds != 300 {
		t.Fatalf("UTC+13 days = %+v, %v", nz, err)
	}
	segs, err := s.DaySegments(ctx, alice, d22, plus13)
	if err != nil || len(segs) != 1 || !segs[0].Start.Equal(late) {
		t.Fatalf("UTC+13 segments of the 22nd = %+v, %v", segs, err)
	}
	segs, err = s.DaySegments(ctx, alice, d21, plus13)
	if err != nil || len(segs) != 1 || !segs[0].Start.Equal(early) {
		t.Fatalf("UTC+13 segments of the 21st = %d, %v", len(segs), err)
	}
	segs, err = s.DaySegments(ctx, alice, d22, time.UTC)
	if err != nil || len(segs) != 0 {
		t.Fatalf("UTC segments of the 22nd = %d, %v", len(segs), err)
	}
	// Range bounds are days in loc, inclusive.
	only22, err := s.DayTotals(ctx, alice, plus13, d22, d22)
	if err != nil || len(only22) != 1 || only22[0].Day != d22 {
		t.Fatalf("UTC+13 totals for the 22nd only = %+v, %v", only22, err)
	}
	all, err := s.DayTotals(ctx, "", time.UTC, d21, d21)
	if err != nil || len(all) != 2 || all[0].Worker == all[1].Worker {
		t.Fatalf("every worker's totals = %+v, %v", all, err)
	}
}

func testWeekTotals(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	plus13 := time.FixedZone("UTC+13", 13*3600)
	sunday := time.Date(2026, 11, 22, 23, 50, 0, 0, time.UTC) // Monday 12:50 in UTC+13
	monday := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	saturday := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	var prev string
	for i, at := range []time.Time{saturday, sunday, monday} {
		r := Record(alice, SessionID("w"), i, at, prev, fmt.Sprint(i))
		prev = r.OX
		mustInsert(t, s, ctx, r)
	}
	mon16, mon23 := store.Day{Year: 2026, Month: 11, Day: 16}, store.Day{Year: 2026, Month: 11, Day: 23}
	utc, err := s.WeekTotals(ctx, alice, time.UTC, store.Day{}, store.Day{})
	if err != nil || len(utc) != 2 || utc[0].Week != mon16 || utc[0].Segments != 2 || utc[1].Week != mon23 || utc[1].Segments != 1 {
		t.Fatalf("UTC weeks = %+v, %v", utc, err)
	}
	nz, err := s.WeekTotals(ctx, alice, plus13, store.Day{}, store.Day{})
	if err != nil || len(nz) != 2 || nz[0].Segments != 1 || nz[1].Week != mon23 || nz[1].Segments != 2 || nz[1].TrackedSeconds != 1200 {
		t.Fatalf("UTC+13 weeks = %+v, %v", nz, err)
	}
}

func testKimaiState(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	alice := addWorker(t, s, ctx, "alice")
	sid := SessionID("k")
	var ids []int64
	prev := ""
	for i := 0; i < 3; i++ {
		r := Record(alice, sid, i, Epoch.Add(time.Duration(i)*10*time.Minute), prev, fmt.Sprint(i))
		prev = r.OX
		mustInsert(t, s, ctx, r)
		d, _ := s.SegmentAt(ctx, sid, i)
		ids = append(ids, d.ID)
	}
	if err := s.SetSegmentsKimai(ctx, ids[:2], store.KimaiSynced, 77); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.SetSegmentsKimai(ctx, []int64{ids[2], 99999}, store.KimaiSynced, 78), store.ErrNotFound, "unknown segment id")
	wantErr(t, s.SetSegmentsKimai(ctx, ids, "lost", 1), store.ErrInvalid, "bad state")
	got, err := s.TimesheetSegments(ctx, 77)
	if err != nil || len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 || got[0].KimaiState != store.KimaiSynced || len(got[0].Minutes) != 10 {
		t.Fatalf("timesheet 77 = %d segments, %v", len(got), err)
	}
	if got, _ := s.TimesheetSegments(ctx, 78); len(got) != 0 {
		t.Fatalf("failed update booked %d segments to 78", len(got))
	}
	days, _ := s.DayTotals(ctx, alice, time.UTC, store.Day{}, store.Day{})
	if len(days) != 1 || days[0].KimaiPending != 1 || days[0].Screenshots != 3 || days[0].Verified != 3 {
		t.Fatalf("day totals = %+v", days)
	}
}

// --- Kimai queue ---------------------------------------------------------------------

func testQueueLeaseBackoff(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	id, err := s.Enqueue(ctx, store.Job{Op: "timesheet.start", Payload: json.RawMessage(`{"session":"s"}`)})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, func() error { _, err := s.Enqueue(ctx, store.Job{Op: "x", Payload: json.RawMessage(`{`)}); return err }(), store.ErrInvalid, "bad payload")
	if n, _ := s.QueueDepth(ctx); n != 1 {
		t.Fatalf("depth = %d", n)
	}
	jobs, err := s.LeaseJobs(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].Attempts != 1 || jobs[0].Lease == "" || string(jobs[0].Payload) != `{"session":"s"}` {
		t.Fatalf("lease = %+v, %v", jobs, err)
	}
	if again, _ := s.LeaseJobs(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("a leased job was handed out again: %+v", again)
	}
	next, err := s.FailJob(ctx, id, jobs[0].Lease, "kimai down", false)
	if err != nil {
		t.Fatal(err)
	}
	first := next.Sub(c.Now())
	if first <= 0 {
		t.Fatalf("first backoff %s", first)
	}
	if got, _ := s.LeaseJobs(ctx, 10, time.Minute); len(got) != 0 {
		t.Fatal("job leased before its backoff ended")
	}
	c.Advance(first)
	jobs, err = s.LeaseJobs(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 1 || jobs[0].Attempts != 2 || jobs[0].LastError != "kimai down" {
		t.Fatalf("lease after backoff = %+v, %v", jobs, err)
	}
	next, err = s.FailJob(ctx, id, jobs[0].Lease, "still down", false)
	if err != nil {
		t.Fatal(err)
	}
	if second := next.Sub(c.Now()); second <= first {
		t.Fatalf("backoff did not grow: %s then %s", first, second)
	}
	c.Advance(next.Sub(c.Now()))
	jobs, _ = s.LeaseJobs(ctx, 10, time.Minute)
	if len(jobs) != 1 {
		t.Fatalf("third lease = %+v", jobs)
	}
	wantErr(t, s.CompleteJob(ctx, id, "not-the-lease", 5), store.ErrLeaseLost, "complete with a wrong lease")
	if err := s.CompleteJob(ctx, id, jobs[0].Lease, 555); err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, id)
	if err != nil || j.State != store.JobDone || j.KimaiID != 555 || !j.DoneAt.Equal(c.Now()) || j.Attempts != 3 {
		t.Fatalf("done job = %+v, %v", j, err)
	}
	wantErr(t, s.CompleteJob(ctx, id, jobs[0].Lease, 555), store.ErrLeaseLost, "complete twice")
	if n, _ := s.QueueDepth(ctx); n != 0 {
		t.Fatalf("depth after done = %d", n)
	}

	// A permanent failure makes the job dead.
	id2, _ := s.Enqueue(ctx, store.Job{Op: "timesheet.update"})
	jobs, _ = s.LeaseJobs(ctx, 10, time.Minute)
	if len(jobs) != 1 || jobs[0].ID != id2 {
		t.Fatalf("lease = %+v", jobs)
	}
	if _, err := s.FailJob(ctx, id2, jobs[0].Lease, "400: project closed", true); err != nil {
		t.Fatal(err)
	}
	c.Advance(24 * time.Hour)
	if got, _ := s.LeaseJobs(ctx, 10, time.Minute); len(got) != 0 {
		t.Fatal("dead job leased")
	}
	if j, _ := s.Job(ctx, id2); j.State != store.JobDead || j.LastError != "400: project closed" {
		t.Fatalf("dead job = %+v", j)
	}
	_, err = s.Job(ctx, 4242)
	wantErr(t, err, store.ErrNotFound, "unknown job")
}

func testQueueLeaseExpiry(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	id, _ := s.Enqueue(ctx, store.Job{Op: "timesheet.stop"})
	a, _ := s.LeaseJobs(ctx, 1, time.Minute)
	if len(a) != 1 {
		t.Fatal("no lease")
	}
	c.Advance(time.Minute) // runner A stalls past its lease
	b, _ := s.LeaseJobs(ctx, 1, time.Minute)
	if len(b) != 1 || b[0].ID != id || b[0].Lease == a[0].Lease {
		t.Fatalf("expired lease not handed to runner B: %+v", b)
	}
	wantErr(t, s.CompleteJob(ctx, id, a[0].Lease, 1), store.ErrLeaseLost, "stale runner completes")
	_, err := s.FailJob(ctx, id, a[0].Lease, "x", false)
	wantErr(t, err, store.ErrLeaseLost, "stale runner fails")
	if err := s.CompleteJob(ctx, id, b[0].Lease, 2); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Job(ctx, id); j.State != store.JobDone || j.KimaiID != 2 {
		t.Fatalf("job = %+v", j)
	}
}

func testQueueGroupsAndKeys(t *testing.T, open Opener) {
	s, _, ctx := setup(t, open)
	start, _ := s.Enqueue(ctx, store.Job{Op: "start", Group: "s1"})
	upd, _ := s.Enqueue(ctx, store.Job{Op: "update", Group: "s1", Key: "update:s1", Payload: json.RawMessage(`{"end":1}`)})
	other, _ := s.Enqueue(ctx, store.Job{Op: "start", Group: "s2"})
	jobs, err := s.LeaseJobs(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 2 || jobs[0].ID != start || jobs[1].ID != other {
		t.Fatalf("first lease = %+v, %v; want only the heads of s1 and s2", jobs, err)
	}
	// Coalescing: a newer update replaces the pending one's payload, keeping its place.
	again, _ := s.Enqueue(ctx, store.Job{Op: "update", Group: "s1", Key: "update:s1", Payload: json.RawMessage(`{"end":2}`)})
	if again != upd {
		t.Fatalf("coalesced enqueue gave id %d, want %d", again, upd)
	}
	if n, _ := s.QueueDepth(ctx); n != 3 {
		t.Fatalf("depth = %d, want 3", n)
	}
	if err := s.CompleteJob(ctx, start, jobs[0].Lease, 10); err != nil {
		t.Fatal(err)
	}
	next, _ := s.LeaseJobs(ctx, 10, time.Minute)
	if len(next) != 1 || next[0].ID != upd || string(next[0].Payload) != `{"end":2}` {
		t.Fatalf("after the head: %+v", next)
	}
	// A payload replaced while leased must run again after the lease completes.
	if id, _ := s.Enqueue(ctx, store.Job{Op: "update", Group: "s1", Key: "update:s1", Payload: json.RawMessage(`{"end":3}`)}); id != upd {
		t.Fatalf("coalesce into a leased job gave %d", id)
	}
	if err := s.CompleteJob(ctx, upd, next[0].Lease, 10); err != nil {
		t.Fatal(err)
	}
	rerun, _ := s.LeaseJobs(ctx, 10, time.Minute)
	if len(rerun) != 1 || rerun[0].ID != upd || string(rerun[0].Payload) != `{"end":3}` {
		t.Fatalf("replaced payload did not run again: %+v", rerun)
	}
	if err := s.CompleteJob(ctx, upd, rerun[0].Lease, 10); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Job(ctx, upd); j.State != store.JobDone {
		t.Fatalf("update job = %+v", j)
	}
	// Once done, the key is free: a new update is a new job.
	if id, _ := s.Enqueue(ctx, store.Job{Op: "update", Group: "s1", Key: "update:s1"}); id == upd {
		t.Fatal("a done job was reused for a new enqueue")
	}
}

// --- reviewers -----------------------------------------------------------------------

func testReviewers(t *testing.T, open Opener) {
	s, c, ctx := setup(t, open)
	r := store.Reviewer{Username: "erin", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA"}
	if err := s.AddReviewer(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddReviewer(ctx, r), store.ErrExists, "add twice")
	wantErr(t, s.AddReviewer(ctx, store.Reviewer{Username: "x"}), store.ErrInvalid, "no hash")
	got, err := s.Reviewer(ctx, "erin")
	if err != nil || got.PasswordHash != r.PasswordHash || !got.CreatedAt.Equal(Epoch) {
		t.Fatalf("reviewer = %+v, %v", got, err)
	}
	tok := Key("token")
	if err := s.CreateWebSession(ctx, store.WebSession{TokenHash: tok, Reviewer: "erin", CSRF: "c", ExpiresAt: Epoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateWebSession(ctx, store.WebSession{TokenHash: Key("t2"), Reviewer: "ghost", ExpiresAt: Epoch.Add(time.Hour)}), store.ErrNotFound, "session for unknown reviewer")
	ws, err := s.WebSession(ctx, tok)
	if err != nil || ws.Reviewer != "erin" || ws.CSRF != "c" {
		t.Fatalf("web session = %+v, %v", ws, err)
	}
	c.Advance(time.Hour)
	_, err = s.WebSession(ctx, tok)
	wantErr(t, err, store.ErrNotFound, "expired session")
	if n, err := s.PruneWebSessions(ctx); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	tok2 := Key("token2")
	if err := s.CreateWebSession(ctx, store.WebSession{TokenHash: tok2, Reviewer: "erin", ExpiresAt: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebSession(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	_, err = s.WebSession(ctx, tok2)
	wantErr(t, err, store.ErrNotFound, "logged-out session")
	tok3 := Key("token3")
	if err := s.CreateWebSession(ctx, store.WebSession{TokenHash: tok3, Reviewer: "erin", ExpiresAt: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveReviewer(ctx, "erin"); err != nil {
		t.Fatal(err)
	}
	_, err = s.WebSession(ctx, tok3)
	wantErr(t, err, store.ErrNotFound, "session of a removed reviewer")
	wantErr(t, s.RemoveReviewer(ctx, "erin"), store.ErrNotFound, "remove twice")
	if list, err := s.Reviewers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("reviewers = %+v, %v", list, err)
	}
}
