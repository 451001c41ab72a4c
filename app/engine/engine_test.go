package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/capture"
	"pow.do/app/engineapi"
	"pow.do/app/join"
	"pow.do/app/keys"
	"pow.do/app/outbox"
	"pow.do/app/publisher"
	"pow.do/shared/bundle"
	"pow.do/shared/clocktest"
	"pow.do/shared/invite"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

const passphrase = "correct horse battery"

type clock = clocktest.Clock

// desk is a fake desktop: one display whose pixels change per capture, encoded for real.
type desk struct {
	mu        sync.Mutex
	now       func() time.Time
	window    capture.Window
	lastInput time.Time
	counts    capture.InputCounts
	n         int
	opts      []capture.EncodeOptions
}

func (d *desk) ActiveWindow() (capture.Window, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.window, nil
}

func (d *desk) IdleTime() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.now().Sub(d.lastInput), nil
}

func (d *desk) Screen(o capture.EncodeOptions) capture.Screen {
	d.mu.Lock()
	d.opts = append(d.opts, o)
	d.mu.Unlock()
	return screenFunc(func(ctx context.Context) ([]capture.Shot, error) {
		d.mu.Lock()
		d.n++
		n := d.n
		d.mu.Unlock()
		img := image.NewRGBA(image.Rect(0, 0, 320, 200))
		for y := 0; y < 200; y++ {
			for x := 0; x < 320; x++ {
				img.SetRGBA(x, y, color.RGBA{uint8(x + n*40), uint8(y), uint8(n * 20), 255})
			}
		}
		jpg, size, err := capture.Encode(img, o)
		if err != nil {
			return nil, err
		}
		return []capture.Shot{{Width: size.X, Height: size.Y, JPEG: jpg, TakenAt: d.now()}}, nil
	})
}

type screenFunc func(ctx context.Context) ([]capture.Shot, error)

func (f screenFunc) Capture(ctx context.Context) ([]capture.Shot, error) { return f(ctx) }

func (d *desk) input() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastInput = d.now()
	d.counts.Keys += 2
	d.counts.Clicks++
}

func (d *desk) Totals() capture.InputCounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts
}
func (d *desk) Method() string { return "fake" }
func (d *desk) Close() error   { return nil }

func at(h, m, s int) time.Time { return time.Date(2026, 11, 21, h, m, s, 0, time.UTC) }

// rig is an engine on a data directory that has joined a DVM (whose relay and Blossom
// addresses lead nowhere: the outbox fills and nothing leaves), driven step by step.
type rig struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	clock  *clock
	desk   *desk
	e      *Engine
	dvm    string
	worker string
	cfg    Config
}

func newRig(t *testing.T, start time.Time, mutate func(*Config)) *rig {
	t.Helper()
	dir := t.TempDir()
	c := clocktest.New(start)
	d := &desk{now: c.Now, lastInput: start, window: capture.Window{ID: 3, App: "code", Title: "main.go", Class: "code"}}
	r := &rig{t: t, ctx: context.Background(), dir: dir, clock: c, desk: d}

	ks, err := keys.Open(dir, keys.Options{LogN: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.worker, err = ks.Generate(passphrase); err != nil {
		t.Fatal(err)
	}
	if r.dvm, err = nostr.GetPublicKey(nostr.GeneratePrivateKey()); err != nil {
		t.Fatal(err)
	}
	fp, err := invite.Fingerprint(r.dvm, r.worker)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 9 of the loopback: every send fails fast and is retried.
	if err := join.SaveConfig(dir, join.Config{V: 1, DVM: r.dvm, Worker: r.worker, Relays: []string{"ws://127.0.0.1:9"},
		Blossoms: []string{"http://127.0.0.1:9"}, Fingerprint: fp, Name: "Alice", JoinedAt: start}); err != nil {
		t.Fatal(err)
	}
	website := 12
	cat := engineapi.Catalogue{UpdatedAt: start, WorkerName: "Alice",
		Projects:   []engineapi.Project{{ID: 12, Name: "Website", Customer: "ACME"}, {ID: 13, Name: "Shop"}},
		Activities: []engineapi.Activity{{ID: 5, Name: "Development", Project: &website}, {ID: 6, Name: "Meetings"}},
		Policy:     engineapi.Policy{SegmentSeconds: 60, Screenshots: 2, ReviewSeconds: 10, IdleSeconds: 60, JPEGQuality: 70, MaxWidth: 320},
	}
	if err := writeJSON(dir, CatalogueName, cat); err != nil {
		t.Fatal(err)
	}
	r.cfg = Config{DataDir: dir, Now: c.Now, Desktop: d, Input: d, Manual: true, KeyLogN: 4,
		Publisher: func(pc *publisher.Config) { pc.MinBackoff, pc.MaxBackoff = time.Hour, time.Hour }}
	if mutate != nil {
		mutate(&r.cfg)
	}
	r.open()
	return r
}

func (r *rig) open() {
	r.t.Helper()
	e, err := New(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.e = e
	r.t.Cleanup(func() { _ = e.Close() })
}

func (r *rig) unlock() {
	r.t.Helper()
	if err := r.e.Unlock(r.ctx, passphrase); err != nil {
		r.t.Fatal(err)
	}
}

// run steps the engine second by second up to until; active says when the worker types.
func (r *rig) run(until time.Time, active func(time.Time) bool) {
	r.t.Helper()
	for now := r.clock.Now().Add(time.Second); !now.After(until); now = now.Add(time.Second) {
		r.clock.Set(now)
		if active == nil || active(now) {
			r.desk.input()
		}
		if err := r.e.Step(r.ctx); err != nil {
			r.t.Fatalf("step at %s: %v", now, err)
		}
	}
}

// segments opens every segment in the outbox the way the DVM would.
func (r *rig) segments() []*bundle.Bundle {
	r.t.Helper()
	items, err := r.e.Outbox().List(r.ctx, false)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*bundle.Bundle
	for _, it := range items {
		if it.Kind != outbox.KindSegment {
			continue
		}
		f, err := it.Open()
		if err != nil {
			r.t.Fatal(err)
		}
		ct, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			r.t.Fatal(err)
		}
		plain, err := seal.Open(ct, it.Key[:], it.Nonce[:], it.X, it.OX)
		if err != nil {
			r.t.Fatal(err)
		}
		b, err := bundle.OpenBytes(plain, bundle.DefaultLimits())
		if err != nil {
			r.t.Fatal(err)
		}
		if b.Manifest.Index != it.Index || b.Manifest.Session != it.Session {
			r.t.Fatalf("outbox item %s/%d holds bundle %s/%d", it.Session, it.Index, b.Manifest.Session, b.Manifest.Index)
		}
		out = append(out, b)
	}
	return out
}

func (r *rig) messages() []nostr.Event {
	r.t.Helper()
	items, err := r.e.Outbox().List(r.ctx, false)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []nostr.Event
	for _, it := range items {
		if it.Kind == outbox.KindMessage && it.Rumor != nil {
			out = append(out, *it.Rumor)
		}
	}
	return out
}

func tag(ev nostr.Event, name string) string {
	if t := ev.Tags.Find(name); len(t) > 1 {
		return t[1]
	}
	return ""
}

func always(time.Time) bool { return true }

func wantProblem(t *testing.T, err error, code engineapi.ProblemCode) {
	t.Helper()
	var p *engineapi.Problem
	if !errors.As(err, &p) || p.Code != code {
		t.Fatalf("error %v, want a problem %s", err, code)
	}
}

func TestSessionThroughTheOutbox(t *testing.T) {
	r := newRig(t, at(10, 3, 20), nil)
	r.unlock()
	events := make(chan engineapi.Event, 256)
	defer r.e.Subscribe(func(ev engineapi.Event) {
		select {
		case events <- ev:
		default:
		}
	})()

	wantProblem(t, r.e.Start(r.ctx, 99, 5, ""), engineapi.ProblemInvalidInput)
	wantProblem(t, r.e.Start(r.ctx, 13, 5, ""), engineapi.ProblemInvalidInput) // activity 5 belongs to project 12
	if err := r.e.Start(r.ctx, 12, 5, "landing page"); err != nil {
		t.Fatal(err)
	}
	// The UI hears about it.
	deadline := time.After(10 * time.Second)
	for running := false; !running; {
		select {
		case ev := <-events:
			running = ev.Kind == engineapi.EventState && ev.State.Running
		case <-deadline:
			t.Fatal("no state event with the session running")
		}
	}
	st, err := r.e.State(r.ctx)
	if err != nil || !st.Running || st.Session.ProjectName != "Website" || st.Segment == nil || !st.Segment.End.Equal(at(10, 4, 0)) {
		t.Fatalf("state after start %+v, %v", st, err)
	}
	r.run(at(10, 5, 30), always)
	st, _ = r.e.State(r.ctx)
	if st.ElapsedSeconds != 130 || st.Segment.Index != 2 || st.Source != engineapi.SourceBuiltin || st.Activity.Keys == 0 {
		t.Fatalf("state while tracking %+v", st)
	}
	if err := r.e.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 5, 45), always)

	bundles := r.segments()
	if len(bundles) != 3 {
		t.Fatalf("%d segments in the outbox, want 3", len(bundles))
	}
	want := [][2]time.Time{{at(10, 3, 20), at(10, 4, 0)}, {at(10, 4, 0), at(10, 5, 0)}, {at(10, 5, 0), at(10, 5, 30)}}
	var prev string
	for i, b := range bundles {
		m := b.Manifest
		if !m.Start.Equal(want[i][0]) || !m.End.Equal(want[i][1]) || m.Prev != prev || m.Worker != r.worker ||
			m.Project != 12 || m.Activity != 5 || m.Memo != "landing page" || m.Policy.JPEGQuality != 70 || m.Policy.SegmentSeconds != 60 {
			t.Fatalf("bundle %d manifest %+v (want prev %q)", i, m, prev)
		}
		it, _ := r.e.Outbox().Segment(r.ctx, m.Session, m.Index)
		prev = it.OX
	}
	msgs := r.messages()
	if len(msgs) != 2 || msgs[0].Kind != proto.KindSessionStart || msgs[1].Kind != proto.KindSessionStop {
		t.Fatalf("messages %+v", msgs)
	}
	if tag(msgs[0], "project") != "12" || tag(msgs[0], "start") != strconv.FormatInt(at(10, 3, 20).Unix(), 10) || msgs[0].Content != "landing page" {
		t.Fatalf("session start %+v", msgs[0])
	}
	if tag(msgs[1], "segments") != "3" || tag(msgs[1], "end") != strconv.FormatInt(at(10, 5, 30).Unix(), 10) {
		t.Fatalf("session stop %+v", msgs[1])
	}
	for _, ev := range msgs {
		if ev.PubKey != r.worker || tag(ev, "p") != r.dvm {
			t.Fatalf("message from %s to %s", ev.PubKey, tag(ev, "p"))
		}
	}
	// The screenshots were encoded with the policy's quality and width.
	r.desk.mu.Lock()
	for _, o := range r.desk.opts {
		if o.Quality != 70 || o.MaxWidth != 320 {
			t.Errorf("encoded with %+v", o)
		}
	}
	r.desk.mu.Unlock()

	today, err := r.e.Today(r.ctx)
	if err != nil || len(today) != 3 {
		t.Fatalf("today: %d segments, %v", len(today), err)
	}
	for _, v := range today {
		if v.State != engineapi.SegmentQueued || v.ProjectName != "Website" || (v.Screenshots > 0 && !strings.HasPrefix(v.Thumbnail, "data:image/jpeg;base64,")) {
			t.Fatalf("timeline entry %+v", v)
		}
	}
}

// A segment closed without input after it is held (idle time may still reach back over
// it), and the timeline says so rather than calling it reviewing.
func TestHeldSegmentIsShownAsHeld(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	r.unlock()
	if err := r.e.Start(r.ctx, 12, 6, ""); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 0, 59), always)
	r.run(at(10, 1, 5), func(time.Time) bool { return false })
	today, _ := r.e.Today(r.ctx)
	if len(today) != 1 || today[0].State != engineapi.SegmentHeld || today[0].Reason != engineapi.HeldReason || today[0].ReviewUntil != nil {
		t.Fatalf("timeline %+v, want the segment held", today)
	}
	// Input after the segment ends the hold: now it is in review.
	r.run(at(10, 1, 7), always)
	today, _ = r.e.Today(r.ctx)
	if len(today) != 1 || today[0].State != engineapi.SegmentReviewing || today[0].Reason != "" || today[0].ReviewUntil == nil {
		t.Fatalf("timeline %+v, want the segment in review after input", today)
	}
}

func TestReviewThroughTheEngine(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	r.unlock()
	if err := r.e.Start(r.ctx, 12, 6, ""); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 1, 2), always)
	today, _ := r.e.Today(r.ctx)
	if len(today) != 1 || today[0].State != engineapi.SegmentReviewing || today[0].ReviewUntil == nil || today[0].Screenshots != 2 {
		t.Fatalf("timeline %+v", today)
	}
	shots, err := r.e.Screenshots(r.ctx, today[0].ID)
	if err != nil || len(shots) != 2 || !strings.HasPrefix(shots[0].DataURL, "data:image/jpeg;base64,") || shots[0].Width != 320 {
		t.Fatalf("screenshots %+v, %v", shots, err)
	}
	if err := r.e.DeleteScreenshot(r.ctx, today[0].ID, shots[1].Name); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, r.e.DeleteScreenshot(r.ctx, today[0].ID, shots[1].Name), engineapi.ProblemInvalidInput)
	wantProblem(t, r.e.DeleteScreenshot(r.ctx, "nope", shots[0].Name), engineapi.ProblemInvalidInput)
	r.run(at(10, 1, 15), always)
	bundles := r.segments()
	if len(bundles) != 1 || len(bundles[0].Manifest.Deleted) != 1 || bundles[0].Manifest.Deleted[0].Name != shots[1].Name {
		t.Fatalf("sealed manifest %+v", bundles[0].Manifest)
	}
	if _, err := r.e.Screenshots(r.ctx, today[0].ID); err == nil {
		t.Fatal("screenshots of a sealed segment are still served")
	}
	today, _ = r.e.Today(r.ctx)
	if today[0].Screenshots != 1 || today[0].Deleted != 1 || today[0].State != engineapi.SegmentQueued {
		t.Fatalf("timeline after sealing %+v", today[0])
	}
}

// The tracker goes away without stopping (crash, power loss); the next start resumes the
// session and closes the interrupted segment at its last evidence.
func TestCrashResume(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	r.unlock()
	if err := r.e.Start(r.ctx, 12, 5, ""); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 0, 40), always)
	if err := r.e.Close(); err != nil {
		t.Fatal(err)
	}
	r.clock.Set(at(10, 6, 5))
	r.open()
	st, err := r.e.State(r.ctx)
	if err != nil || !st.Running || !st.Locked || st.Segment == nil || st.Segment.Index != 1 || !st.Segment.Start.Equal(at(10, 6, 5)) {
		t.Fatalf("state after restart %+v, %v", st, err)
	}
	// Locked: nothing is sealed until the worker unlocks.
	r.run(at(10, 6, 30), always)
	if n := len(r.segments()); n != 0 {
		t.Fatalf("%d segments sealed while the key is locked", n)
	}
	r.unlock()
	if err := r.e.Stop(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 6, 45), always)
	bundles := r.segments()
	if len(bundles) != 2 {
		t.Fatalf("%d segments", len(bundles))
	}
	m := bundles[0].Manifest
	if m.End.After(at(10, 0, 40)) || !m.End.After(at(10, 0, 14)) || len(m.Skipped)+len(m.Files)-1 != 2 {
		t.Fatalf("interrupted segment ends %s (last evidence by 10:00:40), skipped %+v", m.End, m.Skipped)
	}
	if bundles[1].Manifest.Prev == "" || !bundles[1].Manifest.Start.Equal(at(10, 6, 5)) {
		t.Fatalf("resumed segment %+v", bundles[1].Manifest)
	}
}

func TestIdlePromptAndDefaultAnswer(t *testing.T) {
	away := func(now time.Time) bool { return now.Before(at(10, 0, 30)) || !now.Before(at(10, 3, 0)) }

	r := newRig(t, at(10, 0, 0), nil)
	r.unlock()
	if err := r.e.Start(r.ctx, 12, 5, ""); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 3, 5), away)
	st, _ := r.e.State(r.ctx)
	if st.Idle == nil || !st.Idle.Since.Equal(at(10, 0, 29)) || st.Idle.IdleSeconds != 151 {
		t.Fatalf("idle prompt %+v", st.Idle)
	}
	wantProblem(t, r.e.IdleDecision(r.ctx, "maybe"), engineapi.ProblemInvalidInput)
	if err := r.e.IdleDecision(r.ctx, engineapi.IdleStop); err != nil {
		t.Fatal(err)
	}
	st, _ = r.e.State(r.ctx)
	if st.Running || st.Idle != nil {
		t.Fatalf("after stop decision %+v", st)
	}
	msgs := r.messages()
	if len(msgs) != 2 || tag(msgs[1], "end") != strconv.FormatInt(at(10, 0, 29).Unix(), 10) {
		t.Fatalf("stop message %+v", msgs)
	}

	// Headless: the configured default answers by itself.
	h := newRig(t, at(10, 0, 0), func(c *Config) { c.IdleDefault = engineapi.IdleDiscard })
	h.unlock()
	if err := h.e.Start(h.ctx, 12, 5, ""); err != nil {
		t.Fatal(err)
	}
	h.run(at(10, 3, 30), away)
	st, _ = h.e.State(h.ctx)
	if st.Idle != nil || !st.Running || st.ElapsedSeconds != 29+30 {
		t.Fatalf("after the default answer: idle %+v running %v elapsed %d", st.Idle, st.Running, st.ElapsedSeconds)
	}
}

func TestNotJoinedAndLocked(t *testing.T) {
	dir := t.TempDir()
	c := clocktest.New(at(10, 0, 0))
	e, err := New(Config{DataDir: dir, Now: c.Now, NoDesktop: true, Manual: true, KeyLogN: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st, err := e.State(context.Background())
	if err != nil || st.Onboarded || st.Locked || st.Running {
		t.Fatalf("fresh state %+v, %v", st, err)
	}
	wantProblem(t, e.Start(context.Background(), 1, 1, ""), engineapi.ProblemNotReady)
	wantProblem(t, e.Unlock(context.Background(), passphrase), engineapi.ProblemNotReady)
	_, err = e.Join(context.Background(), "https://example.com/not-an-invite", passphrase)
	wantProblem(t, err, engineapi.ProblemInviteInvalid)
	_, err = e.Join(context.Background(), "powdo://join?dvm=x", "short")
	wantProblem(t, err, engineapi.ProblemInvalidInput)

	r := newRig(t, at(10, 0, 0), nil)
	wantProblem(t, r.e.Unlock(r.ctx, "wrong passphrase!"), engineapi.ProblemWrongPassphrase)
	if _, err := r.e.ExportKey(r.ctx, passphrase); err == nil {
		t.Fatal("exported a locked key")
	}
	r.unlock()
	ncs, err := r.e.ExportKey(r.ctx, "another passphrase")
	if err != nil || !strings.HasPrefix(ncs, "ncryptsec1") {
		t.Fatalf("export %q, %v", ncs, err)
	}
	s, err := r.e.Settings(r.ctx)
	if err != nil || !strings.HasPrefix(s.DVMNpub, "npub1") || s.Fingerprint == "" || s.Relays[0] != "ws://127.0.0.1:9" || s.DataDir != r.dir {
		t.Fatalf("settings %+v, %v", s, err)
	}
	s.ExcludedApps = []string{"keepassxc", " "}
	s.ActivityWatchURL = ""
	got, err := r.e.SaveSettings(r.ctx, s)
	if err != nil || len(got.ExcludedApps) != 1 {
		t.Fatalf("save settings %+v, %v", got, err)
	}
	s.JPEGQuality = 5
	_, err = r.e.SaveSettings(r.ctx, s)
	wantProblem(t, err, engineapi.ProblemInvalidInput)
	if back, err := loadSettings(r.dir); err != nil || back.ExcludedApps[0] != "keepassxc" || back.JPEGQuality != 80 {
		t.Fatalf("stored settings %+v, %v", back, err)
	}
}

func TestExcludedAppFromSettings(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	r.unlock()
	s, _ := r.e.Settings(r.ctx)
	s.ExcludedApps = []string{"Code"}
	if _, err := r.e.SaveSettings(r.ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := r.e.Start(r.ctx, 12, 5, ""); err != nil {
		t.Fatal(err)
	}
	r.run(at(10, 1, 15), always)
	bundles := r.segments()
	if len(bundles) != 1 || len(bundles[0].Manifest.Files) != 1 || len(bundles[0].Manifest.Skipped) != 2 ||
		bundles[0].Manifest.Skipped[0].Reason != "excluded app: code" {
		t.Fatalf("manifest %+v", bundles[0].Manifest)
	}
}

func TestStateFilesArePrivate(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	for _, name := range []string{StateDBName, CatalogueName, "key.ncryptsec"} {
		fi, err := osStat(filepath.Join(r.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", name, fi.Mode())
		}
	}
}

var osStat = os.Stat

func TestOneTrackerPerDataDirectory(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	if !Busy(r.dir) {
		t.Fatal("the data directory is not marked busy while an engine runs")
	}
	if _, err := New(r.cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second engine on the same directory: %v", err)
	}
	if err := r.e.Close(); err != nil {
		t.Fatal(err)
	}
	if Busy(r.dir) {
		t.Fatal("still busy after Close")
	}
}

// The outbox nears its quota: the worker is warned; once it refuses a segment, no more
// screenshots are taken (each skip says why) and nothing is dropped.
func TestDiskQuota(t *testing.T) {
	r := newRig(t, at(10, 0, 0), nil)
	if err := writeJSON(r.dir, SettingsName, engineapi.Settings{JPEGQuality: 80, DiskQuotaMB: 1, ActivityWatchURL: ""}); err != nil {
		t.Fatal(err)
	}
	if err := r.e.Close(); err != nil {
		t.Fatal(err)
	}
	r.open()
	r.unlock()
	filler := make([]byte, 1040000)
	if _, err := rand.Read(filler); err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(filler)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.e.Outbox().AddSegment(r.ctx, outbox.Segment{Session: strings.Repeat("0", 32), Index: 0, Start: at(9, 0, 0), End: at(9, 10, 0), Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	st, _ := r.e.State(r.ctx)
	if st.Error == nil || st.Error.Code != engineapi.ProblemDiskQuota {
		t.Fatalf("no quota warning: %+v", st.Error)
	}
	if err := r.e.Start(r.ctx, 12, 5, ""); err != nil {
		t.Fatal(err)
	}
	var stepErrs int
	for now := at(10, 0, 1); !now.After(at(10, 2, 30)); now = now.Add(time.Second) {
		r.clock.Set(now)
		r.desk.input()
		if err := r.e.Step(r.ctx); err != nil {
			if !errors.Is(err, outbox.ErrQuotaExceeded) {
				t.Fatalf("step: %v", err)
			}
			stepErrs++
		}
	}
	if stepErrs == 0 {
		t.Fatal("the outbox took a segment beyond its quota")
	}
	st, _ = r.e.State(r.ctx)
	if st.Error == nil || st.Error.Code != engineapi.ProblemDiskQuota {
		t.Fatalf("state error %+v", st.Error)
	}
	today, _ := r.e.Today(r.ctx)
	if len(today) < 2 || today[0].State != engineapi.SegmentReviewing {
		t.Fatalf("finished segments %+v, want them kept in review", today)
	}
	id, _ := strconv.ParseInt(today[len(today)-1].ID, 10, 64)
	skips, err := r.e.st.Skips(r.ctx, id)
	if err != nil || len(skips) == 0 || !strings.HasPrefix(skips[0].Reason, "disk quota reached") {
		t.Fatalf("skips of the last segment %+v, %v", skips, err)
	}
}
