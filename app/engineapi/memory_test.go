package engineapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const goodLink = "powdo://join?dvm=npub1dvmexample&relay=wss%3A%2F%2Frelay.example.com&blossom=https%3A%2F%2Fblossom.example.com&secret=nsec1secretexample&name=Alice"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newJoined(t *testing.T, start time.Time) (*Memory, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: start}
	m := NewMemory(clk.now)
	if _, err := m.Join(context.Background(), goodLink, "correct horse"); err != nil {
		t.Fatalf("join: %v", err)
	}
	return m, clk
}

func problemCode(err error) ProblemCode {
	var p *Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ""
}

func TestAlignSegment(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 3, 17, 5, time.UTC)
	cases := []struct {
		length time.Duration
		want   time.Time
	}{
		{600 * time.Second, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
		{20 * time.Second, time.Date(2026, 11, 21, 10, 3, 0, 0, time.UTC)},
		{time.Hour, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		if got := AlignSegment(at, c.length); !got.Equal(c.want) {
			t.Errorf("AlignSegment(%v, %v) = %v, want %v", at, c.length, got, c.want)
		}
	}
	// Boundaries are multiples of the length since the Unix epoch, in any zone.
	odd := 7 * time.Second
	if got := AlignSegment(at.In(time.FixedZone("x", 3600+1800)), odd); got.Unix()%7 != 0 || at.Sub(got) >= odd || at.Before(got) {
		t.Errorf("AlignSegment with %v = %v: not an epoch multiple containing %v", odd, got, at)
	}
}

func TestMemoryJoinRefusesBadInput(t *testing.T) {
	cases := []struct {
		name, link, pass string
		code             ProblemCode
		says             string
	}{
		{"empty", "", "correct horse", ProblemInviteInvalid, "powdo://join"},
		{"web page", "https://example.com/", "correct horse", ProblemInviteInvalid, "powdo://join"},
		{"no dvm", strings.Replace(goodLink, "dvm=npub1dvmexample&", "", 1), "correct horse", ProblemInviteInvalid, "dvm=npub1"},
		{"no secret", strings.Replace(goodLink, "&secret=nsec1secretexample", "", 1), "correct horse", ProblemInviteInvalid, "secret"},
		{"http relay", strings.Replace(goodLink, "wss%3A", "http%3A", 1), "correct horse", ProblemInviteInvalid, "wss://"},
		{"no blossom", strings.Replace(goodLink, "&blossom=https%3A%2F%2Fblossom.example.com", "", 1), "correct horse", ProblemInviteInvalid, "Blossom"},
		{"short passphrase", goodLink, "short", ProblemInvalidInput, "at least 8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMemory(time.Now)
			_, err := m.Join(context.Background(), c.link, c.pass)
			if problemCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Join: err = %v (code %q), want code %q mentioning %q", err, problemCode(err), c.code, c.says)
			}
			if p := AsProblem(err); p.Action == "" {
				t.Errorf("problem %q has no action for the worker", p.Message)
			}
			st, _ := m.State(context.Background())
			if st.Onboarded {
				t.Fatal("a refused join left the engine onboarded")
			}
		})
	}
}

func TestMemoryJoinHTTPSFormAndState(t *testing.T) {
	m := NewMemory(time.Now)
	link := "https://pow.example.com/join#dvm=npub1abc&relay=wss%3A%2F%2Fr1.example&relay=wss%3A%2F%2Fr2.example&blossom=https%3A%2F%2Fb.example&secret=nsec1x&name=Bob"
	res, err := m.Join(context.Background(), link, "long enough")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if res.DVMNpub != "npub1abc" || res.WorkerName != "Bob" || res.Fingerprint != "" {
		t.Fatalf("join result %+v", res)
	}
	st, _ := m.State(context.Background())
	if !st.Onboarded || !st.Preview || st.Running || st.Source != SourceNone {
		t.Fatalf("state after join %+v", st)
	}
	if len(st.Network.Relays) != 2 || st.Network.Relays[1].URL != "wss://r2.example" || st.Network.Relays[0].Status != EndpointDisabled {
		t.Fatalf("relays %+v", st.Network.Relays)
	}
	if _, err := m.Join(context.Background(), link, "long enough"); problemCode(err) != ProblemNotReady {
		t.Fatalf("second join: %v", err)
	}
}

func TestMemorySessionLifecycle(t *testing.T) {
	ctx := context.Background()
	m, clk := newJoined(t, time.Date(2026, 11, 21, 10, 3, 0, 0, time.UTC))

	if err := m.Start(ctx, 99, 1, ""); problemCode(err) != ProblemInvalidInput {
		t.Fatalf("start with unknown project: %v", err)
	}
	// Activity 1 belongs to project 1 only.
	if err := m.Start(ctx, 2, 1, ""); problemCode(err) != ProblemInvalidInput {
		t.Fatalf("start with an activity of another project: %v", err)
	}
	if err := m.Start(ctx, 2, 3, strings.Repeat("x", 1001)); problemCode(err) != ProblemInvalidInput {
		t.Fatalf("start with a long memo: %v", err)
	}
	if err := m.Pause(ctx); problemCode(err) != ProblemNotReady {
		t.Fatalf("pause while stopped: %v", err)
	}
	if err := m.Start(ctx, 2, 3, "tickets"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := m.Start(ctx, 2, 3, ""); problemCode(err) != ProblemNotReady {
		t.Fatalf("second start: %v", err)
	}

	clk.add(90 * time.Second) // 10:04:30
	st, _ := m.State(ctx)
	if !st.Running || st.Paused || st.Session == nil || st.Session.ProjectName != "Preview support" || st.Session.ActivityName != "Support calls" || st.Session.Memo != "tickets" {
		t.Fatalf("running state %+v", st)
	}
	if len(st.Session.ID) != 32 {
		t.Fatalf("session id %q", st.Session.ID)
	}
	if st.ElapsedSeconds != 90 {
		t.Fatalf("elapsed %d, want 90", st.ElapsedSeconds)
	}
	seg := st.Segment
	if seg == nil || seg.Index != 0 || !seg.Start.Equal(time.Date(2026, 11, 21, 10, 3, 0, 0, time.UTC)) ||
		!seg.End.Equal(time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC)) || seg.RemainingSeconds != 330 {
		t.Fatalf("first segment %+v", seg)
	}

	clk.add(10 * time.Minute) // 10:14:30: second segment
	st, _ = m.State(ctx)
	if st.Segment.Index != 1 || !st.Segment.Start.Equal(time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC)) || st.ElapsedSeconds != 690 {
		t.Fatalf("after rollover: segment %+v elapsed %d", st.Segment, st.ElapsedSeconds)
	}

	if err := m.Pause(ctx); err != nil {
		t.Fatalf("pause: %v", err)
	}
	clk.add(time.Hour) // paused time does not count
	st, _ = m.State(ctx)
	if !st.Paused || st.Segment != nil || st.ElapsedSeconds != 690 {
		t.Fatalf("paused state: paused=%v segment=%+v elapsed=%d", st.Paused, st.Segment, st.ElapsedSeconds)
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	clk.add(30 * time.Second) // 11:15:00
	st, _ = m.State(ctx)
	if st.ElapsedSeconds != 720 || st.Segment.Index != 2 || !st.Segment.Start.Equal(time.Date(2026, 11, 21, 11, 14, 30, 0, time.UTC)) {
		t.Fatalf("after resume: segment %+v elapsed %d", st.Segment, st.ElapsedSeconds)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	st, _ = m.State(ctx)
	if st.Running || st.Session != nil || st.Segment != nil {
		t.Fatalf("stopped state %+v", st)
	}
	if err := m.Stop(ctx); problemCode(err) != ProblemNotReady {
		t.Fatalf("second stop: %v", err)
	}
}

func TestMemoryRefusesBeforeJoin(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(time.Now)
	if err := m.Start(ctx, 1, 1, ""); problemCode(err) != ProblemNotReady {
		t.Fatalf("start before join: %v", err)
	}
	if _, err := m.Catalogue(ctx); problemCode(err) != ProblemNotReady {
		t.Fatalf("catalogue before join: %v", err)
	}
	if _, err := m.ExportKey(ctx, "whatever long"); problemCode(err) != ProblemUnsupported {
		t.Fatalf("export key: %v", err)
	}
	if err := m.IdleDecision(ctx, "later"); problemCode(err) != ProblemInvalidInput {
		t.Fatalf("bad idle choice: %v", err)
	}
	if err := m.IdleDecision(ctx, IdleKeep); problemCode(err) != ProblemNotReady {
		t.Fatalf("idle decision with no prompt: %v", err)
	}
}

func TestMemoryEventsInOrder(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	m := NewMemory(clk.now)
	var got []Event
	unsubscribe := m.Subscribe(func(ev Event) { got = append(got, ev) })

	if _, err := m.Join(ctx, goodLink, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, 1, 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	unsubscribe()
	if err := m.Start(ctx, 1, 2, ""); err != nil {
		t.Fatal(err)
	}

	kinds := make([]string, len(got))
	for i, ev := range got {
		kinds[i] = string(ev.Kind)
		if _, ok := ev.Payload(); !ok {
			t.Errorf("event %d (%s) has no payload", i, ev.Kind)
		}
	}
	if strings.Join(kinds, ",") != "catalogue,state,state,state" {
		t.Fatalf("events %v", kinds)
	}
	if got[0].Catalogue.WorkerName != "Alice" || !got[1].State.Onboarded || !got[2].State.Running || got[3].State.Running {
		t.Fatalf("event payloads out of order: %+v", got)
	}
}

func TestMemoryConcurrentUse(t *testing.T) {
	ctx := context.Background()
	m, _ := newJoined(t, time.Now())
	var workers sync.WaitGroup
	var mu sync.Mutex
	n := 0
	m.Subscribe(func(ev Event) { mu.Lock(); n++; mu.Unlock() })
	for i := 0; i < 8; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := 0; j < 50; j++ {
				_ = m.Start(ctx, 1, 2, "")
				_, _ = m.State(ctx)
				_ = m.Pause(ctx)
				_ = m.Resume(ctx)
				_ = m.Stop(ctx)
			}
		}()
	}
	workers.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n == 0 {
		t.Fatal("no events delivered")
	}
}

func TestSettingsEditableAndValidate(t *testing.T) {
	ctx := context.Background()
	m, _ := newJoined(t, time.Now())
	cur, _ := m.Settings(ctx)
	in := cur
	in.DVMNpub = "npub1attacker"
	in.DataDir = "/tmp/elsewhere"
	in.Relays = []string{" wss://a.example ", "", "wss://a.example", "ws://127.0.0.1:7777"}
	in.ExcludedApps = []string{"keepassxc", " ", "keepassxc"}
	in.JPEGQuality = 60
	saved, err := m.SaveSettings(ctx, in)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	if saved.DVMNpub != "npub1dvmexample" || saved.DataDir != cur.DataDir {
		t.Fatalf("read-only fields changed: %+v", saved)
	}
	if strings.Join(saved.Relays, " ") != "wss://a.example ws://127.0.0.1:7777" || strings.Join(saved.ExcludedApps, " ") != "keepassxc" || saved.JPEGQuality != 60 {
		t.Fatalf("editable fields not cleaned/stored: %+v", saved)
	}

	bad := []struct {
		name string
		edit func(*Settings)
		says string
	}{
		{"no relay", func(s *Settings) { s.Relays = nil }, "relay"},
		{"https relay", func(s *Settings) { s.Relays = []string{"https://r.example"} }, "wss://"},
		{"relay with password", func(s *Settings) { s.Relays = []string{"wss://u:p@r.example"} }, "password"},
		{"blossom ftp", func(s *Settings) { s.Blossoms = []string{"ftp://b.example"} }, "https://"},
		{"aw no host", func(s *Settings) { s.ActivityWatchURL = "http://" }, "no host"},
		{"quality", func(s *Settings) { s.JPEGQuality = 101 }, "outside"},
		{"quota", func(s *Settings) { s.DiskQuotaMB = -1 }, "negative"},
	}
	for _, c := range bad {
		s := saved
		c.edit(&s)
		_, err := m.SaveSettings(ctx, s)
		if problemCode(err) != ProblemInvalidInput || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: err %v, want invalid input mentioning %q", c.name, err, c.says)
		}
	}
	now, _ := m.Settings(ctx)
	if now.JPEGQuality != 60 || len(now.Relays) != 2 {
		t.Fatalf("a refused save changed the settings: %+v", now)
	}
}

func TestAsProblem(t *testing.T) {
	if AsProblem(nil) != nil {
		t.Fatal("AsProblem(nil) != nil")
	}
	plain := errors.New("disk on fire")
	p := AsProblem(plain)
	if p.Code != ProblemInternal || p.Message != "disk on fire" || !errors.Is(p, plain) {
		t.Fatalf("plain error: %+v", p)
	}
	inner := Fail(ProblemRelayUnreachable, "No relay answers.", "Check the network.", plain)
	wrapped := errors.Join(errors.New("publish"), inner)
	if got := AsProblem(wrapped); got != inner {
		t.Fatalf("wrapped problem not found: %+v", got)
	}
	if !strings.Contains(inner.Error(), "disk on fire") {
		t.Fatalf("Error() hides the cause: %q", inner.Error())
	}
}
