// Package e2e holds the DVM's end-to-end tests and the kit they (and the inbox and ingest
// package tests) share: a real powdo-relay (in-process from pow.do/relay/server, or the
// built binary as a child process), a "tracker" that plays the worker with the shared
// code (bundle, seal, blossom, giftwrap), and typical bundles.
package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/store"
	"pow.do/relay/relaytest"
	"pow.do/relay/server"
	"pow.do/shared/blossom"
	"pow.do/shared/bundle"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
	"pow.do/shared/seal"
)

// Quiet is a logger for parts under test that would flood the test output.
func Quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestLogger writes to the test's log at level lvl.
func TestLogger(tb testing.TB, lvl slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: lvl}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ---- relay ----

// Relay is a running powdo-relay on 127.0.0.1.
type Relay struct {
	WS, HTTP string // ws://127.0.0.1:port and http://127.0.0.1:port
	DataDir  string
	Addr     string

	mu   sync.Mutex
	srv  *server.Server   // in-process
	proc *relaytest.Relay // child process
}

// RelayOptions configure a test relay.
type RelayOptions struct {
	Admins []string // hex pubkeys
	Allow  []string
	// Addr to listen on; empty picks a free port.
	Addr    string
	DataDir string // empty: a temp dir of the test
}

func relayDefaults(tb testing.TB, o *RelayOptions) {
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	if o.Addr == "" {
		o.Addr = freeAddr(tb)
	}
}

// StartRelay runs pow.do/relay/server in this process: the same code as the binary,
// with rate limits raised for tests.
func StartRelay(tb testing.TB, o RelayOptions) *Relay {
	tb.Helper()
	relayDefaults(tb, &o)
	r := &Relay{DataDir: o.DataDir}
	cfg := server.Config{
		Listen: o.Addr, DataDir: o.DataDir, Admins: o.Admins, Allow: o.Allow,
		EventsPerMinutePubkey: 100000, EventsPerMinuteIP: 100000,
		UploadsPerMinutePubkey: 100000, UploadsPerMinuteIP: 100000, ManagePerMinuteIP: 100000,
		MaxConnsPerIP: 1000, Logger: Quiet(),
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	addr, err := srv.Start()
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	r.srv, r.Addr = srv, addr
	r.WS, r.HTTP = "ws://"+addr, "http://"+addr
	tb.Cleanup(r.Stop)
	return r
}

// Stop shuts the relay down (idempotent).
func (r *Relay) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.srv.Shutdown(ctx)
		cancel()
		r.srv = nil
	}
	if r.proc != nil {
		r.proc.Stop()
		r.proc = nil
	}
}

// Server returns the relay's in-process server (nil for a child process).
func (r *Relay) Server() *server.Server { return r.srv }

func freeAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ---- binaries ----

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// DVMBinary returns powdo-dvm: $POWDO_BIN/powdo-dvm when set (the Makefile builds it
// there), else built once per test process from this checkout.
func DVMBinary(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("POWDO_BIN"); dir != "" {
		p := filepath.Join(dir, "powdo-dvm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	buildOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = errors.New("cannot locate the source tree")
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "powdo-dvm-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "powdo-dvm"), ".")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "cmd", "powdo-dvm")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build powdo-dvm: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "powdo-dvm")
}

// CleanBinaries removes binaries built by DVMBinary (call from TestMain).
func CleanBinaries() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// StartRelayProcess runs the powdo-relay binary (relaytest) with test-sized rate limits.
func StartRelayProcess(tb testing.TB, o RelayOptions) *Relay {
	tb.Helper()
	p := relaytest.Start(tb, relaytest.Options{DataDir: o.DataDir, Admins: o.Admins, Allow: o.Allow, Args: []string{
		"--events-per-minute-pubkey", "-1", "--events-per-minute-ip", "-1", "--max-conns-per-ip", "-1",
		"--manage-per-minute-ip", "-1", "--uploads-per-minute-pubkey", "-1", "--uploads-per-minute-ip", "-1",
	}})
	r := &Relay{WS: p.WSURL, HTTP: p.URL, DataDir: p.DataDir, Addr: p.Addr, proc: p}
	tb.Cleanup(r.Stop)
	return r
}

// ---- keys ----

// Key is a secp256k1 key pair in hex.
type Key struct{ SK, PK string }

// NewKey makes a random key pair.
func NewKey() Key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return Key{sk, pk}
}

// WriteKeyFile writes k.SK to a 0600 file in dir.
func WriteKeyFile(tb testing.TB, dir string, k Key) string {
	tb.Helper()
	p := filepath.Join(dir, "dvm.key")
	if err := os.WriteFile(p, []byte(k.SK+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// RandomSession is a fresh 32-hex session id.
func RandomSession() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- the tracker side ----

// Connect dials a relay and authenticates with NIP-42 as sk.
func Connect(ctx context.Context, url, sk string) (*relayconn.Conn, error) {
	return relayconn.Dial(ctx, url, sk, relayconn.Options{RequireAuth: true, Logger: Quiet()})
}

// Query lists the stored events matching f.
func Query(ctx context.Context, conn *relayconn.Conn, f nostr.Filter) ([]*nostr.Event, error) {
	sub, err := conn.Subscribe(ctx, "query", f)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	var out []*nostr.Event
	for {
		ev, eose, err := sub.Next(ctx)
		if err != nil {
			return nil, err
		}
		if eose {
			return out, nil
		}
		out = append(out, ev)
	}
}

// Tracker plays a worker: it uploads bundles, sends gift wraps and collects what the DVM
// sends back.
type Tracker struct {
	Key
	DVM   string // DVM pubkey
	Relay *Relay
	conn  *relayconn.Conn

	mu         sync.Mutex
	receipts   map[string][]proto.Receipt // by answered rumor id
	catalogues []proto.Catalogue
	changed    chan struct{}
}

// NewTracker connects a tracker with key k to the relay and starts collecting its inbox.
func NewTracker(tb testing.TB, r *Relay, k Key, dvm string) *Tracker {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := Connect(ctx, r.WS, k.SK)
	if err != nil {
		tb.Fatalf("tracker connect: %v", err)
	}
	t := &Tracker{Key: k, DVM: dvm, Relay: r, conn: conn, receipts: map[string][]proto.Receipt{}, changed: make(chan struct{})}
	sub, err := conn.Subscribe(context.Background(), "tracker", nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {k.PK}}})
	if err != nil {
		tb.Fatalf("tracker subscribe: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.collect(sub)
	}()
	tb.Cleanup(func() { conn.Close(); <-done })
	return t
}

func (t *Tracker) collect(sub *relayconn.Sub) {
	for {
		ev, eose, err := sub.Next(context.Background())
		if err != nil {
			return
		}
		if eose {
			continue
		}
		rumor, sender, err := giftwrap.Unwrap(*ev, t.SK)
		if err != nil || sender != t.DVM {
			continue
		}
		msg, err := proto.Parse(rumor)
		if err != nil {
			continue
		}
		t.mu.Lock()
		switch m := msg.(type) {
		case proto.Receipt:
			t.receipts[m.Answers] = append(t.receipts[m.Answers], m)
		case proto.Catalogue:
			t.catalogues = append(t.catalogues, m)
		}
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
	}
}

// Send gift-wraps rumor from the tracker to the DVM and publishes it; it returns the wrap.
func (t *Tracker) Send(ctx context.Context, rumor nostr.Event) (nostr.Event, error) {
	w, err := giftwrap.Wrap(rumor, t.SK, t.DVM)
	if err != nil {
		return nostr.Event{}, err
	}
	return w, t.conn.Publish(ctx, w)
}

// Publish sends an already built event.
func (t *Tracker) Publish(ctx context.Context, ev nostr.Event) error { return t.conn.Publish(ctx, ev) }

// Receipts returns the receipts received for a rumor so far.
func (t *Tracker) Receipts(rumorID string) []proto.Receipt {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]proto.Receipt(nil), t.receipts[rumorID]...)
}

// Catalogues returns the catalogues received so far.
func (t *Tracker) Catalogues() []proto.Catalogue {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]proto.Catalogue(nil), t.catalogues...)
}

// WaitFor polls cond each time something arrives (and every 200 ms) until it holds or
// the timeout passes.
func (t *Tracker) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return cond()
		}
	}
}

// WaitReceipt waits for the first receipt answering rumorID.
func (t *Tracker) WaitReceipt(tb testing.TB, rumorID string, timeout time.Duration) proto.Receipt {
	tb.Helper()
	if !t.WaitFor(timeout, func() bool { return len(t.Receipts(rumorID)) > 0 }) {
		tb.Fatalf("no receipt for %s within %s", rumorID, timeout)
	}
	return t.Receipts(rumorID)[0]
}

// Segment describes one segment to build and send.
type Segment struct {
	Session    string
	Index      int
	Start, End time.Time
	Project    int64
	Activity   int64
	Prev       string
	Events     int    // window events (~100 for a typical bundle)
	JPEG       []byte // one screenshot; nil: none
	Memo       string
	Worker     string // manifest worker; empty: the tracker's
}

// Prepared is a built, sealed bundle and its kind-15 message, not yet uploaded or sent.
type Prepared struct {
	Built  bundle.Built
	Sealed seal.Sealed
	File   proto.SegmentFile
}

// Rumor is the kind-15 rumor from the tracker.
func (p Prepared) Rumor(senderPub string) nostr.Event { return p.File.Rumor(senderPub) }

// BuildBundle builds a typical bundle for s.
func BuildBundle(worker string, s Segment) (bundle.Built, error) {
	m := bundle.Manifest{
		Worker: worker, Session: s.Session, Index: s.Index, Start: s.Start.UTC(), End: s.End.UTC(),
		Project: s.Project, Activity: s.Activity, Memo: s.Memo, AppVersion: "0.1.0-test",
		Policy: bundle.Policy{SegmentSeconds: int(s.End.Sub(s.Start) / time.Second), Screenshots: 1, JPEGQuality: 80, MaxWidth: 1920},
		Prev:   s.Prev,
	}
	if m.Policy.SegmentSeconds < 10 {
		m.Policy.SegmentSeconds = 10
	}
	act := TypicalActivity(s.Start.UTC(), s.End.UTC(), s.Events)
	var shots []bundle.Screenshot
	if s.JPEG != nil {
		shots = append(shots, bundle.Screenshot{TakenAt: s.Start.UTC().Add(s.End.Sub(s.Start) / 3).Truncate(time.Second), JPEG: s.JPEG})
	}
	return bundle.Build(m, act, shots)
}

// TypicalActivity spreads n window events over [start, end) with afk, web, input and
// per-minute records.
func TypicalActivity(start, end time.Time, n int) bundle.Activity {
	span := end.Sub(start)
	a := bundle.Activity{Source: bundle.SourceActivityWatch, ActiveSeconds: span.Seconds() * 0.9}
	step := span / time.Duration(max(n, 1))
	apps := []string{"code", "firefox", "terminal", "slack"}
	for i := 0; i < n; i++ {
		a.Window = append(a.Window, bundle.Event{
			Timestamp: start.Add(time.Duration(i) * step),
			Duration:  step.Seconds() * 0.9,
			Data:      map[string]any{"app": apps[i%len(apps)], "title": fmt.Sprintf("main.go — pow.do — window %d", i)},
		})
	}
	a.AFK = []bundle.Event{{Timestamp: start, Duration: span.Seconds(), Data: map[string]any{"status": "not-afk"}}}
	a.Web = []bundle.Event{{Timestamp: start, Duration: min(12.5, span.Seconds()),
		Data: map[string]any{"url": "https://example.org/docs", "title": "Docs", "audible": false, "incognito": false}}}
	for t := start.Truncate(time.Minute); t.Before(end); t = t.Add(time.Minute) {
		if t.Before(start) {
			continue
		}
		a.Minutes = append(a.Minutes, bundle.Minute{T: t, Keys: 40, Clicks: 3, Moves: 120, Active: true})
	}
	return a
}

// Prepare builds and seals a bundle and the kind-15 message pointing at blossomURLs
// (the first is primary). Upload still has to put the ciphertext there.
func (t *Tracker) Prepare(s Segment, blossomURLs ...string) (Prepared, error) {
	worker := s.Worker
	if worker == "" {
		worker = t.PK
	}
	b, err := BuildBundle(worker, s)
	if err != nil {
		return Prepared{}, err
	}
	return SealAndDescribe(b, t.DVM, s, blossomURLs...)
}

// SealAndDescribe encrypts a built bundle and writes its kind-15 message.
func SealAndDescribe(b bundle.Built, dvm string, s Segment, blossomURLs ...string) (Prepared, error) {
	sl, err := seal.Seal(b.ZIP)
	if err != nil {
		return Prepared{}, err
	}
	f := proto.SegmentFile{
		To: dvm, URL: strings.TrimRight(blossomURLs[0], "/") + "/" + sl.X, Key: sl.Key, Nonce: sl.Nonce,
		X: sl.X, OX: sl.OX, Size: int64(len(sl.Ciphertext)), Session: s.Session, Index: s.Index,
		Start: s.Start.UTC().Truncate(time.Second), End: s.End.UTC().Truncate(time.Second),
	}
	for _, u := range blossomURLs[1:] {
		f.Fallbacks = append(f.Fallbacks, strings.TrimRight(u, "/")+"/"+sl.X)
	}
	if err := f.Validate(); err != nil {
		return Prepared{}, err
	}
	return Prepared{Built: b, Sealed: sl, File: f}, nil
}

// Upload puts ciphertext on a Blossom server as the tracker.
func (t *Tracker) Upload(ctx context.Context, blossomURL string, ciphertext []byte) error {
	c := blossom.New(blossomURL, t.SK, blossom.WithLogger(Quiet()))
	_, err := c.Upload(ctx, bytes.NewReader(ciphertext), int64(len(ciphertext)), store.HashHex(ciphertext))
	return err
}

func httpGet(url string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ---- content ----

var (
	jpegOnce sync.Once
	jpegData []byte
)

// ScreenshotJPEG is a 1920×1080 JPEG of screenshot size (gradient with noise, q80),
// made once per process.
func ScreenshotJPEG() []byte {
	jpegOnce.Do(func() {
		const w, h, amp = 1920, 1080, 8
		rng := rand.New(rand.NewPCG(42, 7))
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				n := rng.IntN(2*amp+1) - amp
				c := func(v int) uint8 { return uint8(min(255, max(0, v+n))) }
				img.SetRGBA(x, y, color.RGBA{c(x * 255 / w), c(y * 255 / h), c(128 + (x/64+y/64)%2*60), 255})
			}
		}
		var b bytes.Buffer
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
		jpegData = b.Bytes()
	})
	return jpegData
}

// ---- waiting ----

// WaitHTTP polls url until it answers 200.
func WaitHTTP(url string, timeout time.Duration) error {
	return Eventually(timeout, func() error {
		resp, err := httpGet(url)
		if err != nil {
			return err
		}
		if resp != 200 {
			return fmt.Errorf("status %d", resp)
		}
		return nil
	})
}

// Eventually polls f every 50 ms (backing off to 500 ms) until it returns nil or the
// timeout passes; it returns f's last error.
func Eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 50 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait) // polling a real condition with a deadline, not synchronising
		wait = min(wait*2, 500*time.Millisecond)
	}
}
