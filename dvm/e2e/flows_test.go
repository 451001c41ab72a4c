package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/daemon"
	"pow.do/dvm/roster"
	"pow.do/dvm/store"
	"pow.do/shared/invite"
	"pow.do/shared/nip86"
	"pow.do/shared/proto"
)

// A wrap already processed, published again on another relay, is ignored; the relay that
// delivered it first refuses it because the DVM had it deleted.
func TestReplayedWrapIgnored(t *testing.T) {
	w := newWorldWith(t, worldOptions{relays: 2})
	ctx := context.Background()
	session := RandomSession()
	_, id, wrap := w.sendSegmentWrap(t, segmentNow(session, 0, ""))
	if rc := w.tracker.WaitReceipt(t, id, 20*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("first delivery: %+v", rc)
	}
	// The first relay deleted the wrap at the DVM's request and will not take it back.
	if err := Eventually(10*time.Second, func() error { return noWrapsLeft(w.relay, w.dvm) }); err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Publish(ctx, wrap); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("republishing a deleted wrap on the first relay: %v, want a refusal", err)
	}

	second := w.relays[1]
	conn, err := Connect(ctx, second.WS, w.tracker.SK)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Publish(ctx, wrap); err != nil {
		t.Fatalf("replay on the second relay: %v", err)
	}
	want := fmt.Sprintf(`powdo_dvm_wraps_replayed_total{relay=%q} 1`, second.WS)
	if err := Eventually(20*time.Second, func() error {
		if m := metricsText(t, w.d.url); !strings.Contains(m, want) {
			return errors.New("replay not counted yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	segs, err := w.d.st.SessionSegments(ctx, session)
	if err != nil || len(segs) != 1 {
		t.Fatalf("%d segments (err %v), want 1", len(segs), err)
	}
	if n := len(w.tracker.Receipts(id)); n != 1 {
		t.Fatalf("%d receipts for the replayed message, want the first one only", n)
	}
}

// A wrap dated almost two days back, published while the DVM was down, is picked up
// after the restart, though the DVM's cursor had moved past its date.
func TestBackdatedWrapAfterRestart(t *testing.T) {
	dvm, worker := NewKey(), NewKey()
	relay := StartRelay(t, RelayOptions{Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	dataDir := t.TempDir()
	addWorker(t, dataDir, worker.PK, "Alice")
	cfg := testConfig(t, dataDir, dvm, relay)
	w := &world{relay: relay, relays: []*Relay{relay}, dvm: dvm, dataDir: dataDir}
	w.d = startDaemon(t, cfg, daemon.Options{})
	w.tracker = NewTracker(t, relay, worker, dvm.PK)
	ctx := context.Background()

	// A first wrap dated now moves the cursor to now.
	s0 := segmentNow(RandomSession(), 0, "")
	p0, err := w.tracker.Prepare(s0, relay.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Upload(ctx, relay.HTTP, p0.Sealed.Ciphertext); err != nil {
		t.Fatal(err)
	}
	r0 := p0.Rumor(worker.PK)
	if err := w.tracker.Publish(ctx, craftWrap(t, craft{rumor: r0, sealSK: worker.SK, to: dvm.PK, pTag: dvm.PK, createdAt: nostr.Now()})); err != nil {
		t.Fatal(err)
	}
	w.tracker.WaitReceipt(t, r0.ID, 20*time.Second)
	var cursor time.Time
	if err := Eventually(10*time.Second, func() error {
		c, err := w.d.st.RelayCursor(ctx, relay.WS)
		if err == nil && c.Before(time.Now().Add(-time.Minute)) {
			err = fmt.Errorf("cursor %s has not reached the processed wrap", c)
		}
		cursor = c
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.d.stop(t)

	s := segmentNow(RandomSession(), 0, "")
	p, err := w.tracker.Prepare(s, relay.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Upload(ctx, relay.HTTP, p.Sealed.Ciphertext); err != nil {
		t.Fatal(err)
	}
	rumor := p.Rumor(worker.PK)
	old := craftWrap(t, craft{rumor: rumor, sealSK: worker.SK, to: dvm.PK, pTag: dvm.PK,
		createdAt: nostr.Timestamp(time.Now().Add(-47*time.Hour - 50*time.Minute).Unix())})
	if err := w.tracker.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}

	if old.CreatedAt.Time().After(cursor.Add(-47 * time.Hour)) {
		t.Fatalf("the backdated wrap (%s) is not well behind the cursor (%s)", old.CreatedAt.Time(), cursor)
	}
	w.d = startDaemon(t, cfg, daemon.Options{})
	if rc := w.tracker.WaitReceipt(t, rumor.ID, 20*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("backdated wrap: %+v", rc)
	}
}

// Blossom down: the wrap is not marked, the fetch is retried, and once the server is back
// the segment is stored exactly once.
func TestBlossomDownThenUp(t *testing.T) {
	blobs := StartRelay(t, RelayOptions{})
	dvm, worker := NewKey(), NewKey()
	blobs.Stop()
	blobs = StartRelay(t, RelayOptions{Addr: blobs.Addr, DataDir: blobs.DataDir, Allow: []string{worker.PK}})
	w := newWorldWithKeys(t, dvm, worker, worldOptions{config: func(c *daemon.Config) {
		c.Ingest.BlossomHosts = []string{blobs.Addr}
	}})
	ctx := context.Background()
	s := segmentNow(RandomSession(), 0, "")
	p, err := w.tracker.Prepare(s, blobs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Upload(ctx, blobs.HTTP, p.Sealed.Ciphertext); err != nil {
		t.Fatal(err)
	}
	blobs.Stop()
	rumor := p.Rumor(worker.PK)
	wrap, err := w.tracker.Send(ctx, rumor)
	if err != nil {
		t.Fatal(err)
	}
	if err := Eventually(20*time.Second, func() error {
		if !strings.Contains(metricsText(t, w.d.url), `powdo_dvm_ingest_retries_total{reason="fetch"}`) {
			return errors.New("no fetch retry yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if done, _ := w.d.st.WrapProcessed(ctx, wrap.ID); done {
		t.Fatal("wrap marked processed while its blob was unreachable")
	}
	if len(w.tracker.Receipts(rumor.ID)) != 0 {
		t.Fatal("a receipt went out while the blob was unreachable")
	}
	StartRelay(t, RelayOptions{Addr: blobs.Addr, DataDir: blobs.DataDir, Allow: []string{worker.PK}})
	if rc := w.tracker.WaitReceipt(t, rumor.ID, 30*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("after Blossom came back: %+v", rc)
	}
	if segs, err := w.d.st.SessionSegments(ctx, s.Session); err != nil || len(segs) != 1 {
		t.Fatalf("%d segments (err %v), want 1", len(segs), err)
	}
}

// newWorldWithKeys is newWorldWith for given keys.
func newWorldWithKeys(t *testing.T, dvm, worker Key, o worldOptions) *world {
	t.Helper()
	w := &world{dvm: dvm, dataDir: t.TempDir()}
	for range max(o.relays, 1) {
		w.relays = append(w.relays, StartRelay(t, RelayOptions{Admins: []string{dvm.PK}, Allow: append([]string{worker.PK}, o.allow...)}))
	}
	w.relay = w.relays[0]
	addWorker(t, w.dataDir, worker.PK, "Alice")
	cfg := testConfig(t, w.dataDir, dvm, w.relays...)
	if o.config != nil {
		o.config(&cfg)
	}
	w.d = startDaemon(t, cfg, o.opts)
	w.tracker = NewTracker(t, w.relay, worker, dvm.PK)
	return w
}

// recorder is a SegmentSink and SessionSink that remembers what it heard.
type recorder struct {
	mu               sync.Mutex
	started, stopped []store.Session
	segments         []store.Segment
}

func (r *recorder) SegmentAccepted(_ context.Context, s store.Segment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.segments = append(r.segments, s)
}

func (r *recorder) SessionStarted(_ context.Context, s store.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, s)
}

func (r *recorder) SessionStopped(_ context.Context, s store.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = append(r.stopped, s)
}

func (r *recorder) counts() (int, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started), len(r.segments), len(r.stopped)
}

// Session start, a segment, session stop and a catalogue request, with the hooks called
// after each commit.
func TestSessionsCatalogueAndHooks(t *testing.T) {
	rec := &recorder{}
	w := newWorldWith(t, worldOptions{opts: daemon.Options{Segments: rec, Sessions: rec}})
	ctx := context.Background()
	session := RandomSession()
	start := time.Now().UTC().Truncate(time.Second).Add(-2 * time.Minute)

	startMsg := proto.SessionStart{To: w.dvm.PK, Session: session, Project: 1, Activity: 5, Start: start, Memo: "invoices"}
	if err := startMsg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.tracker.Send(ctx, startMsg.Rumor(w.tracker.PK)); err != nil {
		t.Fatal(err)
	}
	if err := Eventually(20*time.Second, func() error {
		if a, _, _ := rec.counts(); a != 1 {
			return errors.New("no SessionStarted yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sess, err := w.d.st.Session(ctx, session)
	if err != nil || !sess.Announced || sess.Memo != "invoices" || sess.State != store.SessionOpen || rec.started[0].ID != session {
		t.Fatalf("session after start: %+v (err %v)", sess, err)
	}

	_, id := w.sendSegment(t, segmentNow(session, 0, ""))
	w.tracker.WaitReceipt(t, id, 20*time.Second)
	if err := Eventually(10*time.Second, func() error {
		if _, n, _ := rec.counts(); n != 1 {
			return errors.New("no SegmentAccepted yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := rec.segments[0]; s.ID == 0 || s.Session != session || s.Index != 0 || s.ActiveSeconds <= 0 {
		t.Fatalf("SegmentAccepted got %+v", s)
	}

	stop := proto.SessionStop{To: w.dvm.PK, Session: session, End: time.Now().UTC().Truncate(time.Second), Segments: 1}
	if _, err := w.tracker.Send(ctx, stop.Rumor(w.tracker.PK)); err != nil {
		t.Fatal(err)
	}
	if err := Eventually(20*time.Second, func() error {
		if _, _, n := rec.counts(); n != 1 {
			return errors.New("no SessionStopped yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := rec.stopped[0]; s.State != store.SessionStopped || s.DeclaredSegments != 1 {
		t.Fatalf("SessionStopped got %+v", s)
	}

	// A start for a project the worker may not book is refused and not stored.
	bad := proto.SessionStart{To: w.dvm.PK, Session: RandomSession(), Project: 42, Activity: 5, Start: start}
	badWrap, err := w.tracker.Send(ctx, bad.Rumor(w.tracker.PK))
	if err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, w, badWrap.ID)
	if _, err := w.d.st.Session(ctx, bad.Session); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused session stored: %v", err)
	}

	req := proto.CatalogueRequest{To: w.dvm.PK}
	if _, err := w.tracker.Send(ctx, req.Rumor(w.tracker.PK)); err != nil {
		t.Fatal(err)
	}
	if !w.tracker.WaitFor(20*time.Second, func() bool { return len(w.tracker.Catalogues()) > 0 }) {
		t.Fatal("no catalogue")
	}
	c := w.tracker.Catalogues()[0]
	if c.WorkerName != "Alice" || len(c.Projects) != len(testProjects) || c.Projects[0].Name != "Website" || c.Policy != proto.DefaultPolicy() {
		t.Fatalf("catalogue %+v", c)
	}
}

func waitProcessed(t *testing.T, w *world, wrapID string) {
	t.Helper()
	if err := Eventually(20*time.Second, func() error {
		ok, err := w.d.st.WrapProcessed(context.Background(), wrapID)
		if err == nil && !ok {
			err = errors.New("not processed yet")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// Onboarding: invite → the tracker claims it on the relay → join request → roster, relay
// quota and catalogue; the same invite cannot be used twice, nor an invite the DVM never
// issued.
func TestInviteAndJoin(t *testing.T) {
	thief := NewKey()
	w := newWorldWith(t, worldOptions{allow: []string{thief.PK}})
	ctx := context.Background()
	created, err := w.d.d.Roster().CreateInvite(ctx, roster.InviteRequest{Name: "Bob", KimaiUserID: 7, Quota: 2, Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The tracker reads the link it was given.
	link, err := invite.Parse(created.Link.String())
	if err != nil {
		t.Fatal(err)
	}
	if link.DVM != w.dvm.PK || link.Relays[0] != w.relay.WS || link.Blossoms[0] != w.relay.HTTP || link.Name != "Bob" {
		t.Fatalf("link %s", link.Redacted())
	}
	bob := NewKey()
	if err := (&nip86.Client{SecretKey: link.Secret}).ClaimInvite(ctx, link.Relays[0], bob.PK); err != nil {
		t.Fatalf("claim invite: %v", err)
	}
	tb := NewTracker(t, w.relay, bob, w.dvm.PK)
	proof, err := proto.NewInviteProof(link.Secret, w.dvm.PK, bob.PK)
	if err != nil {
		t.Fatal(err)
	}
	join := proto.JoinRequest{To: w.dvm.PK, Proof: proof, AppVersion: "0.1.0", Host: "laptop"}
	if err := join.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Send(ctx, join.Rumor(bob.PK)); err != nil {
		t.Fatal(err)
	}
	if !tb.WaitFor(20*time.Second, func() bool { return len(tb.Catalogues()) > 0 }) {
		t.Fatal("no catalogue after joining")
	}
	if c := tb.Catalogues()[0]; c.WorkerName != "Bob" || len(c.Projects) == 0 {
		t.Fatalf("catalogue %+v", c)
	}
	wk, err := w.d.st.Worker(ctx, bob.PK)
	if err != nil || wk.Name != "Bob" || wk.KimaiUserID != 7 {
		t.Fatalf("roster entry %+v (err %v)", wk, err)
	}
	inv, err := w.d.st.Invite(ctx, created.Invite.Pubkey)
	if err != nil || inv.ConsumedBy != bob.PK {
		t.Fatalf("invite %+v (err %v)", inv, err)
	}
	if left := w.relay.Server().Access().QuotaLeft(bob.PK); left != 2 {
		t.Fatalf("relay invite quota for the new worker: %d, want 2", left)
	}

	// Bob can now deliver work.
	tr := &world{relay: w.relay, dvm: w.dvm, d: w.d, tracker: tb}
	_, id := tr.sendSegment(t, segmentNow(RandomSession(), 0, ""))
	if rc := tb.WaitReceipt(t, id, 20*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("new worker's segment: %+v", rc)
	}

	// Someone holding the used invite secret cannot join with it.
	thiefT := NewTracker(t, w.relay, thief, w.dvm.PK)
	proof2, _ := proto.NewInviteProof(link.Secret, w.dvm.PK, thief.PK)
	stolen := proto.JoinRequest{To: w.dvm.PK, Proof: proof2, AppVersion: "0.1.0"}
	wrap, err := thiefT.Send(ctx, stolen.Rumor(thief.PK))
	if err != nil {
		t.Fatal(err)
	}
	// An invite the DVM never issued does not work either.
	rogue := NewKey()
	proof3, _ := proto.NewInviteProof(rogue.SK, w.dvm.PK, thief.PK)
	forged := proto.JoinRequest{To: w.dvm.PK, Proof: proof3, AppVersion: "0.1.0"}
	wrap2, err := thiefT.Send(ctx, forged.Rumor(thief.PK))
	if err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, &world{d: w.d}, wrap.ID)
	waitProcessed(t, &world{d: w.d}, wrap2.ID)
	if _, err := w.d.st.Worker(ctx, thief.PK); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("thief on the roster: %v", err)
	}
	if len(thiefT.Catalogues()) != 0 {
		t.Fatal("the thief got a catalogue")
	}
	if m := metricsText(t, w.d.url); !strings.Contains(m, `powdo_dvm_wraps_handled_total{kind="7705",reason="join",status="rejected"} 2`) {
		t.Fatal("the two refused joins are not counted")
	}

	// Removing Bob takes him off the roster and the relay.
	res, err := w.d.d.Roster().Remove(ctx, bob.PK)
	if err != nil || len(res.RelayErrors) != 0 {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	if w.relay.Server().Access().IsAllowed(bob.PK) {
		t.Fatal("removed worker still allowed on the relay")
	}
	if wk, _ := w.d.st.Worker(ctx, bob.PK); wk.RemovedAt.IsZero() {
		t.Fatal("removed worker still active on the roster")
	}
}

// gatedProxy forwards GETs to a Blossom server but holds each answer until released.
type gatedProxy struct {
	target  string
	arrived chan struct{}
	release chan struct{}
}

func (g *gatedProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.arrived <- struct{}{}
	<-g.release
	resp, err := http.Get(g.target + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// A shutdown while a bundle is being fetched lets that ingest finish: it is stored, its
// receipt goes out and the wrap is marked, before the daemon exits.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	g := &gatedProxy{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	srv := httptest.NewServer(g)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	w := newWorldWith(t, worldOptions{config: func(c *daemon.Config) { c.Ingest.BlossomHosts = []string{host} }})
	g.target = w.relay.HTTP
	ctx := context.Background()
	s := segmentNow(RandomSession(), 0, "")
	p, err := w.tracker.Prepare(s, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Upload(ctx, w.relay.HTTP, p.Sealed.Ciphertext); err != nil {
		t.Fatal(err)
	}
	rumor := p.Rumor(w.tracker.PK)
	wrap, err := w.tracker.Send(ctx, rumor)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.arrived: // the DVM is fetching the bundle
	case <-time.After(20 * time.Second):
		t.Fatal("the DVM did not fetch the bundle")
	}
	w.d.cancel()
	w.d.cancel = nil
	close(g.release)
	select {
	case err := <-w.d.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	defer w.d.st.Close()
	if rc := w.tracker.WaitReceipt(t, rumor.ID, 10*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("receipt %+v", rc)
	}
	if ok, err := w.d.st.WrapProcessed(ctx, wrap.ID); err != nil || !ok {
		t.Fatalf("wrap not marked processed at shutdown (%v)", err)
	}
}
