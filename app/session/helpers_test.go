package session

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	mrand "math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/app/capture"
	"pow.do/shared/bundle"
	"pow.do/shared/clocktest"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

type clock = clocktest.Clock

// desk is the fake desktop: the focused window, the last input and input counts.
type desk struct {
	mu        sync.Mutex
	now       func() time.Time
	window    capture.Window
	lastInput time.Time
	counts    capture.InputCounts
	shots     int
	fail      error
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

// input records a key press now.
func (d *desk) input() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastInput = d.now()
	d.counts.Keys++
	d.counts.Moves += 3
}

func (d *desk) Totals() capture.InputCounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts
}
func (d *desk) Method() string { return "fake" }
func (d *desk) Close() error   { return nil }

// Capture makes a real small JPEG per call, different each time.
func (d *desk) Capture(ctx context.Context) ([]capture.Shot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	d.shots++
	img := image.NewRGBA(image.Rect(0, 0, 64, 40))
	for i := range img.Pix {
		img.Pix[i] = byte(d.shots * 37)
	}
	img.Set(d.shots%64, 3, color.RGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		return nil, err
	}
	return []capture.Shot{{Width: 64, Height: 40, JPEG: buf.Bytes(), TakenAt: d.now()}}, nil
}

// shooter goes through capture.Capture, so exclusions work as in the engine.
type shooter struct {
	d        *desk
	excluded []string
}

func (s shooter) Shoot(ctx context.Context, _ proto.Policy) (capture.Result, error) {
	return capture.Capture(ctx, s.d, s.d, s.excluded)
}

// delivered opens every delivered segment the way the DVM does: decrypt, check hashes,
// read the ZIP safely.
type delivered struct {
	mu      sync.Mutex
	bundles []*bundle.Bundle
	oxs     []string
	fail    error
}

func (o *delivered) Deliver(ctx context.Context, d Delivery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	plain, err := seal.Open(d.Sealed.Ciphertext, d.Sealed.Key[:], d.Sealed.Nonce[:], d.Sealed.X, d.Sealed.OX)
	if err != nil {
		return err
	}
	b, err := bundle.OpenBytes(plain, bundle.DefaultLimits())
	if err != nil {
		return err
	}
	if d.Segment.OX != d.Sealed.OX || d.Segment.Index != b.Manifest.Index {
		return errors.New("delivery row disagrees with its bundle")
	}
	o.bundles = append(o.bundles, b)
	o.oxs = append(o.oxs, d.Sealed.OX)
	return nil
}

func (o *delivered) list() ([]*bundle.Bundle, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*bundle.Bundle(nil), o.bundles...), append([]string(nil), o.oxs...)
}

const worker = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

// rig is one scheduler on a real SQLite file with a fake desktop and the real built-in
// activity watcher.
type rig struct {
	t       *testing.T
	ctx     context.Context
	clock   *clock
	desk    *desk
	builtin *activitywatch.Builtin
	out     *delivered
	policy  proto.Policy
	path    string
	store   *Store
	s       *Scheduler
	changes int
	mu      sync.Mutex
	noIdle  bool
	// stepErrs counts Step errors instead of failing the test when set.
	stepErrs *int
}

func testPolicy() proto.Policy {
	p := proto.DefaultPolicy()
	p.SegmentSeconds = 60
	p.Screenshots = 2
	p.ReviewSeconds = 10
	p.IdleSeconds = 60
	return p
}

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func newRig(t *testing.T, start time.Time) *rig {
	t.Helper()
	c := clocktest.New(start)
	d := &desk{now: c.Now, lastInput: start, window: capture.Window{ID: 7, App: "code", Title: "main.go", Class: "code"}}
	r := &rig{t: t, ctx: context.Background(), clock: c, desk: d, out: &delivered{}, policy: testPolicy(),
		path: filepath.Join(t.TempDir(), "state.db")}
	r.open()
	return r
}

// open (re)opens the store and the scheduler, as a restart of the tracker would.
func (r *rig) open() {
	r.t.Helper()
	st, err := OpenStore(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = st
	r.builtin = activitywatch.NewBuiltin(r.desk, r.desk, activitywatch.BuiltinConfig{Now: r.clock.Now})
	deps := Deps{
		Now:        r.clock.Now,
		Rand:       mrand.New(mrand.NewPCG(1, 2)),
		Shooter:    shooter{d: r.desk, excluded: []string{"keepassxc"}},
		Collector:  &activitywatch.Collector{Builtin: r.builtin},
		Policy:     func() proto.Policy { return r.policy },
		Worker:     func() string { return worker },
		AppVersion: "0.1.0-test",
		Deliver:    r.out.Deliver,
		Changed: func() {
			r.mu.Lock()
			r.changes++
			r.mu.Unlock()
		},
	}
	if !r.noIdle {
		deps.Idle = r.desk
	}
	s, err := Open(r.ctx, st, deps)
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = s
	r.t.Cleanup(func() { _ = st.Close() })
}

// crash drops the scheduler without stopping anything, like kill -9.
func (r *rig) crash() {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.s = nil
}

// run advances the clock second by second to until, polling the built-in watcher and
// stepping the scheduler; active says whether the worker types in that second.
func (r *rig) run(until time.Time, active func(now time.Time) bool) {
	r.t.Helper()
	for now := r.clock.Now().Add(time.Second); !now.After(until); now = now.Add(time.Second) {
		r.clock.Set(now)
		if active == nil || active(now) {
			r.desk.input()
		}
		_ = r.builtin.Poll()
		if err := r.s.Step(r.ctx); err != nil {
			if r.stepErrs == nil {
				r.t.Fatalf("step at %s: %v", now, err)
			}
			*r.stepErrs++
		}
	}
}

func always(time.Time) bool { return true }

func (r *rig) start() SessionRow {
	r.t.Helper()
	sess, err := r.s.Start(r.ctx, StartParams{Project: 12, ProjectName: "Website", Activity: 5, ActivityName: "Development", Memo: "tests"})
	if err != nil {
		r.t.Fatal(err)
	}
	return sess
}

func (r *rig) segments(sessionID string) []SegmentRow {
	r.t.Helper()
	segs, err := r.store.Segments(r.ctx, sessionID)
	if err != nil {
		r.t.Fatal(err)
	}
	return segs
}

// checkChain checks that the delivered bundles of one session form the hash chain.
func checkChain(t *testing.T, bundles []*bundle.Bundle, oxs []string) {
	t.Helper()
	for i, b := range bundles {
		if b.Manifest.Index != i {
			t.Fatalf("bundle %d has index %d", i, b.Manifest.Index)
		}
		want := ""
		if i > 0 {
			want = oxs[i-1]
		}
		if b.Manifest.Prev != want {
			t.Fatalf("bundle %d prev = %q, want %q", i, b.Manifest.Prev, want)
		}
		if i > 0 && b.Manifest.Start.Before(bundles[i-1].Manifest.End) {
			t.Fatalf("bundle %d starts %s before bundle %d ends %s", i, b.Manifest.Start, i-1, bundles[i-1].Manifest.End)
		}
	}
}

func at(h, m, s int) time.Time { return time.Date(2026, 11, 21, h, m, s, 0, time.UTC) }
