package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/daemon"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/proto"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanBinaries()
	os.Exit(code)
}

// Projects every test worker may book to.
var (
	testProjects   = []proto.Project{{ID: 1, Name: "Website", Customer: "ACME"}, {ID: 2, Name: "Shop", Customer: "ACME"}}
	testActivities = []proto.Activity{{ID: 5, Name: "Development"}, {ID: 6, Name: "Design", Project: ptr(int64(2))}}
)

func ptr[T any](v T) *T { return &v }

// running is an in-process daemon.
type running struct {
	d      *daemon.Daemon
	st     *sqlite.DB
	key    Key
	url    string // http://addr of health/metrics
	cancel context.CancelFunc
	done   chan error
}

func testConfig(t *testing.T, dataDir string, key Key, relays ...*Relay) daemon.Config {
	cfg := daemon.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.KeyFile = WriteKeyFile(t, t.TempDir(), key)
	for _, r := range relays {
		cfg.Relays = append(cfg.Relays, r.WS)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Workers = 2
	cfg.Projects, cfg.Activities = testProjects, testActivities
	cfg.RetryMin, cfg.RetryMax = daemon.Duration(100*time.Millisecond), daemon.Duration(time.Second)
	cfg.ReconnectMin, cfg.ReconnectMax = daemon.Duration(100*time.Millisecond), daemon.Duration(time.Second)
	cfg.ShutdownGrace = daemon.Duration(10 * time.Second)
	return cfg
}

// startDaemon runs a daemon in this process on its own store in dataDir.
func startDaemon(t *testing.T, cfg daemon.Config, opts daemon.Options) *running {
	t.Helper()
	db, err := sqlite.Open(cfg.DataDir, sqlite.WithLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = db
	if opts.Logger == nil {
		opts.Logger = TestLogger(t, levelFromEnv())
	}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, st: db, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	addr, err := d.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + addr
	if err := Eventually(15*time.Second, func() error {
		code, err := httpGet(r.url + "/readyz")
		if err != nil {
			return err
		}
		if code != 200 {
			return errors.New("not ready")
		}
		return nil
	}); err != nil {
		r.stop(t)
		t.Fatalf("daemon not ready: %v", err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("daemon run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("daemon did not stop")
	}
	r.st.Close()
}

func levelFromEnv() slog.Level {
	if os.Getenv("POWDO_TEST_DEBUG") != "" {
		return -4
	}
	return 8
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// world is in-process relays, a DVM and one worker on the roster.
type world struct {
	relay   *Relay   // the first relay
	relays  []*Relay // all of them
	dvm     Key
	d       *running
	tracker *Tracker
	dataDir string
}

type worldOptions struct {
	relays int      // default 1
	allow  []string // more pubkeys the relays allow (not on the roster)
	opts   daemon.Options
	config func(*daemon.Config)
}

func newWorld(t *testing.T) *world { return newWorldWith(t, worldOptions{}) }

func newWorldWith(t *testing.T, o worldOptions) *world {
	t.Helper()
	dvm, worker := NewKey(), NewKey()
	w := &world{dvm: dvm, dataDir: filepath.Join(t.TempDir(), "dvm")}
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

// addWorker puts a worker on the roster of the store in dataDir before the daemon starts.
func addWorker(t *testing.T, dataDir, pk, name string) {
	t.Helper()
	db, err := sqlite.Open(dataDir, sqlite.WithLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.AddWorker(context.Background(), store.Worker{Pubkey: pk, Name: name}); err != nil {
		t.Fatal(err)
	}
}

// segmentNow is a 60-second segment that ended a few seconds ago.
func segmentNow(session string, index int, prev string) Segment {
	end := time.Now().UTC().Truncate(time.Second).Add(-5 * time.Second)
	return Segment{Session: session, Index: index, Start: end.Add(-60 * time.Second), End: end,
		Project: 1, Activity: 5, Prev: prev, Events: 100, JPEG: ScreenshotJPEG(), Memo: "e2e"}
}

// sendSegment uploads and sends one segment; it returns the prepared bundle and the rumor id.
func (w *world) sendSegment(t *testing.T, s Segment) (Prepared, string) {
	p, id, _ := w.sendSegmentWrap(t, s)
	return p, id
}

// sendSegmentWrap is sendSegment that also returns the gift wrap.
func (w *world) sendSegmentWrap(t *testing.T, s Segment) (Prepared, string, nostr.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := w.tracker.Prepare(s, w.relay.HTTP)
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
	return p, rumor.ID, wrap
}
