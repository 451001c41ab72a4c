// Package app is the tracker's window side: Wails bindings that translate between the
// Svelte UI and an engineapi.Engine. The methods hold no logic of their own; everything
// the tracker does lives in the engine.
package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/runtime"

	"pow.do/app/engineapi"
)

// Event names the UI listens to: EventPrefix + engineapi.EventKind, plus EventLink.
const (
	EventPrefix = "powdo:"
	// EventLink carries a powdo:// link opened while the app was already running.
	EventLink = EventPrefix + "link"
)

// uiRuntime is the part of the Wails runtime the bindings use; tests replace it,
// because the real one exits the process when the context is not a Wails one.
type uiRuntime interface {
	EventsEmit(ctx context.Context, name string, data ...any)
	WindowShow(ctx context.Context)
}

type wailsRuntime struct{}

func (wailsRuntime) EventsEmit(ctx context.Context, name string, data ...any) {
	runtime.EventsEmit(ctx, name, data...)
}

func (wailsRuntime) WindowShow(ctx context.Context) {
	runtime.WindowUnminimise(ctx)
	runtime.WindowShow(ctx)
}

// App is bound to the UI as window.go.app.App.
type App struct {
	engine engineapi.Engine
	rt     uiRuntime

	mu          sync.Mutex
	ctx         context.Context
	link        string // powdo:// link not yet taken by the UI
	unsubscribe func()
}

// New wraps engine; args are the command-line arguments (without the program name),
// where the desktop entry passes a powdo:// link.
func New(engine engineapi.Engine, args []string) *App {
	return newApp(engine, wailsRuntime{}, args)
}

func newApp(engine engineapi.Engine, rt uiRuntime, args []string) *App {
	return &App{engine: engine, rt: rt, ctx: context.Background(), link: LinkFromArgs(args)}
}

// OnStartup is Wails' startup hook: it forwards engine events to the UI.
func (a *App) OnStartup(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ctx = ctx
	a.unsubscribe = a.engine.Subscribe(func(ev engineapi.Event) {
		payload, ok := ev.Payload()
		if !ok {
			slog.Warn("engine event without payload dropped", "kind", ev.Kind)
			return
		}
		a.rt.EventsEmit(ctx, EventPrefix+string(ev.Kind), payload)
	})
}

// OnShutdown is Wails' shutdown hook: it stops forwarding and closes the engine.
func (a *App) OnShutdown(ctx context.Context) {
	a.mu.Lock()
	unsubscribe := a.unsubscribe
	a.unsubscribe = nil
	a.mu.Unlock()
	if unsubscribe != nil {
		unsubscribe()
	}
	if err := a.engine.Close(); err != nil {
		slog.Error("close engine", "err", err)
	}
}

func (a *App) context() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctx
}

// LaunchLink returns the powdo:// link the app was opened with, once; "" afterwards.
func (a *App) LaunchLink() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	link := a.link
	a.link = ""
	return link
}

func (a *App) State() (engineapi.State, error) { return a.engine.State(a.context()) }

func (a *App) Join(link, passphrase string) (engineapi.JoinResult, error) {
	return a.engine.Join(a.context(), link, passphrase)
}

func (a *App) Unlock(passphrase string) error { return a.engine.Unlock(a.context(), passphrase) }

func (a *App) Catalogue() (engineapi.Catalogue, error) { return a.engine.Catalogue(a.context()) }

func (a *App) RefreshCatalogue() error { return a.engine.RefreshCatalogue(a.context()) }

func (a *App) Start(projectID, activityID int, memo string) error {
	return a.engine.Start(a.context(), projectID, activityID, memo)
}

func (a *App) Pause() error  { return a.engine.Pause(a.context()) }
func (a *App) Resume() error { return a.engine.Resume(a.context()) }
func (a *App) Stop() error   { return a.engine.Stop(a.context()) }

// Today never returns null to the UI: an empty day is an empty list.
func (a *App) Today() ([]engineapi.SegmentView, error) {
	segs, err := a.engine.Today(a.context())
	if err == nil && segs == nil {
		segs = []engineapi.SegmentView{}
	}
	return segs, err
}

func (a *App) Screenshots(segmentID string) ([]engineapi.Screenshot, error) {
	shots, err := a.engine.Screenshots(a.context(), segmentID)
	if err == nil && shots == nil {
		shots = []engineapi.Screenshot{}
	}
	return shots, err
}

func (a *App) DeleteScreenshot(segmentID, name string) error {
	return a.engine.DeleteScreenshot(a.context(), segmentID, name)
}

// IdleDecision takes "keep", "discard" or "stop".
func (a *App) IdleDecision(choice string) error {
	return a.engine.IdleDecision(a.context(), engineapi.IdleChoice(choice))
}

func (a *App) Settings() (engineapi.Settings, error) { return a.engine.Settings(a.context()) }

func (a *App) SaveSettings(s engineapi.Settings) (engineapi.Settings, error) {
	return a.engine.SaveSettings(a.context(), s)
}

func (a *App) ExportKey(passphrase string) (string, error) {
	return a.engine.ExportKey(a.context(), passphrase)
}

// SecondInstanceHandler returns the hook for options.SingleInstanceLock: a powdo://
// link opened while the app runs goes to the UI, and the window comes to the front.
// It is a function, not a method, so Wails does not bind it.
func SecondInstanceHandler(a *App) func(options.SecondInstanceData) {
	return func(data options.SecondInstanceData) {
		link := LinkFromArgs(data.Args)
		ctx := a.context()
		a.rt.WindowShow(ctx)
		if link == "" {
			return
		}
		a.mu.Lock()
		a.link = link
		a.mu.Unlock()
		a.rt.EventsEmit(ctx, EventLink, link)
	}
}

// LinkFromArgs returns the first powdo:// argument, or "".
func LinkFromArgs(args []string) string {
	for _, arg := range args {
		if len(arg) > len("powdo://") && strings.EqualFold(arg[:len("powdo://")], "powdo://") {
			return arg
		}
	}
	return ""
}

// FormatError is the Wails ErrorFormatter: a failed call rejects in the UI with an
// Error whose message is the JSON {code, message, action}, which the UI's api.js
// unpacks. (Wails' runtime wraps whatever this returns in new Error(…), so an object
// would arrive as "[object Object]".) The cause is logged, never sent.
func FormatError(err error) any {
	p := engineapi.AsProblem(err)
	slog.Warn("call failed", "code", p.Code, "err", err)
	b, jerr := json.Marshal(p)
	if jerr != nil { // cannot happen: Problem is plain strings
		return p.Message
	}
	return string(b)
}
