package publisher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/outbox"
	"pow.do/app/publisher/fakedvm"
	"pow.do/app/publisher/relayproc"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

var relayBin string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	dir, err := os.MkdirTemp("", "powdo-relay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	relayBin, err = relayproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testLog sends warnings and errors to the test log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type key struct{ sk, pk string }

func newKey() key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return key{sk, pk}
}

// env is one real relay (plus an optional Blossom mirror, another relay process), a fake
// DVM on it, and a worker with an outbox.
type env struct {
	t       *testing.T
	ctx     context.Context
	relay   *relayproc.Relay
	mirror  *relayproc.Relay
	dvm     *fakedvm.DVM
	worker  key
	dataDir string
	ob      *outbox.Outbox
}

type envOpts struct {
	mirror        bool
	workerBlocked bool // the worker's key is not on the whitelist
	decide        func(sf proto.SegmentFile, seen int) fakedvm.Verdict
}

func setup(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, worker: newKey(), dataDir: t.TempDir()}
	dvmKey := newKey()
	allow := []string{dvmKey.pk}
	if !o.workerBlocked {
		allow = append(allow, e.worker.pk)
	}
	admin := newKey()
	e.relay = relayproc.Start(t, relayproc.Options{Bin: relayBin, DataDir: t.TempDir(), Admins: []string{admin.pk}, Allow: allow})
	if o.mirror {
		e.mirror = relayproc.Start(t, relayproc.Options{Bin: relayBin, DataDir: t.TempDir(), Admins: []string{admin.pk}, Allow: allow})
	}
	dvm, err := fakedvm.Start(ctx, e.relay.WS(), dvmKey.sk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	dvm.SetDecide(o.decide)
	e.dvm = dvm
	e.ob = e.openOutbox()
	return e
}

func (e *env) openOutbox() *outbox.Outbox {
	o, err := outbox.Open(e.dataDir, outbox.Options{Logger: testLog(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { o.Close() })
	return o
}

func (e *env) blossoms() []string {
	b := []string{e.relay.HTTP()}
	if e.mirror != nil {
		b = append(b, e.mirror.HTTP())
	}
	return b
}

// statusLog collects every status the publisher reports.
type statusLog struct {
	mu  sync.Mutex
	all []Status
}

func (s *statusLog) add(st Status) { s.mu.Lock(); s.all = append(s.all, st); s.mu.Unlock() }

func (s *statusLog) find(match func(Status) bool) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.all {
		if match(st) {
			return st, true
		}
	}
	return Status{}, false
}

// start runs a publisher until the test ends.
func (e *env) start(mod func(*Config)) (*Publisher, *statusLog) {
	e.t.Helper()
	sl := &statusLog{}
	cfg := Config{
		Outbox: e.ob, SecretKey: e.worker.sk, DVM: e.dvm.PK, Relays: []string{e.relay.WS()}, Blossoms: e.blossoms(),
		ReceiptTimeout: time.Hour, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		OnStatus: sl.add, Logger: testLog(e.t),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return p, sl
}

func newSession() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// addSegments queues n real sealed bundles of one session, hash-chained; it returns
// the plaintext ZIP of each.
func (e *env) addSegments(ob *outbox.Outbox, sess string, from, n int) [][]byte {
	e.t.Helper()
	base := time.Now().UTC().Truncate(10 * time.Minute).Add(-24 * time.Hour)
	prev := ""
	var zips [][]byte
	for i := from; i < from+n; i++ {
		start := base.Add(time.Duration(i) * 10 * time.Minute)
		if i > 0 && prev == "" {
			prev = strings.Repeat("0", 64)
		}
		built, sealed, err := fakedvm.MakeSegment(e.worker.pk, sess, i, start, start.Add(10*time.Minute), prev)
		if err != nil {
			e.t.Fatal(err)
		}
		prev = built.OX
		if _, err := ob.AddSegment(e.ctx, outbox.Segment{Session: sess, Index: i, Start: start, End: start.Add(10 * time.Minute), Sealed: sealed}); err != nil {
			e.t.Fatal(err)
		}
		zips = append(zips, built.ZIP)
	}
	return zips
}

// waitItem polls the outbox until the item matches or the deadline passes.
func (e *env) waitItem(ob *outbox.Outbox, sess string, index int, what string, cond func(outbox.Item) bool) outbox.Item {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var it outbox.Item
	var err error
	for time.Now().Before(deadline) {
		it, err = ob.Segment(e.ctx, sess, index)
		if err == nil && cond(it) {
			return it
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("segment %d: %s: context ended (last %+v, %v)", index, what, it, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	e.t.Fatalf("segment %d never became %s; last state %s, error %q (%v)", index, what, it.State, it.LastError, err)
	return it
}

// waitFor polls cond until it holds or 60 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// publishRaw publishes an event on the relay as the holder of sk.
func publishRaw(e *env, sk string, ev nostr.Event) error {
	c, err := relayconn.Dial(e.ctx, e.relay.WS(), sk, relayconn.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Publish(e.ctx, ev)
}
