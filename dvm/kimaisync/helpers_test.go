package kimaisync_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pow.do/dvm/kimai"
	"pow.do/dvm/kimaiemu"
	"pow.do/dvm/kimaisync"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/clocktest"
)

// t0 is a southern-summer morning: Pacific/Auckland is UTC+13, America/Bogota UTC−5.
var t0 = time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)

const (
	aliceKimaiID = 3
	diaryBase    = "https://diary.example.invalid/dvm"
	segLen       = 10 * time.Minute
)

var (
	worker = hexOf("worker alice")
	other  = hexOf("worker bob")
)

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

type clock = clocktest.Clock

// gate stands in front of the emulator to simulate outages: 503 answers, connections
// reset before any answer, and creates whose answer is lost after Kimai stored them.
type gate struct {
	mu          sync.Mutex
	h           http.Handler
	mode        string // "", "503", "reset"
	dropCreates int
	creates     int // POST /api/timesheets that reached the emulator
}

func (g *gate) set(mode string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mode = mode
}

func (g *gate) dropNextCreates(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropCreates = n
}

func (g *gate) createCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.creates
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	mode := g.mode
	isCreate := r.Method == http.MethodPost && r.URL.Path == "/api/timesheets"
	drop := false
	if mode == "" && isCreate {
		g.creates++
		if g.dropCreates > 0 {
			g.dropCreates--
			drop = true
		}
	}
	g.mu.Unlock()
	switch {
	case mode == "503":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":503,"message":"Service Unavailable"}`)
		return
	case mode == "reset":
		hangUp(w)
		return
	case drop:
		// Kimai stores the record, then the answer is lost on the way back.
		g.h.ServeHTTP(httptest.NewRecorder(), r)
		hangUp(w)
		return
	}
	g.h.ServeHTTP(w, r)
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	emu   *kimaiemu.Server
	gate  *gate
	url   string
	st    *sqlite.DB
	sync  *kimaisync.Syncer
	cfg   kimaisync.Config
}

type envOpts struct {
	dvmTZ string // the DVM's Kimai user's time zone (default Pacific/Auckland, UTC+13 in January)
	seed  func(*kimaiemu.Seed)
	cfg   func(*kimaisync.Config)
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := clocktest.New(t0)
	seed := kimaiemu.DemoSeed()
	if o.dvmTZ != "" {
		for i := range seed.Users {
			if seed.Users[i].Username == "dvm" {
				seed.Users[i].Timezone = o.dvmTZ
			}
		}
	}
	if o.seed != nil {
		o.seed(&seed)
	}
	emu, err := kimaiemu.New(kimaiemu.Options{Seed: seed, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	g := &gate{h: emu}
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)

	log := testLogger(t)
	st, err := sqlite.Open(t.TempDir(), sqlite.WithClock(c.Now), sqlite.WithLogger(log),
		sqlite.WithBackoff(func(int) time.Duration { return time.Minute }))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	for _, w := range []struct {
		key  string
		name string
		id   int64
	}{{worker, "Alice", aliceKimaiID}, {other, "Bob", 4}} {
		if err := st.AddWorker(ctx, store.Worker{Pubkey: w.key, Name: w.name, KimaiUserID: w.id, JoinedAt: t0.Add(-time.Hour)}); err != nil {
			t.Fatalf("add worker: %v", err)
		}
	}
	e := &env{t: t, ctx: ctx, clock: c, emu: emu, gate: g, url: hs.URL, st: st}
	e.cfg = kimaisync.Config{Store: st, Kimai: e.client("demo-dvm-token"), DiaryBaseURL: diaryBase,
		SegmentLength: segLen, Now: c.Now, Logger: log}
	if o.cfg != nil {
		o.cfg(&e.cfg)
	}
	e.sync = e.newSyncer()
	return e
}

func (e *env) client(token string) *kimai.Client {
	e.t.Helper()
	k, err := kimai.New(kimai.Config{BaseURL: e.url, Token: token, Timeout: 5 * time.Second, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatalf("kimai client: %v", err)
	}
	return k
}

// newSyncer builds a fresh Syncer on the same store and Kimai, like a restarted DVM.
func (e *env) newSyncer() *kimaisync.Syncer {
	e.t.Helper()
	cfg := e.cfg
	cfg.Kimai = e.client("demo-dvm-token")
	s, err := kimaisync.New(cfg)
	if err != nil {
		e.t.Fatalf("kimaisync.New: %v", err)
	}
	return s
}

func sessionID(name string) string { return hexOf(name)[:32] }

// start records a start message and tells the syncer, as the daemon does.
func (e *env) start(id, who string, at time.Time) store.Session {
	e.t.Helper()
	s, err := e.st.StartSession(e.ctx, store.Session{ID: id, Worker: who, Project: 1, Activity: 1,
		Memo: "fixing the login page", StartedAt: at})
	if err != nil {
		e.t.Fatalf("start session: %v", err)
	}
	e.sync.SessionStarted(e.ctx, s)
	return s
}

func (e *env) stop(id, who string, at time.Time, segments int) {
	e.t.Helper()
	s, err := e.st.StopSession(e.ctx, id, who, at, segments)
	if err != nil {
		e.t.Fatalf("stop session: %v", err)
	}
	e.sync.SessionStopped(e.ctx, s)
}

// segment stores one verified segment and tells the syncer. active is in seconds.
func (e *env) segment(sess, who string, idx int, start time.Time, active int) store.Segment {
	e.t.Helper()
	prev := ""
	if idx > 0 {
		prev = hexOf(fmt.Sprintf("ox %s %d", sess, idx-1))
	}
	app, _ := json.Marshal(map[string]string{"app": "code", "title": "main.go"})
	rec := &store.SegmentRecord{
		Worker: who, Session: sess, Index: idx, Start: start, End: start.Add(segLen),
		Project: 1, Activity: 1, Memo: "fixing the login page", AppVersion: "0.1.0",
		Policy: store.Policy{SegmentSeconds: int(segLen / time.Second), Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		Source: "builtin", RumorID: hexOf(fmt.Sprintf("rumor %s %d", sess, idx)),
		X: hexOf(fmt.Sprintf("x %s %d", sess, idx)), OX: hexOf(fmt.Sprintf("ox %s %d", sess, idx)), Prev: prev,
		ActiveSeconds: active,
		Events:        []store.Event{{Bucket: store.BucketWindow, Timestamp: start, Duration: float64(active), Data: app}},
		Screenshots: []store.Screenshot{
			{Name: "screenshots/001.jpg", TakenAt: start.Add(time.Minute), Data: []byte("jpeg one " + sess + fmt.Sprint(idx))},
			{Name: "screenshots/002.jpg", TakenAt: start.Add(5 * time.Minute), Data: []byte("jpeg two " + sess + fmt.Sprint(idx))},
		},
	}
	if _, err := e.st.InsertSegment(e.ctx, rec); err != nil {
		e.t.Fatalf("insert segment %d: %v", idx, err)
	}
	d, err := e.st.SegmentAt(e.ctx, sess, idx)
	if err != nil {
		e.t.Fatalf("read segment %d: %v", idx, err)
	}
	e.sync.SegmentAccepted(e.ctx, d.Segment)
	return d.Segment
}

// run processes the queue as Run would.
func (e *env) run() int {
	e.t.Helper()
	n, err := e.sync.RunOnce(e.ctx)
	if err != nil {
		e.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// sheet is a timesheet as Kimai serialises it, read over HTTP as the admin.
type sheet struct {
	ID          int64
	User        int64
	Begin       time.Time
	End         *time.Time
	RawBegin    string
	RawEnd      string
	Description string
	Tags        []string
}

// sheets lists the user's timesheets straight from the emulator's JSON, parsing Kimai's
// +HHMM offsets independently of the client under test.
func (e *env) sheets(user int64) []sheet {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/timesheets?user=%d&size=500&orderBy=begin&order=ASC", e.url, user), nil)
	req.Header.Set("Authorization", "Bearer demo-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("list timesheets: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("list timesheets: %d %s", resp.StatusCode, body)
	}
	var raw []struct {
		ID          int64    `json:"id"`
		User        int64    `json:"user"`
		Begin       string   `json:"begin"`
		End         *string  `json:"end"`
		Description *string  `json:"description"`
		Tags        []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		e.t.Fatalf("decode timesheets: %v: %s", err, body)
	}
	const layout = "2006-01-02T15:04:05-0700"
	var out []sheet
	for _, r := range raw {
		b, err := time.Parse(layout, r.Begin)
		if err != nil {
			e.t.Fatalf("timesheet %d begin %q: %v", r.ID, r.Begin, err)
		}
		s := sheet{ID: r.ID, User: r.User, Begin: b, RawBegin: r.Begin, Tags: r.Tags}
		if r.End != nil {
			en, err := time.Parse(layout, *r.End)
			if err != nil {
				e.t.Fatalf("timesheet %d end %q: %v", r.ID, *r.End, err)
			}
			s.End, s.RawEnd = &en, *r.End
		}
		if r.Description != nil {
			s.Description = *r.Description
		}
		out = append(out, s)
	}
	return out
}

func (e *env) one(user int64) sheet {
	e.t.Helper()
	l := e.sheets(user)
	if len(l) != 1 {
		e.t.Fatalf("want exactly one timesheet of user %d, got %d: %+v", user, len(l), l)
	}
	return l[0]
}

func (e *env) session(id string) store.Session {
	e.t.Helper()
	s, err := e.st.Session(e.ctx, id)
	if err != nil {
		e.t.Fatalf("session: %v", err)
	}
	return s
}

func wantBegin(t *testing.T, s sheet, at time.Time) {
	t.Helper()
	if !s.Begin.Equal(at) {
		t.Errorf("timesheet %d begins %s (%s), want %s", s.ID, s.Begin.UTC(), s.RawBegin, at.UTC())
	}
}

func wantEnd(t *testing.T, s sheet, at time.Time) {
	t.Helper()
	if s.End == nil {
		t.Errorf("timesheet %d is running, want it ended at %s", s.ID, at.UTC())
		return
	}
	if !s.End.Equal(at) {
		t.Errorf("timesheet %d ends %s (%s), want %s", s.ID, s.End.UTC(), s.RawEnd, at.UTC())
	}
}

func wantRunning(t *testing.T, s sheet) {
	t.Helper()
	if s.End != nil {
		t.Errorf("timesheet %d ended at %s, want it running", s.ID, s.End.UTC())
	}
}

func hasTag(s sheet, tag string) bool { return slices.Contains(s.Tags, tag) }

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s does not contain %q:\n%s", what, sub, s)
	}
}

// testLogger sends logs to the test's own output (shown on failure or with -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
