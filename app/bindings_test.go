package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"sync"
	"testing"

	"github.com/wailsapp/wails/v2/pkg/options"

	"pow.do/app/engine"
	"pow.do/app/engineapi"
)

// fakeEngine records every call and returns what the test set.
type fakeEngine struct {
	mu     sync.Mutex
	calls  []string
	args   [][]any
	ctxs   []context.Context
	err    error
	today  []engineapi.SegmentView
	sub    func(engineapi.Event)
	closed bool
}

func (f *fakeEngine) record(ctx context.Context, name string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.args = append(f.args, args)
	f.ctxs = append(f.ctxs, ctx)
	return f.err
}

func (f *fakeEngine) last() (string, []any, context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.calls) - 1
	return f.calls[n], f.args[n], f.ctxs[n]
}

func (f *fakeEngine) State(ctx context.Context) (engineapi.State, error) {
	return engineapi.State{Running: true, ElapsedSeconds: 42}, f.record(ctx, "State")
}
func (f *fakeEngine) Join(ctx context.Context, link, pass string) (engineapi.JoinResult, error) {
	return engineapi.JoinResult{Fingerprint: "a-b-c-d-e-f"}, f.record(ctx, "Join", link, pass)
}
func (f *fakeEngine) Unlock(ctx context.Context, pass string) error {
	return f.record(ctx, "Unlock", pass)
}
func (f *fakeEngine) Catalogue(ctx context.Context) (engineapi.Catalogue, error) {
	return engineapi.Catalogue{WorkerName: "Alice"}, f.record(ctx, "Catalogue")
}
func (f *fakeEngine) RefreshCatalogue(ctx context.Context) error {
	return f.record(ctx, "RefreshCatalogue")
}
func (f *fakeEngine) Start(ctx context.Context, p, a int, memo string) error {
	return f.record(ctx, "Start", p, a, memo)
}
func (f *fakeEngine) Pause(ctx context.Context) error  { return f.record(ctx, "Pause") }
func (f *fakeEngine) Resume(ctx context.Context) error { return f.record(ctx, "Resume") }
func (f *fakeEngine) Stop(ctx context.Context) error   { return f.record(ctx, "Stop") }
func (f *fakeEngine) Today(ctx context.Context) ([]engineapi.SegmentView, error) {
	return f.today, f.record(ctx, "Today")
}
func (f *fakeEngine) Screenshots(ctx context.Context, id string) ([]engineapi.Screenshot, error) {
	return nil, f.record(ctx, "Screenshots", id)
}
func (f *fakeEngine) DeleteScreenshot(ctx context.Context, id, name string) error {
	return f.record(ctx, "DeleteScreenshot", id, name)
}
func (f *fakeEngine) IdleDecision(ctx context.Context, c engineapi.IdleChoice) error {
	return f.record(ctx, "IdleDecision", c)
}
func (f *fakeEngine) Settings(ctx context.Context) (engineapi.Settings, error) {
	return engineapi.Settings{OwnNpub: "npub1me"}, f.record(ctx, "Settings")
}
func (f *fakeEngine) SaveSettings(ctx context.Context, s engineapi.Settings) (engineapi.Settings, error) {
	return s, f.record(ctx, "SaveSettings", s)
}
func (f *fakeEngine) ExportKey(ctx context.Context, pass string) (string, error) {
	return "ncryptsec1fake", f.record(ctx, "ExportKey", pass)
}
func (f *fakeEngine) Subscribe(fn func(engineapi.Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sub = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sub = nil
	}
}
func (f *fakeEngine) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeEngine) push(ev engineapi.Event) bool {
	f.mu.Lock()
	fn := f.sub
	f.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(ev)
	return true
}

type emitted struct {
	name string
	data []any
}

type fakeRuntime struct {
	mu      sync.Mutex
	emitted []emitted
	shown   int
}

func (r *fakeRuntime) EventsEmit(ctx context.Context, name string, data ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emitted = append(r.emitted, emitted{name, data})
}

func (r *fakeRuntime) WindowShow(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shown++
}

type ctxKey struct{}

func TestBindingsForwardCallsWithStartupContext(t *testing.T) {
	eng := &fakeEngine{}
	a := newApp(eng, &fakeRuntime{}, nil)
	ctx := context.WithValue(context.Background(), ctxKey{}, "wails")
	a.OnStartup(ctx)

	settings := engineapi.Settings{Relays: []string{"wss://r.example"}}
	cases := []struct {
		call func() (any, error)
		name string
		args []any
		want any
	}{
		{func() (any, error) { return a.State() }, "State", nil, engineapi.State{Running: true, ElapsedSeconds: 42}},
		{func() (any, error) { return a.Join("powdo://join?x", "pass phrase") }, "Join", []any{"powdo://join?x", "pass phrase"}, engineapi.JoinResult{Fingerprint: "a-b-c-d-e-f"}},
		{func() (any, error) { return nil, a.Unlock("secret pass") }, "Unlock", []any{"secret pass"}, nil},
		{func() (any, error) { return a.Catalogue() }, "Catalogue", nil, engineapi.Catalogue{WorkerName: "Alice"}},
		{func() (any, error) { return nil, a.RefreshCatalogue() }, "RefreshCatalogue", nil, nil},
		{func() (any, error) { return nil, a.Start(12, 5, "memo") }, "Start", []any{12, 5, "memo"}, nil},
		{func() (any, error) { return nil, a.Pause() }, "Pause", nil, nil},
		{func() (any, error) { return nil, a.Resume() }, "Resume", nil, nil},
		{func() (any, error) { return nil, a.Stop() }, "Stop", nil, nil},
		{func() (any, error) { return a.Today() }, "Today", nil, []engineapi.SegmentView{}},
		{func() (any, error) { return a.Screenshots("seg-1") }, "Screenshots", []any{"seg-1"}, []engineapi.Screenshot{}},
		{func() (any, error) { return nil, a.DeleteScreenshot("seg-1", "screenshots/002.jpg") }, "DeleteScreenshot", []any{"seg-1", "screenshots/002.jpg"}, nil},
		{func() (any, error) { return nil, a.IdleDecision("discard") }, "IdleDecision", []any{engineapi.IdleDiscard}, nil},
		{func() (any, error) { return a.Settings() }, "Settings", nil, engineapi.Settings{OwnNpub: "npub1me"}},
		{func() (any, error) { return a.SaveSettings(settings) }, "SaveSettings", []any{settings}, settings},
		{func() (any, error) { return a.ExportKey("export pass") }, "ExportKey", []any{"export pass"}, "ncryptsec1fake"},
	}
	for _, c := range cases {
		got, err := c.call()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		name, args, callCtx := eng.last()
		if name != c.name || !reflect.DeepEqual(args, c.args) {
			t.Errorf("%s: engine got %s%v, want %s%v", c.name, name, args, c.name, c.args)
		}
		if callCtx.Value(ctxKey{}) != "wails" {
			t.Errorf("%s: engine did not get the startup context", c.name)
		}
		if c.want != nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: returned %#v, want %#v", c.name, got, c.want)
		}
	}
}

func TestBindingsPassEngineErrorsThrough(t *testing.T) {
	problem := engineapi.Fail(engineapi.ProblemInviteExpired, "This invite was already used.", "Ask your employer for a new invite link.", nil)
	eng := &fakeEngine{err: problem}
	a := newApp(eng, &fakeRuntime{}, nil)
	if _, err := a.Join("powdo://join?x", "pass phrase"); err != problem {
		t.Fatalf("Join error %v, want the engine's problem", err)
	}
	if err := a.Stop(); err != problem {
		t.Fatalf("Stop error %v, want the engine's problem", err)
	}
	// An error keeps Today's nil (the UI sees the rejection, not an empty day).
	if segs, err := a.Today(); err != problem || segs != nil {
		t.Fatalf("Today = %v, %v", segs, err)
	}
}

func TestBindingsForwardEvents(t *testing.T) {
	eng := &fakeEngine{}
	rt := &fakeRuntime{}
	a := newApp(eng, rt, nil)
	if eng.push(engineapi.Event{Kind: engineapi.EventState, State: &engineapi.State{}}) {
		t.Fatal("subscribed before startup")
	}
	a.OnStartup(context.Background())

	st := &engineapi.State{Running: true}
	seg := &engineapi.SegmentView{ID: "s1", State: engineapi.SegmentAccepted}
	cat := &engineapi.Catalogue{WorkerName: "Alice"}
	eng.push(engineapi.Event{Kind: engineapi.EventState, State: st})
	eng.push(engineapi.Event{Kind: engineapi.EventSegment, Segment: seg})
	eng.push(engineapi.Event{Kind: engineapi.EventSegment}) // malformed: dropped
	eng.push(engineapi.Event{Kind: "bogus", State: st})     // unknown: dropped
	eng.push(engineapi.Event{Kind: engineapi.EventCatalogue, Catalogue: cat})

	want := []emitted{
		{"powdo:state", []any{st}},
		{"powdo:segment", []any{seg}},
		{"powdo:catalogue", []any{cat}},
	}
	rt.mu.Lock()
	got := rt.emitted
	rt.mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("emitted %+v, want %+v", got, want)
	}

	a.OnShutdown(context.Background())
	if eng.push(engineapi.Event{Kind: engineapi.EventState, State: st}) {
		t.Fatal("still subscribed after shutdown")
	}
	if !eng.closed {
		t.Fatal("shutdown did not close the engine")
	}
}

func TestLaunchAndSecondInstanceLinks(t *testing.T) {
	const link = "powdo://join?dvm=npub1x&relay=wss%3A%2F%2Fr&blossom=https%3A%2F%2Fb&secret=nsec1y"
	if got := LinkFromArgs([]string{"--verbose", "POWDO://join?a=b", link}); got != "POWDO://join?a=b" {
		t.Fatalf("LinkFromArgs = %q", got)
	}
	if got := LinkFromArgs([]string{"https://example.com", "powdo://"}); got != "" {
		t.Fatalf("LinkFromArgs without a link = %q", got)
	}

	rt := &fakeRuntime{}
	a := newApp(&fakeEngine{}, rt, []string{link})
	if got := a.LaunchLink(); got != link {
		t.Fatalf("LaunchLink = %q, want the launch argument", got)
	}
	if got := a.LaunchLink(); got != "" {
		t.Fatalf("LaunchLink twice = %q, want it taken once", got)
	}

	handler := SecondInstanceHandler(a)
	handler(options.SecondInstanceData{Args: []string{}})
	handler(options.SecondInstanceData{Args: []string{link}})
	rt.mu.Lock()
	shown, events := rt.shown, rt.emitted
	rt.mu.Unlock()
	if shown != 2 {
		t.Fatalf("window shown %d times, want 2", shown)
	}
	if len(events) != 1 || events[0].name != EventLink || events[0].data[0] != link {
		t.Fatalf("events %+v, want one %s", events, EventLink)
	}
	if got := a.LaunchLink(); got != link {
		t.Fatalf("LaunchLink after second instance = %q", got)
	}
}

func TestFormatErrorShape(t *testing.T) {
	secret := errors.New("dial tcp: connection refused")
	p := engineapi.Fail(engineapi.ProblemRelayUnreachable, "No relay answers.", "Check your network.", secret)
	raw, ok := FormatError(p).(string)
	if !ok {
		t.Fatalf("FormatError returned %T; Wails' runtime needs a string", FormatError(p))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"code": "relay_unreachable", "message": "No relay answers.", "action": "Check your network."}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("formatted %s, want %v (the cause stays in the log)", raw, want)
	}

	raw, _ = FormatError(errors.New("boom")).(string)
	got = nil
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if got["code"] != "internal" || got["message"] != "boom" || got["action"] == "" {
		t.Fatalf("plain error formatted as %s", raw)
	}
}

// The real engine through the bindings, on a fresh data directory: the path the window
// takes on its first start (the preview engine is gone).
func TestBindingsWithRealEngine(t *testing.T) {
	eng, err := engine.New(engine.Config{DataDir: t.TempDir(), NoDesktop: true, Manual: true, KeyLogN: 4})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(eng, &fakeRuntime{}, nil)
	a.OnStartup(context.Background())
	defer a.OnShutdown(context.Background())
	st, err := a.State()
	if err != nil || st.Onboarded || st.Preview || st.Running || st.Locked {
		t.Fatalf("first state %+v, %v", st, err)
	}
	if _, err := a.Join("https://example.com/not-an-invite", "long passphrase"); engineapi.AsProblem(err).Code != engineapi.ProblemInviteInvalid {
		t.Fatalf("join with a wrong link: %v", err)
	}
	if err := a.Start(1, 1, ""); engineapi.AsProblem(err).Code != engineapi.ProblemNotReady {
		t.Fatalf("start before joining: %v", err)
	}
	if err := a.IdleDecision("maybe"); engineapi.AsProblem(err).Code != engineapi.ProblemInvalidInput {
		t.Fatalf("bad idle choice: %v", err)
	}
	if today, err := a.Today(); err != nil || today == nil || len(today) != 0 {
		t.Fatalf("today %v, %v", today, err)
	}
}

// Every binding the UI's api.js calls exists on App, with the same name: the two
// sides of the seam cannot drift apart silently.
func TestAPIModuleCallsExistingBindings(t *testing.T) {
	src, err := os.ReadFile("../frontend/src/lib/api.js")
	if err != nil {
		t.Fatalf("read the UI's api module: %v", err)
	}
	calls := regexp.MustCompile(`call\(["']([A-Za-z]+)["']`).FindAllStringSubmatch(string(src), -1)
	if len(calls) < 15 {
		t.Fatalf("found %d calls in api.js; the pattern no longer matches it", len(calls))
	}
	typ := reflect.TypeOf(&App{})
	for _, c := range calls {
		if _, ok := typ.MethodByName(c[1]); !ok {
			t.Errorf("api.js calls App.%s, which does not exist", c[1])
		}
	}
}
