// Package engine is the tracker: it implements engineapi.Engine by composing the worker
// key (app/keys), the pairing (app/join), the session scheduler (app/session), capture
// (app/capture), activity (app/activitywatch), the durable outbox (app/outbox) and the
// publisher (app/publisher). The Wails window and the headless powdo-tracker command both
// drive it.
//
// Everything time-related reads Config.Now; the desktop (screenshots, focused window,
// idle time, input counts) is injected through Config.Desktop and Config.Input, so tests
// run it with a fake clock and a fake desktop.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/app/capture"
	"pow.do/app/engineapi"
	"pow.do/app/join"
	"pow.do/app/keys"
	"pow.do/app/outbox"
	"pow.do/app/publisher"
	"pow.do/app/session"
)

// AppVersion is written into every manifest and join request.
const AppVersion = "0.1.0"

// StateDBName is the session database inside the data directory.
const StateDBName = "sessions.db"

// Desktop is what the engine reads from the worker's screen. *capture.X11 is one.
type Desktop interface {
	capture.Activity
	Screen(o capture.EncodeOptions) capture.Screen
}

// Config configures an Engine. Only DataDir is required.
type Config struct {
	DataDir string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Desktop and Input are the screen and the input counter. With both nil the engine
	// opens the X display ($DISPLAY) unless NoDesktop is set; without a display it runs
	// on, recording planned screenshots as skipped.
	Desktop   Desktop
	Input     capture.InputCounter
	NoDesktop bool
	// Manual leaves the engine without its background loop: the caller calls Step (tests).
	Manual bool
	// Tick is how often the loop steps (default 1 s).
	Tick time.Duration
	// IdleDefault answers idle prompts without asking (headless); "" asks the worker.
	IdleDefault engineapi.IdleChoice
	// KeyLogN is the scrypt cost for the key at rest (0: keys.DefaultLogN; tests use 4).
	KeyLogN uint8
	// CatalogueWait bounds how long Join waits for the catalogue (default 15 s); the
	// listener picks it up later either way.
	CatalogueWait time.Duration
	// Publisher tunes the publisher (tests shorten backoffs); may be nil.
	Publisher func(*publisher.Config)
	// Scheduler tunes the session scheduler (tests); may be nil.
	Scheduler  func(*session.Deps)
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Engine is the tracker engine. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	ks    *keys.Store
	ob    *outbox.Outbox
	st    *session.Store
	sched *session.Scheduler
	col   *collector

	lock      *os.File
	desk      Desktop
	input     capture.InputCounter
	closeDesk func()
	builtin   *activitywatch.Builtin

	mu        sync.Mutex
	joined    *join.Config
	settings  engineapi.Settings
	catalogue *engineapi.Catalogue
	pub       *publisher.Publisher
	pubStop   context.CancelFunc
	pubDone   chan struct{}
	pubStatus publisher.Status
	closed    bool

	events     *events
	outboxFull atomic.Bool // the outbox refused the last segment for its quota

	stepMu sync.Mutex // one Step at a time
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ engineapi.Engine = (*Engine)(nil)

// New opens the engine's state in cfg.DataDir, resumes a session a crash left open, and
// starts the background loop (unless cfg.Manual).
func New(cfg Config) (*Engine, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("engine: no data directory")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("engine: data directory: %w", err)
	}
	cfg.DataDir = dir
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.CatalogueWait == 0 {
		cfg.CatalogueWait = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, events: newEvents()}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			e.release()
		}
	}()

	if e.lock, err = lockDir(dir); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.ks, err = keys.Open(dir, keys.Options{LogN: cfg.KeyLogN, Logger: cfg.Logger}); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.settings, err = loadSettings(dir); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.settings.DataDir = dir
	if jc, err := join.LoadConfig(dir); err == nil {
		e.joined = &jc
		e.applyJoinedLocked(jc)
	} else if !errors.Is(err, join.ErrNotJoined) {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if cat, err := loadCatalogue(dir); err != nil {
		e.log.Warn("saved catalogue unreadable; asking the DVM again", "err", err)
	} else {
		e.catalogue = cat
	}
	quota := e.settings.DiskQuotaMB << 20
	if e.ob, err = outbox.Open(dir, outbox.Options{QuotaBytes: quota, Now: cfg.Now, Logger: cfg.Logger, OnChange: e.outboxChanged}); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.st, err = session.OpenStore(filepath.Join(dir, StateDBName)); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.openDesktop()
	if e.desk != nil {
		e.builtin = activitywatch.NewBuiltin(e.desk, e.input, activitywatch.BuiltinConfig{Now: cfg.Now})
	}
	e.col = &collector{builtin: e.builtin}
	e.col.configure(e.settings)

	deps := session.Deps{
		Now:        cfg.Now,
		Collector:  e.col,
		Policy:     e.policy,
		Worker:     e.workerForSealing,
		AppVersion: AppVersion,
		Deliver:    e.deliver,
		ShotGate:   e.shotGate,
		Changed:    e.stateChanged,
	}
	if e.desk != nil {
		deps.Shooter = &shooter{e: e}
		deps.Idle = e.desk
	}
	if cfg.Scheduler != nil {
		cfg.Scheduler(&deps)
	}
	if e.sched, err = session.Open(e.ctx, e.st, deps); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.events.stateFn = func() (engineapi.Event, bool) {
		st, err := e.State(context.Background())
		if err != nil {
			e.log.Warn("state for the UI", "err", err)
			return engineapi.Event{}, false
		}
		return engineapi.Event{Kind: engineapi.EventState, State: &st}, true
	}
	e.events.start()
	if !cfg.Manual {
		e.wg.Add(1)
		go e.loop()
	}
	ok = true
	return e, nil
}

// openDesktop uses the injected desktop, or the X display.
func (e *Engine) openDesktop() {
	if e.cfg.Desktop != nil || e.cfg.Input != nil {
		e.desk, e.input = e.cfg.Desktop, e.cfg.Input
		return
	}
	if e.cfg.NoDesktop {
		return
	}
	x, err := capture.Open("")
	if err != nil {
		e.log.Warn("no display: screenshots, window titles and idle time are not recorded", "err", err)
		return
	}
	e.desk = x
	in, err := capture.OpenInputCounter(x.Display())
	if err != nil {
		e.log.Warn("input counts unavailable", "err", err)
	} else {
		e.input = in
	}
	e.closeDesk = func() {
		if e.input != nil {
			_ = e.input.Close()
		}
		_ = x.Close()
	}
}

// loop steps the engine once per Tick until Close.
func (e *Engine) loop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		if err := e.Step(e.ctx); err != nil && e.ctx.Err() == nil {
			e.log.Warn("tracker step", "err", err)
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step does one round of work: sample the built-in watcher, run the scheduler (capture,
// segment boundaries, review, sealing), queue session messages, answer idle prompts
// when a default answer is configured. The loop calls it every Tick; tests call it.
func (e *Engine) Step(ctx context.Context) error {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	if e.builtin != nil {
		if err := e.builtin.Poll(); err != nil {
			e.log.Debug("built-in watcher", "err", err)
		}
	}
	var errs []error
	// Session messages first, so a session's start is queued before its segments.
	if err := e.sendSessionMessages(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.sched.Step(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.sendSessionMessages(ctx); err != nil {
		errs = append(errs, err)
	}
	if e.cfg.IdleDefault != "" {
		if _, back, ok := e.sched.IdleNow(); ok && !back.IsZero() {
			e.log.Info("answering the idle prompt with the configured default", "choice", e.cfg.IdleDefault)
			if err := e.sched.IdleDecision(ctx, string(e.cfg.IdleDefault)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the loop and the publisher and closes every file.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	return e.release()
}

func (e *Engine) release() error {
	e.cancel()
	e.wg.Wait()
	e.stopPublisher()
	e.events.stop()
	var errs []error
	if e.st != nil {
		errs = append(errs, e.st.Close())
	}
	if e.ob != nil {
		errs = append(errs, e.ob.Close())
	}
	if e.closeDesk != nil {
		e.closeDesk()
	}
	if e.lock != nil {
		errs = append(errs, e.lock.Close())
	}
	return errors.Join(errs...)
}

// Scheduler is the session scheduler (for the headless command's progress lines).
func (e *Engine) Scheduler() *session.Scheduler { return e.sched }

// Outbox is the durable outbox.
func (e *Engine) Outbox() *outbox.Outbox { return e.ob }
