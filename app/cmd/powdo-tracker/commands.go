package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"pow.do/app/engine"
	"pow.do/app/engineapi"
)

// StatusName is the snapshot a running tracker keeps for `powdo-tracker status`.
const StatusName = "status.json"

// snapshot is what status.json holds.
type snapshot struct {
	WrittenAt time.Time               `json:"written_at"`
	PID       int                     `json:"pid"`
	State     engineapi.State         `json:"state"`
	Today     []engineapi.SegmentView `json:"today"`
}

func openEngine(c common, manual bool) (*engine.Engine, error) {
	cfg := engine.Config{DataDir: c.dataDir, NoDesktop: c.noDesktop, Manual: manual, IdleDefault: engineapi.IdleChoice(c.idle)}
	return engine.New(cfg)
}

func cmdJoin(ctx context.Context, args []string, e env) error {
	var c common
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	c.register(fs)
	wait := fs.Duration("catalogue-wait", 30*time.Second, "how long to wait for the employer's catalogue")
	pos, err := parse(fs, args, e)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"join needs exactly one invite link"}
	}
	if err := c.resolve(e); err != nil {
		return err
	}
	pass, err := c.passphrase(e)
	if err != nil {
		return err
	}
	c.noDesktop = true
	eng, err := engine.New(engine.Config{DataDir: c.dataDir, NoDesktop: true, Manual: true, CatalogueWait: *wait})
	if err != nil {
		return err
	}
	defer eng.Close()
	res, err := eng.Join(ctx, pos[0], pass)
	if err != nil {
		return err
	}
	line(e.stdout, "joined", "worker", res.OwnNpub, "dvm", res.DVMNpub, "fingerprint", res.Fingerprint, "name", res.WorkerName)
	cat, err := eng.Catalogue(ctx)
	if err != nil {
		line(e.stdout, "catalogue", "state", "pending", "note", "it arrives when the employer's daemon answers; `run` waits for it")
		return nil
	}
	printCatalogue(e.stdout, cat)
	return nil
}

func printCatalogue(w io.Writer, cat engineapi.Catalogue) {
	p := cat.Policy
	line(w, "catalogue", "state", "received", "projects", len(cat.Projects), "activities", len(cat.Activities),
		"segment_seconds", p.SegmentSeconds, "screenshots", p.Screenshots, "review_seconds", p.ReviewSeconds, "idle_seconds", p.IdleSeconds)
	for _, pr := range cat.Projects {
		line(w, "project", "id", pr.ID, "name", pr.Name, "customer", pr.Customer)
	}
	for _, a := range cat.Activities {
		project := "any"
		if a.Project != nil {
			project = fmt.Sprint(*a.Project)
		}
		line(w, "activity", "id", a.ID, "name", a.Name, "project", project)
	}
}

func cmdRun(ctx context.Context, args []string, e env) error {
	var c common
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.register(fs)
	project := fs.Int("project", 0, "Kimai project `id` from the catalogue")
	activity := fs.Int("activity", 0, "Kimai activity `id` from the catalogue")
	memo := fs.String("memo", "", "what you are working on (at most 1000 bytes)")
	fs.StringVar(&c.idle, "idle", "", "answer to idle prompts: keep, discard or stop ($POWDO_IDLE; default discard)")
	fs.BoolVar(&c.noDesktop, "no-desktop", false, "do not open the X display (no screenshots, window titles or idle time)")
	every := fs.Duration("status-every", 30*time.Second, "how often to print a status line")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until SIGINT/SIGTERM)")
	drain := fs.Duration("drain", 10*time.Minute, "after stopping, how long to wait for the session's segments to be delivered")
	catWait := fs.Duration("catalogue-wait", time.Minute, "how long to wait for the catalogue before starting")
	pos, err := parse(fs, args, e)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", pos)}
	}
	if err := c.resolve(e); err != nil {
		return err
	}
	if c.idle == "" {
		c.idle = string(engineapi.IdleDiscard) // nobody to ask: idle time is not claimed
	}
	pass, err := c.passphrase(e)
	if err != nil {
		return err
	}
	eng, err := openEngine(c, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.Unlock(ctx, pass); err != nil {
		return err
	}
	r := &runner{eng: eng, w: e.stdout, dir: c.dataDir, seen: map[string]engineapi.SegmentState{}}
	defer eng.Subscribe(r.event)()

	st, err := eng.State(ctx)
	if err != nil {
		return err
	}
	if !st.Onboarded {
		return engineapi.Fail(engineapi.ProblemNotReady, "This device has not joined an employer yet.", "Run `powdo-tracker join LINK` first.", nil)
	}
	var sessionID string
	if st.Running {
		sessionID = st.Session.ID
		line(e.stdout, "resumed", "session", sessionID, "project", st.Session.ProjectID, "activity", st.Session.ActivityID, "paused", st.Paused)
		if st.Paused {
			if err := eng.Resume(ctx); err != nil {
				return err
			}
		}
	} else {
		if *project <= 0 || *activity <= 0 {
			return usageError{"run needs --project and --activity (ids from the catalogue: see `powdo-tracker join`)"}
		}
		if err := waitCatalogue(ctx, eng, *catWait); err != nil {
			return err
		}
		if err := eng.Start(ctx, *project, *activity, *memo); err != nil {
			return err
		}
		st, err = eng.State(ctx)
		if err != nil {
			return err
		}
		sessionID = st.Session.ID
		line(e.stdout, "started", "session", sessionID, "project", *project, "activity", *activity, "source", st.Source)
	}
	r.status(ctx)

	var stopAt <-chan time.Time
	if *duration > 0 {
		t := time.NewTimer(*duration)
		defer t.Stop()
		stopAt = t.C
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	running := true
	for running {
		select {
		case <-ctx.Done():
			running = false
		case <-stopAt:
			running = false
		case <-tick.C:
			r.status(ctx)
		}
	}

	// A second signal while draining ends at once.
	dctx, dstop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer dstop()
	if err := eng.Stop(dctx); err != nil && engineapi.AsProblem(err).Code != engineapi.ProblemNotReady {
		return err
	}
	line(e.stdout, "stopped", "session", sessionID)
	dctx, cancel := context.WithTimeout(dctx, *drain)
	defer cancel()
	return r.drain(dctx, sessionID, *every)
}

// waitCatalogue waits until the catalogue is there, asking the DVM once.
func waitCatalogue(ctx context.Context, eng *engine.Engine, wait time.Duration) error {
	if _, err := eng.Catalogue(ctx); err == nil {
		return nil
	}
	if err := eng.RefreshCatalogue(ctx); err != nil {
		return err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			_, err := eng.Catalogue(ctx)
			return err
		case <-poll.C:
			if _, err := eng.Catalogue(ctx); err == nil {
				return nil
			}
		}
	}
}

// runner prints progress and keeps status.json.
type runner struct {
	eng *engine.Engine
	w   io.Writer
	dir string

	mu   sync.Mutex
	seen map[string]engineapi.SegmentState
}

// event prints a segment line whenever a segment changes state.
func (r *runner) event(ev engineapi.Event) {
	if ev.Kind != engineapi.EventSegment || ev.Segment == nil {
		return
	}
	v := *ev.Segment
	r.mu.Lock()
	same := r.seen[v.ID] == v.State
	r.seen[v.ID] = v.State
	r.mu.Unlock()
	if !same {
		printSegment(r.w, v)
	}
}

func printSegment(w io.Writer, v engineapi.SegmentView) {
	kv := []any{"session", v.SessionID, "index", v.Index, "state", v.State, "start", v.Start, "end", v.End,
		"screenshots", v.Screenshots, "deleted", v.Deleted, "active_seconds", v.ActiveSeconds}
	if v.Reason != "" {
		kv = append(kv, "reason", v.Reason)
	}
	if v.State == engineapi.SegmentRejected {
		kv = append(kv, "permanent", v.Permanent)
	}
	line(w, "segment", kv...)
}

// status prints the status line and refreshes status.json.
func (r *runner) status(ctx context.Context) {
	st, err := r.eng.State(ctx)
	if err != nil {
		line(r.w, "error", "message", err.Error())
		return
	}
	printState(r.w, st)
	today, err := r.eng.Today(ctx)
	if err != nil {
		today = nil
	}
	for _, v := range today {
		r.mu.Lock()
		changed := r.seen[v.ID] != v.State
		r.seen[v.ID] = v.State
		r.mu.Unlock()
		if changed {
			printSegment(r.w, v)
		}
	}
	snap := snapshot{WrittenAt: time.Now().UTC(), PID: os.Getpid(), State: st, Today: today}
	if err := writeSnapshot(r.dir, snap); err != nil {
		line(r.w, "error", "message", err.Error())
	}
}

func printState(w io.Writer, st engineapi.State) {
	relay := "none"
	if len(st.Network.Relays) > 0 {
		relay = string(st.Network.Relays[0].Status)
	}
	kv := []any{"running", st.Running, "paused", st.Paused, "elapsed", st.ElapsedSeconds, "source", st.Source,
		"relay", relay, "pending", st.Network.Pending}
	if st.Segment != nil {
		kv = append(kv, "segment", st.Segment.Index, "remaining", st.Segment.RemainingSeconds,
			"screenshots", fmt.Sprintf("%d/%d", st.Segment.ScreenshotsTaken, st.Segment.ScreenshotsPlanned),
			"active_seconds", st.Activity.ActiveSeconds, "keys", st.Activity.Keys, "clicks", st.Activity.Clicks)
	}
	if st.Idle != nil {
		kv = append(kv, "idle_since", st.Idle.Since, "idle_seconds", st.Idle.IdleSeconds)
	}
	if st.Error != nil {
		kv = append(kv, "problem", st.Error.Code, "message", st.Error.Message, "action", st.Error.Action)
	}
	line(w, "status", kv...)
}

// drain waits until every segment of the session is settled (accepted or rejected).
func (r *runner) drain(ctx context.Context, sessionID string, every time.Duration) error {
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	last := time.Now()
	for {
		today, err := r.eng.Today(ctx)
		if err != nil {
			return err
		}
		total, settled, accepted := 0, 0, 0
		for _, v := range today {
			if v.SessionID != sessionID {
				continue
			}
			total++
			switch v.State {
			case engineapi.SegmentAccepted:
				settled++
				accepted++
			case engineapi.SegmentRejected:
				if v.Permanent {
					settled++
				}
			}
		}
		if settled == total {
			r.status(context.Background())
			line(r.w, "done", "session", sessionID, "segments", total, "accepted", accepted)
			return nil
		}
		if time.Since(last) >= every {
			r.status(ctx)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			r.status(context.Background())
			line(r.w, "done", "session", sessionID, "segments", total, "accepted", accepted, "undelivered", total-settled,
				"note", "undelivered segments stay in the outbox and go out on the next run")
			return nil
		case <-poll.C:
		}
	}
}

func writeSnapshot(dir string, s snapshot) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", StatusName, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-status-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", StatusName, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", StatusName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", StatusName, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, StatusName)); err != nil {
		return fmt.Errorf("write %s: %w", StatusName, err)
	}
	return nil
}

// cmdStatus prints what the running tracker last reported. It never opens the engine:
// that would resume (and so change) a session another process owns.
func cmdStatus(ctx context.Context, args []string, e env) error {
	var c common
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	c.register(fs)
	pos, err := parse(fs, args, e)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", pos)}
	}
	if err := c.resolve(e); err != nil {
		return err
	}
	live := engine.Busy(c.dataDir)
	b, err := os.ReadFile(filepath.Join(c.dataDir, StatusName))
	if errors.Is(err, os.ErrNotExist) {
		line(e.stdout, "tracker", "live", live, "data_dir", c.dataDir, "note", "no run has reported yet")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("read status %s: %w", filepath.Join(c.dataDir, StatusName), err)
	}
	line(e.stdout, "tracker", "live", live, "data_dir", c.dataDir, "reported_at", s.WrittenAt, "pid", s.PID)
	printState(e.stdout, s.State)
	for _, v := range s.Today {
		printSegment(e.stdout, v)
	}
	return nil
}
