// Package diarytest fills a DVM store the way production does: it builds real segment bundles
// (shared/bundle), encrypts them (shared/seal), serves the ciphertext from a blob server on
// 127.0.0.1, gift-wraps real kind-15 rumors from worker keys and hands each wrap to the real
// ingest.Processor, which unwraps, downloads, verifies, decrypts, stores and answers with a
// gift-wrapped receipt. The only stand-in is the relay: published events are collected in
// memory, and every receipt is unwrapped and must say "accepted".
//
// It serves the work diary's tests (here and in cmd/powdo-dvm), benchmarks and the
// browser test's server.
package diarytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/inbox"
	"pow.do/dvm/ingest"
	"pow.do/dvm/store"
	"pow.do/shared/blossom"
	"pow.do/shared/bundle"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

// Catalogue ids every seeded worker may book to.
const (
	ProjectWebsite  = 12
	ProjectMobile   = 14
	ActivityDev     = 5
	ActivityMeeting = 6
)

// Worker is a seeded worker and its key.
type Worker struct {
	SK, Pub, Name string
}

// Env is an ingest pipeline on 127.0.0.1 writing into a store.
type Env struct {
	Store  store.Store
	DVMSK  string
	DVMPub string
	// Clock, if set, is moved to each segment's end plus a short delivery delay before the
	// segment is sent, so that received times look like real deliveries. It should be the
	// clock the store and the now of Start read.
	Clock *Clock

	srv   *http.Server
	ln    net.Listener
	base  string
	mu    sync.Mutex
	blobs map[string][]byte
	pub   *collector
	proc  *ingest.Processor
	now   func() time.Time
}

// Start runs the blob server and the processor. now is the ingest clock: segments must end
// before now (plus the ingest skew) and start within ingest's max age of it.
func Start(st store.Store, dvmSK string, now func() time.Time) (*Env, error) {
	pub, err := proto.PublicKey(dvmSK)
	if err != nil {
		return nil, fmt.Errorf("seed: DVM key: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("seed: blob server: %w", err)
	}
	e := &Env{Store: st, DVMSK: dvmSK, DVMPub: pub, ln: ln, base: "http://" + ln.Addr().String(),
		blobs: map[string][]byte{}, pub: &collector{}, now: now}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serveBlob), ReadHeaderTimeout: 10 * time.Second}
	go e.srv.Serve(ln)

	quiet := slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError}))
	e.proc = &ingest.Processor{
		SecretKey: dvmSK,
		Store:     st,
		Opener:    &inbox.Opener{SecretKey: dvmSK, Roster: st},
		Fetcher:   &ingest.Fetcher{Client: blossom.New(e.base, "", blossom.WithLogger(quiet)), Timeout: 30 * time.Second},
		Publisher: e.pub,
		Catalogue: catalogue{},
		Policy:    ingest.DefaultPolicy(),
		Log:       quiet,
		Now:       now,
	}
	if err := e.proc.Init(); err != nil {
		e.Close()
		return nil, fmt.Errorf("seed: %w", err)
	}
	return e, nil
}

// Close stops the blob server.
func (e *Env) Close() {
	e.srv.Close()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (e *Env) serveBlob(w http.ResponseWriter, r *http.Request) {
	x := strings.TrimPrefix(r.URL.Path, "/")
	e.mu.Lock()
	b, ok := e.blobs[x]
	e.mu.Unlock()
	if !ok || r.Method != http.MethodGet {
		w.Header().Set("X-Reason", "no such blob")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.Write(b)
}

// collector stands in for the relays: it keeps what the processor publishes.
type collector struct {
	mu     sync.Mutex
	events []nostr.Event
}

func (c *collector) Publish(_ context.Context, ev nostr.Event, _ ...string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	return []string{"ws://127.0.0.1/collector"}, nil
}

// take removes and returns everything published so far.
func (c *collector) take() []nostr.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// catalogue lets every worker book to the seeded projects.
type catalogue struct{}

func (catalogue) CatalogueFor(_ context.Context, worker string) (proto.Catalogue, error) {
	web := int64(ProjectWebsite)
	return proto.Catalogue{
		To:         worker,
		UpdatedAt:  time.Now().UTC().Truncate(time.Second),
		Projects:   []proto.Project{{ID: ProjectWebsite, Name: "Website", Customer: "ACME"}, {ID: ProjectMobile, Name: "Mobile", Customer: "ACME"}},
		Activities: []proto.Activity{{ID: ActivityDev, Name: "Development", Project: nil}, {ID: ActivityMeeting, Name: "Meetings", Project: &web}},
		Policy:     proto.DefaultPolicy(),
	}, nil
}

// AddWorker creates a worker key and puts the worker on the roster.
func (e *Env) AddWorker(ctx context.Context, name string) (Worker, error) {
	sk := nostr.GeneratePrivateKey()
	pub, err := nostr.GetPublicKey(sk)
	if err != nil {
		return Worker{}, fmt.Errorf("seed: worker key: %w", err)
	}
	w := Worker{SK: sk, Pub: pub, Name: name}
	if err := e.Store.AddWorker(ctx, store.Worker{Pubkey: pub, Name: name, JoinedAt: e.now()}); err != nil {
		return Worker{}, fmt.Errorf("seed: add worker %s: %w", name, err)
	}
	return w, nil
}

// Spec is one segment to send.
type Spec struct {
	Session           string
	Index             int
	Start, End        time.Time
	Project, Activity int64
	Memo              string
	Prev              string          // previous segment's ox; "" for index 0
	Act               bundle.Activity // activity.json
	Shots             []bundle.Screenshot
	Deleted           []bundle.Deleted
	Skipped           []bundle.Skipped
}

// Sent is a segment the DVM accepted.
type Sent struct {
	Spec
	OX      string
	X       string
	RumorID string
	ZIP     []byte
}

// Build writes the bundle of s.
func Build(w Worker, s Spec) (bundle.Built, error) {
	m := bundle.Manifest{
		Worker: w.Pub, Session: s.Session, Index: s.Index, Start: s.Start.UTC(), End: s.End.UTC(),
		Project: s.Project, Activity: s.Activity, Memo: s.Memo, AppVersion: "0.1.0",
		Policy: bundle.Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		Prev:   s.Prev, Deleted: s.Deleted, Skipped: s.Skipped,
	}
	b, err := bundle.Build(m, s.Act, s.Shots)
	if err != nil {
		return bundle.Built{}, fmt.Errorf("seed: build %s/%d: %w", s.Session, s.Index, err)
	}
	return b, nil
}

// Send builds, encrypts, "uploads" and announces one segment and runs it through ingest.
// It fails unless the DVM answers with an accepted receipt.
func (e *Env) Send(ctx context.Context, w Worker, s Spec) (Sent, error) {
	b, err := Build(w, s)
	if err != nil {
		return Sent{}, err
	}
	return e.SendBuilt(ctx, w, s, b)
}

// SendBuilt announces an already built bundle.
func (e *Env) SendBuilt(ctx context.Context, w Worker, s Spec, b bundle.Built) (Sent, error) {
	if e.Clock != nil {
		e.Clock.Set(s.End.Add(time.Duration(20+s.Index%40) * time.Second))
	}
	sealed, err := seal.Seal(b.ZIP)
	if err != nil {
		return Sent{}, fmt.Errorf("seed: encrypt: %w", err)
	}
	e.mu.Lock()
	e.blobs[sealed.X] = sealed.Ciphertext
	e.mu.Unlock()
	sf := proto.SegmentFile{
		To: e.DVMPub, URL: e.base + "/" + sealed.X, Key: sealed.Key, Nonce: sealed.Nonce,
		X: sealed.X, OX: sealed.OX, Size: int64(len(sealed.Ciphertext)),
		Session: s.Session, Index: s.Index, Start: s.Start.UTC(), End: s.End.UTC(),
	}
	if err := sf.Validate(); err != nil {
		return Sent{}, fmt.Errorf("seed: kind 15: %w", err)
	}
	rumor := sf.Rumor(w.Pub)
	wrap, err := giftwrap.Wrap(rumor, w.SK, e.DVMPub)
	if err != nil {
		return Sent{}, fmt.Errorf("seed: wrap: %w", err)
	}
	res := e.proc.Handle(ctx, inbox.Wrap{Event: wrap, Relay: "ws://127.0.0.1/collector"}, []string{"ws://127.0.0.1/collector"},
		ingest.Attempt{N: 1, First: e.now()})
	if !res.Processed {
		return Sent{}, fmt.Errorf("seed: segment %s/%d not processed (retry after %s)", s.Session, s.Index, res.RetryAfter)
	}
	if err := e.expectAccepted(w, rumor.ID); err != nil {
		return Sent{}, fmt.Errorf("seed: segment %s/%d: %w", s.Session, s.Index, err)
	}
	return Sent{Spec: s, OX: b.OX, X: sealed.X, RumorID: rumor.ID, ZIP: b.ZIP}, nil
}

// expectAccepted finds the receipt for rumorID among the published events.
func (e *Env) expectAccepted(w Worker, rumorID string) error {
	for _, ev := range e.pub.take() {
		if ev.Kind != proto.KindGiftWrap {
			continue // deletion requests
		}
		r, sender, err := giftwrap.Unwrap(ev, w.SK)
		if err != nil || sender != e.DVMPub || r.Kind != proto.KindReceipt {
			continue
		}
		rc, err := proto.ParseReceipt(r)
		if err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
		if rc.Answers != rumorID {
			continue
		}
		if rc.Status != proto.StatusAccepted {
			return fmt.Errorf("receipt %s: %s", rc.Status, rc.Reason)
		}
		return nil
	}
	return errors.New("no receipt from the DVM")
}

// SessionPlan describes a run of consecutive segments of one session.
type SessionPlan struct {
	Session  string    // 32 hex; "" = derived from Seed
	Start    time.Time // first segment start (aligned to 10 minutes)
	Count    int       // segments built
	Project  int64
	Activity int64
	Memo     string
	Seed     uint64
	// Per-index variations.
	Lost    map[int]bool // built (so the chain moves on) but never delivered: a chain gap
	Idle    map[int]bool // no input and no active time
	Deleted map[int]bool // one of two screenshots deleted during review
	Skipped map[int]bool // the second screenshot skipped (excluded app)
	BadPrev map[int]bool // prev does not match: a broken chain
	NoShots map[int]bool // no screenshot at all
}

// Run builds every segment of the plan and sends those not Lost, in index order.
func (e *Env) Run(ctx context.Context, w Worker, p SessionPlan) ([]Sent, error) {
	r := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	if p.Session == "" {
		p.Session = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	}
	if p.Project == 0 {
		p.Project = ProjectWebsite
	}
	if p.Activity == 0 {
		p.Activity = ActivityDev
	}
	var out []Sent
	prev := ""
	for i := 0; i < p.Count; i++ {
		start := p.Start.Add(time.Duration(i) * 10 * time.Minute)
		s := MakeSpec(r, p, i, start, prev)
		b, err := Build(w, s)
		if err != nil {
			return out, err
		}
		prev = b.OX
		if p.Lost[i] {
			continue
		}
		sent, err := e.SendBuilt(ctx, w, s, b)
		if err != nil {
			return out, err
		}
		out = append(out, sent)
	}
	return out, nil
}

var apps = []struct{ app, title string }{
	{"code", "diary.go — pow.do"}, {"firefox", "Work diary — Mozilla Firefox"},
	{"slack", "#dev — ACME"}, {"terminal", "go test -race ./..."}, {"figma", "Dashboard mock-up"},
}

var urls = []string{"https://pkg.go.dev/net/http", "https://github.com/acme/site/pull/42", "https://kimai.example/en/timesheet/"}

// MakeSpec makes segment i of plan p starting at start: activity, per-minute counts and
// screenshots, deterministic for a given random source.
func MakeSpec(r *rand.Rand, p SessionPlan, i int, start time.Time, prev string) Spec {
	start = start.UTC()
	end := start.Add(10 * time.Minute)
	s := Spec{Session: p.Session, Index: i, Start: start, End: end, Project: p.Project, Activity: p.Activity,
		Memo: p.Memo, Prev: prev}
	if i == 0 {
		s.Prev = ""
	} else if p.BadPrev[i] {
		s.Prev = fmt.Sprintf("%064x", r.Uint64()|1)
	}
	act := bundle.Activity{Source: bundle.SourceActivityWatch}
	idle := p.Idle[i]
	active := 0
	for m := 0; m < 10; m++ {
		t := start.Add(time.Duration(m) * time.Minute)
		mi := bundle.Minute{T: t}
		if !idle && (m+i)%7 != 6 { // one quiet minute in seven
			mi.Keys, mi.Clicks, mi.Moves, mi.Active = int64(20+r.IntN(80)), int64(r.IntN(15)), int64(50+r.IntN(400)), true
			active += 60
		}
		act.Minutes = append(act.Minutes, mi)
	}
	act.ActiveSeconds = float64(active)
	if !idle {
		// Window events: two or three apps sharing the segment, oldest first.
		a := apps[(i+int(p.Seed))%len(apps)]
		b := apps[(i+int(p.Seed)+1)%len(apps)]
		act.Window = []bundle.Event{
			{Timestamp: start, Duration: 360, Data: map[string]any{"app": a.app, "title": a.title}},
			{Timestamp: start.Add(6 * time.Minute), Duration: 240, Data: map[string]any{"app": b.app, "title": b.title}},
		}
		act.Web = []bundle.Event{{Timestamp: start.Add(7 * time.Minute), Duration: 90, Data: map[string]any{"url": urls[i%len(urls)], "title": "page", "audible": false, "incognito": false}}}
		act.AFK = []bundle.Event{{Timestamp: start, Duration: 600, Data: map[string]any{"status": "not-afk"}}}
	} else {
		act.AFK = []bundle.Event{{Timestamp: start, Duration: 600, Data: map[string]any{"status": "afk"}}}
	}
	s.Act = act
	if p.NoShots[i] {
		return s
	}
	t1 := start.Add(time.Duration(60+r.IntN(200)) * time.Second)
	t2 := start.Add(time.Duration(320+r.IntN(250)) * time.Second)
	s.Shots = []bundle.Screenshot{{Name: bundle.ScreenshotName(1), TakenAt: t1, JPEG: JPEG(640, 360, i, p.Seed)}}
	switch {
	case p.Deleted[i]:
		s.Deleted = []bundle.Deleted{{Name: bundle.ScreenshotName(2), TakenAt: t2, DeletedAt: end.Add(time.Minute)}}
	case p.Skipped[i]:
		s.Skipped = []bundle.Skipped{{At: t2, Reason: "excluded app: keepassxc"}}
	default:
		s.Shots = append(s.Shots, bundle.Screenshot{Name: bundle.ScreenshotName(2), TakenAt: t2, JPEG: JPEG(640, 360, i+100, p.Seed)})
	}
	return s
}

// jpegs caches drawn screens: encoding dominates seeding under the race detector.
var jpegs sync.Map

// JPEG draws a small synthetic "screen": a coloured background with window-like bars. There
// are 16 variants per size (n mod 16); seed shifts the colours.
func JPEG(w, h, n int, seed uint64) []byte {
	n %= 16
	key := [4]uint64{uint64(w), uint64(h), uint64(n), seed % 3}
	if b, ok := jpegs.Load(key); ok {
		return b.([]byte)
	}
	seed %= 3
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := [4]uint8{uint8(40 + (n*37)%160), uint8(60 + (n*53+int(seed))%150), uint8(90 + (n*71)%140), 255}
	bar := [4]uint8{30, 30, 34, 255}
	text := [4]uint8{235, 235, 240, 255}
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		lineEnd := w/3 + (y*7+n*13)%(w/2)
		for x := 0; x < w; x++ {
			c := &bg
			switch {
			case y < h/12:
				c = &bar // title bar
			case x > w/10 && x < w*9/10 && y > h/6 && y < h*5/6 && (y/12)%2 == 0 && x < lineEnd:
				c = &text // "text" lines
			}
			copy(row[4*x:4*x+4], c[:])
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
		panic(fmt.Sprintf("seed: encode JPEG: %v", err)) // cannot fail on an in-memory RGBA
	}
	jpegs.Store(key, buf.Bytes())
	return buf.Bytes()
}
