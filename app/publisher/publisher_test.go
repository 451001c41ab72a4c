package publisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pow.do/app/engineapi"
	"pow.do/app/outbox"
	"pow.do/app/publisher/fakedvm"
	"pow.do/shared/blossom"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
)

// TestDeliversToDVM: segments of two sessions and a session start go through a real
// relay to the fake DVM, which downloads, verifies and accepts them; each item ends
// accepted with its ciphertext removed, mirrors are listed as fallbacks, catalogues
// (pushed and requested) reach OnCatalogue.
func TestDeliversToDVM(t *testing.T) {
	e := setup(t, envOpts{mirror: true})
	sessA, sessB := newSession(), newSession()
	zipsA := e.addSegments(e.ob, sessA, 0, 3)
	zipsB := e.addSegments(e.ob, sessB, 0, 1)

	var catMu sync.Mutex
	var cats []proto.Catalogue
	p, sl := e.start(func(c *Config) {
		c.OnCatalogue = func(cat proto.Catalogue) { catMu.Lock(); cats = append(cats, cat); catMu.Unlock() }
	})
	start := proto.SessionStart{Session: sessA, Project: 12, Activity: 5, Start: time.Now().UTC().Truncate(time.Second), Memo: "fix the login"}
	if _, err := p.SendSessionStart(e.ctx, start); err != nil {
		t.Fatal(err)
	}

	var paths []string
	for i := range zipsA {
		it := e.waitItem(e.ob, sessA, i, "accepted", func(it outbox.Item) bool { return it.State == outbox.StateAccepted })
		paths = append(paths, it.Path)
	}
	it := e.waitItem(e.ob, sessB, 0, "accepted", func(it outbox.Item) bool { return it.State == outbox.StateAccepted })
	paths = append(paths, it.Path)
	for _, path := range paths {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ciphertext %s still on disk after acceptance (%v)", path, err)
		}
	}
	if left, _ := os.ReadDir(e.ob.Dir()); len(left) != 0 {
		t.Fatalf("outbox dir not empty: %d files", len(left))
	}

	// What the DVM holds is exactly what was sealed.
	for i, zip := range append(zipsA, zipsB...) {
		sess, idx := sessA, i
		if i == len(zipsA) {
			sess, idx = sessB, 0
		}
		st, ok := e.dvm.Stored(sess, idx)
		if !ok {
			t.Fatalf("DVM lacks %s/%d", sess[:8], idx)
		}
		if e.dvm.Copies(sess, idx) != 1 {
			t.Fatalf("DVM holds %d copies of %s/%d", e.dvm.Copies(sess, idx), sess[:8], idx)
		}
		if st.Sender != e.worker.pk || st.File.OX != sha(zip) {
			t.Fatalf("DVM copy of %d differs from the sealed bundle", idx)
		}
		if want := e.relay.HTTP() + "/" + st.File.X; st.File.URL != want {
			t.Fatalf("primary URL %s, want %s", st.File.URL, want)
		}
		if len(st.File.Fallbacks) != 1 || st.File.Fallbacks[0] != e.mirror.HTTP()+"/"+st.File.X {
			t.Fatalf("fallbacks %v, want the mirror", st.File.Fallbacks)
		}
		// The mirror really holds the blob.
		var buf bytes.Buffer
		if err := blossom.New(e.mirror.HTTP(), "").Get(e.ctx, st.File.X, proto.MaxBlobBytes, &buf); err != nil {
			t.Fatalf("mirror lacks blob %d: %v", idx, err)
		}
	}
	// Live arrivals of one session come in index order.
	last := -1
	for _, a := range e.dvm.Arrivals() {
		if a.Session == sessA && a.Live {
			if a.Index < last {
				t.Fatalf("segment %d arrived after %d", a.Index, last)
			}
			last = a.Index
		}
	}

	// The session start went the same way.
	waitFor(t, "session start at the DVM", func() bool {
		msgs, _ := e.dvm.Messages()
		for _, m := range msgs {
			if s, ok := m.(proto.SessionStart); ok && s.Session == sessA && s.Memo == "fix the login" && s.Project == 12 {
				return true
			}
		}
		return false
	})

	// A catalogue pushed by the DVM, then one asked for.
	cat := proto.Catalogue{To: e.worker.pk, UpdatedAt: time.Now().UTC().Truncate(time.Second), WorkerName: "Alice",
		Projects: []proto.Project{{ID: 12, Name: "Website", Customer: "ACME"}}, Policy: proto.DefaultPolicy()}
	if err := cat.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := e.dvm.SendTo(e.ctx, cat.Rumor(e.dvm.PK), e.worker.pk); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pushed catalogue", func() bool { catMu.Lock(); defer catMu.Unlock(); return len(cats) == 1 })
	cat2 := cat
	cat2.WorkerName = "Alice B."
	e.dvm.SetCatalogue(&cat2)
	if _, err := p.RequestCatalogue(e.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "requested catalogue", func() bool { catMu.Lock(); defer catMu.Unlock(); return len(cats) == 2 })
	catMu.Lock()
	if cats[0].WorkerName != "Alice" || cats[1].WorkerName != "Alice B." || cats[0].Projects[0].Name != "Website" {
		t.Fatalf("catalogues %+v", cats)
	}
	catMu.Unlock()

	st := p.Status()
	if st.Problem != nil || st.DVMLastSeen.IsZero() || st.Relays[0].Status != engineapi.EndpointConnected || st.Blossoms[1].Status != engineapi.EndpointConnected {
		t.Fatalf("status after a clean run: %+v", st)
	}
	if _, ok := sl.find(func(s Status) bool { return !s.DVMLastSeen.IsZero() }); !ok {
		t.Fatal("OnStatus never reported the DVM")
	}
}

// TestRejections: a permanent rejection keeps the DVM's reason and stops; a temporary
// one is retried with the same rumor and then accepted.
func TestRejections(t *testing.T) {
	const permReason = "manifest worker differs from the sender (test)"
	e := setup(t, envOpts{decide: func(sf proto.SegmentFile, seen int) fakedvm.Verdict {
		switch {
		case sf.Index == 0:
			return fakedvm.Verdict{Status: proto.StatusRejected, Reason: permReason, Permanent: true, Send: true}
		case sf.Index == 1 && seen == 0:
			return fakedvm.Verdict{Status: proto.StatusRejected, Reason: "Kimai unreachable, try later (test)", Send: true}
		}
		return fakedvm.Verdict{Status: proto.StatusAccepted, Send: true}
	}})
	sess := newSession()
	e.addSegments(e.ob, sess, 0, 2)
	e.start(nil)

	rej := e.waitItem(e.ob, sess, 0, "rejected", func(it outbox.Item) bool { return it.State == outbox.StateRejected })
	if rej.Reason != permReason || !rej.Permanent || !rej.Done() {
		t.Fatalf("rejected item: reason %q permanent %v", rej.Reason, rej.Permanent)
	}
	if _, err := os.Stat(rej.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a permanently rejected ciphertext was kept")
	}
	acc := e.waitItem(e.ob, sess, 1, "accepted after a temporary rejection", func(it outbox.Item) bool { return it.State == outbox.StateAccepted })
	if acc.Sends != 2 || e.dvm.Seen(sess, 1) != 2 || e.dvm.Rumors(sess, 1) != 1 || e.dvm.Copies(sess, 1) != 1 {
		t.Fatalf("retry: sends %d, DVM saw %d messages, %d rumor ids, %d copies", acc.Sends, e.dvm.Seen(sess, 1), e.dvm.Rumors(sess, 1), e.dvm.Copies(sess, 1))
	}
	// The permanent one was not retried.
	if e.dvm.Seen(sess, 0) != 1 {
		t.Fatalf("permanently rejected segment sent %d times", e.dvm.Seen(sess, 0))
	}
}

// TestRelayDownThenUp: with the relay (and its Blossom store) down, segments wait in the
// outbox and the status says what is wrong; once it is back they go out in order.
func TestRelayDownThenUp(t *testing.T) {
	e := setup(t, envOpts{})
	e.relay.Stop()
	sess := newSession()
	e.addSegments(e.ob, sess, 0, 4)
	_, sl := e.start(nil)

	st, ok := waitStatus(t, sl, func(s Status) bool {
		return s.Problem != nil && s.Problem.Code == engineapi.ProblemRelayUnreachable
	})
	if !ok {
		t.Fatal("no relay-unreachable status")
	}
	if !strings.Contains(st.Relays[0].Error, "relay unreachable — check your network") || !strings.Contains(st.Relays[0].Error, "retrying in") ||
		st.Problem.Message != st.Relays[0].Error || st.Problem.Action == "" {
		t.Fatalf("relay error does not say what to do: %q / %+v", st.Relays[0].Error, st.Problem)
	}
	t.Logf("shown while down: %s — %s", st.Problem.Message, st.Problem.Action)
	first := e.waitItem(e.ob, sess, 0, "failed at least twice", func(it outbox.Item) bool { return it.Attempts >= 2 })
	if first.State != outbox.StateQueued || first.LastError == "" {
		t.Fatalf("while down: %+v", first)
	}
	for i := 1; i < 4; i++ {
		if it, _ := e.ob.Segment(e.ctx, sess, i); it.Attempts != 0 || it.State != outbox.StateQueued {
			t.Fatalf("segment %d was tried before segment 0 got through: %+v", i, it)
		}
	}

	e.relay.Restart(e.ctx)
	var sent []time.Time
	for i := 0; i < 4; i++ {
		it := e.waitItem(e.ob, sess, i, "accepted", func(it outbox.Item) bool { return it.State == outbox.StateAccepted })
		sent = append(sent, it.SentAt)
		if e.dvm.Copies(sess, i) != 1 {
			t.Fatalf("segment %d: %d copies", i, e.dvm.Copies(sess, i))
		}
	}
	for i := 1; i < len(sent); i++ {
		if sent[i].Before(sent[i-1]) {
			t.Fatalf("segment %d sent before segment %d", i, i-1)
		}
	}
	last := -1
	for _, a := range e.dvm.Arrivals() {
		if a.Live {
			if a.Index < last {
				t.Fatalf("DVM got segment %d after %d", a.Index, last)
			}
			last = a.Index
		}
	}
	waitStatus(t, sl, func(s Status) bool { return s.Problem == nil && s.Relays[0].Status == engineapi.EndpointConnected })
}

func waitStatus(t *testing.T, sl *statusLog, match func(Status) bool) (Status, bool) {
	t.Helper()
	var st Status
	var ok bool
	waitFor(t, "status", func() bool { st, ok = sl.find(match); return ok })
	return st, ok
}

// TestKeyNotAllowed: a worker the relay does not know gets a status that says to ask
// for a new invite, and its segment stays queued.
func TestKeyNotAllowed(t *testing.T) {
	e := setup(t, envOpts{workerBlocked: true})
	sess := newSession()
	e.addSegments(e.ob, sess, 0, 1)
	_, sl := e.start(nil)
	st, _ := waitStatus(t, sl, func(s Status) bool {
		return s.Problem != nil && s.Problem.Code == engineapi.ProblemKeyNotAllowed
	})
	if !strings.Contains(st.Problem.Action, "new invite") {
		t.Fatalf("problem does not say what to do: %+v", st.Problem)
	}
	t.Logf("shown: %s — %s", st.Problem.Message, st.Problem.Action)
	waitStatus(t, sl, func(s Status) bool {
		return strings.Contains(s.Relays[0].Error, "this key is not allowed on the relay — ask your employer for a new invite")
	})
	it := e.waitItem(e.ob, sess, 0, "failed", func(it outbox.Item) bool { return it.Attempts >= 1 })
	if it.State != outbox.StateQueued || it.Sends != 0 {
		t.Fatalf("a refused segment moved on: %+v", it)
	}
	if e.dvm.Seen(sess, 0) != 0 {
		t.Fatal("the DVM got a segment the relay should have refused")
	}
}

// TestForgedReceiptIgnored: a receipt wrapped by anyone but the DVM changes nothing.
func TestForgedReceiptIgnored(t *testing.T) {
	e := setup(t, envOpts{decide: func(sf proto.SegmentFile, seen int) fakedvm.Verdict {
		return fakedvm.Verdict{Status: proto.StatusAccepted, Send: false} // the DVM stays silent
	}})
	sess := newSession()
	e.addSegments(e.ob, sess, 0, 1)
	e.start(nil)
	it := e.waitItem(e.ob, sess, 0, "sent", func(it outbox.Item) bool { return it.State == outbox.StateSent })
	waitFor(t, "DVM got it", func() bool { return e.dvm.Seen(sess, 0) == 1 })

	// A stranger seals a receipt for our rumor; the relay carries it (wraps are
	// anonymous and addressed to the worker), so the tracker must refuse it itself.
	stranger := newKey()
	r := proto.Receipt{To: e.worker.pk, Answers: it.RumorID, Session: sess, Index: 0, Status: proto.StatusAccepted}
	wrap, err := giftwrap.Wrap(r.Rumor(stranger.pk), stranger.sk, e.worker.pk)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishRaw(e, e.dvm.SK, wrap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "forged wrap processed", func() bool { seen, _ := e.ob.SeenWrap(e.ctx, wrap.ID); return seen })
	if got, _ := e.ob.Segment(e.ctx, sess, 0); got.State != outbox.StateSent {
		t.Fatalf("forged receipt changed the item to %s", got.State)
	}
}

// TestKill9BetweenUploadAndReceipt: the publisher runs in a child process that is killed
// (SIGKILL) after the DVM has the segment but before any receipt reached the tracker.
// On restart the publisher resends the same rumor; the DVM answers duplicate and ends
// with exactly one copy.
func TestKill9BetweenUploadAndReceipt(t *testing.T) {
	e := setup(t, envOpts{decide: func(sf proto.SegmentFile, seen int) fakedvm.Verdict {
		if seen == 0 {
			// Stored, but the receipt is lost: the tracker dies before it would arrive.
			return fakedvm.Verdict{Status: proto.StatusAccepted, Send: false}
		}
		return fakedvm.Verdict{Status: proto.StatusDuplicate, Send: true}
	}})
	sess := newSession()
	zips := e.addSegments(e.ob, sess, 0, 2)
	e.ob.Close()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(),
		childEnv+"=1", "POWDO_CHILD_DATA="+e.dataDir, "POWDO_CHILD_SK="+e.worker.sk, "POWDO_CHILD_DVM="+e.dvm.PK,
		"POWDO_CHILD_RELAY="+e.relay.WS(), "POWDO_CHILD_BLOSSOM="+e.relay.HTTP())
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	if err := e.dvm.Wait(ctx, func(d *fakedvm.DVM) bool { return d.Seen(sess, 0) == 1 && d.Seen(sess, 1) == 1 }); err != nil {
		child.Process.Kill()
		<-exited
		t.Fatalf("%v; child output:\n%s", err, out.String())
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("the child exited cleanly; it should have been killed")
	}

	ob := e.openOutbox()
	for i := 0; i < 2; i++ {
		it, err := ob.Segment(e.ctx, sess, i)
		if err != nil {
			t.Fatal(err)
		}
		if it.State != outbox.StateSent || it.RumorID == "" {
			t.Fatalf("after kill -9 segment %d is %s; want sent (uploaded and published, no receipt)", i, it.State)
		}
	}
	e.ob = ob
	e.start(func(c *Config) { c.ReceiptTimeout = 500 * time.Millisecond })
	for i := 0; i < 2; i++ {
		it := e.waitItem(ob, sess, i, "delivered", func(it outbox.Item) bool { return it.State == outbox.StateDuplicate })
		if _, err := os.Stat(it.Path); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("ciphertext kept after the duplicate receipt")
		}
		if c, r := e.dvm.Copies(sess, i), e.dvm.Rumors(sess, i); c != 1 || r != 1 {
			t.Fatalf("segment %d: the DVM holds %d copies under %d rumor ids; want exactly one", i, c, r)
		}
		st, _ := e.dvm.Stored(sess, i)
		if st.File.OX != sha(zips[i]) {
			t.Fatalf("segment %d: the DVM's copy differs from the sealed bundle", i)
		}
	}
}

const childEnv = "POWDO_PUBLISHER_TEST_CHILD"

// childMain runs a publisher over an existing outbox until it is killed.
func childMain() int {
	ob, err := outbox.Open(os.Getenv("POWDO_CHILD_DATA"), outbox.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, err := New(Config{Outbox: ob, SecretKey: os.Getenv("POWDO_CHILD_SK"), DVM: os.Getenv("POWDO_CHILD_DVM"),
		Relays: []string{os.Getenv("POWDO_CHILD_RELAY")}, Blossoms: []string{os.Getenv("POWDO_CHILD_BLOSSOM")},
		ReceiptTimeout: time.Hour, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p.Run(context.Background())
	return 0
}

// TestStoredReceiptAfterRestart: a receipt that reaches the relay while the tracker is
// off is picked up on the next start although its wrap is backdated (the listener asks
// since cursor − 2 days), and a wrap processed before the restart is not processed again
// (durable processed-wrap set).
func TestStoredReceiptAfterRestart(t *testing.T) {
	e := setup(t, envOpts{decide: func(sf proto.SegmentFile, seen int) fakedvm.Verdict {
		return fakedvm.Verdict{Status: proto.StatusAccepted, Send: false} // answered by hand below
	}})
	sess := newSession()
	e.addSegments(e.ob, sess, 0, 1)

	var mu sync.Mutex
	cats := 0
	onCat := func(c *Config) {
		c.OnCatalogue = func(proto.Catalogue) { mu.Lock(); cats++; mu.Unlock() }
	}
	ctx1, stop1 := context.WithCancel(e.ctx)
	p1, err := New(Config{Outbox: e.ob, SecretKey: e.worker.sk, DVM: e.dvm.PK, Relays: []string{e.relay.WS()},
		Blossoms: e.blossoms(), ReceiptTimeout: time.Hour, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		Logger: testLog(t), OnCatalogue: func(proto.Catalogue) { mu.Lock(); cats++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	done1 := make(chan struct{})
	go func() { p1.Run(ctx1); close(done1) }()
	it := e.waitItem(e.ob, sess, 0, "sent", func(it outbox.Item) bool { return it.State == outbox.StateSent })
	cat := proto.Catalogue{To: e.worker.pk, UpdatedAt: time.Now().UTC().Truncate(time.Second), Policy: proto.DefaultPolicy()}
	if err := e.dvm.SendTo(e.ctx, cat.Rumor(e.dvm.PK), e.worker.pk); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "catalogue", func() bool { mu.Lock(); defer mu.Unlock(); return cats == 1 })
	stop1()
	<-done1

	// While the tracker is off, the DVM answers. Its wrap's created_at is up to two
	// days in the past.
	r := proto.Receipt{To: e.worker.pk, Answers: it.RumorID, Session: sess, Index: 0, Status: proto.StatusAccepted}
	if err := e.dvm.SendTo(e.ctx, r.Rumor(e.dvm.PK), e.worker.pk); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.ob.Segment(e.ctx, sess, 0); got.State != outbox.StateSent {
		t.Fatalf("state changed while the tracker was off: %s", got.State)
	}
	_, sl := e.start(onCat)
	got := e.waitItem(e.ob, sess, 0, "accepted", func(it outbox.Item) bool { return it.State == outbox.StateAccepted })
	// Connected is reported after EOSE: every stored wrap has been through the listener.
	waitStatus(t, sl, func(s Status) bool { return s.Relays[0].Status == engineapi.EndpointConnected })
	if got.Sends != 1 {
		t.Fatalf("sent %d times; the stored receipt should have settled it", got.Sends)
	}
	if e.dvm.Seen(sess, 0) != 1 {
		t.Fatalf("the DVM saw the segment %d times", e.dvm.Seen(sess, 0))
	}
	mu.Lock()
	defer mu.Unlock()
	if cats != 1 {
		t.Fatalf("the catalogue wrap was processed %d times across a restart", cats)
	}
}
