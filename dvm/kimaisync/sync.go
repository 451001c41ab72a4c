// Package kimaisync turns pow.do sessions into Kimai timesheets, exactly per
// KIMAI-API.md. A start message opens a running timesheet for the worker's Kimai user;
// accepted segments extend it; a stop message, or silence for two segment lengths, ends
// it at the end of the last proven segment. Long gaps and fully idle segments split it.
//
// Every Kimai call runs from the store's durable queue: hooks only enqueue a "sync this
// session" job (coalesced per session, ordered per worker), and the job reconciles the
// session's segments with Kimai. Kimai ids are kept in the database, a Kimai outage only
// delays the jobs (retried with backoff), and a create whose answer was lost is found
// again by its pow.do tag, begin and session marker, so nothing is booked twice.
package kimaisync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"pow.do/dvm/kimai"
	"pow.do/dvm/store"
)

// Store is what the sync needs from the DVM's store (store.Store has it all).
type Store interface {
	Worker(ctx context.Context, pubkey string) (store.Worker, error)
	Session(ctx context.Context, id string) (store.Session, error)
	OpenSessions(ctx context.Context) ([]store.Session, error)
	EndSession(ctx context.Context, id string, state store.SessionState, at time.Time) error
	SetSessionTimesheet(ctx context.Context, id string, kimaiTimesheetID int64) error
	SessionSegments(ctx context.Context, session string) ([]store.Segment, error)
	Segment(ctx context.Context, id int64) (store.SegmentDetail, error)
	SetSegmentsKimai(ctx context.Context, segmentIDs []int64, state store.KimaiState, timesheetID int64) error
	store.KimaiQueue
}

// OpSyncSession is the queue job that reconciles one session with Kimai.
const OpSyncSession = "kimai.session.sync"

// Config configures a Syncer.
type Config struct {
	Store Store
	Kimai *kimai.Client
	// DiaryBaseURL is the work diary's public root; descriptions link to
	// <DiaryBaseURL>/timesheets/<Kimai timesheet id>. Empty: no link.
	DiaryBaseURL string
	// Tags are put on every timesheet (created in Kimai first). Default ["pow.do"]; the
	// first one is also used to find timesheets whose creation answer was lost.
	Tags []string
	// SegmentLength is used for sessions without segments yet (default 10 minutes); a
	// session's own segments say their length otherwise.
	SegmentLength time.Duration
	// Grace is waited beyond two segment lengths of silence before a session ends (the
	// tracker holds each segment for the review window before sending it). Default 0.
	Grace time.Duration
	// PollInterval is how often Run looks for due jobs and silent sessions (default 15 s).
	PollInterval time.Duration
	// LeaseTime bounds one job's run before another runner may take it (default 5 min).
	LeaseTime time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Syncer implements the daemon's SegmentSink and SessionSink.
type Syncer struct {
	cfg  Config
	st   Store
	k    *kimai.Client
	now  func() time.Time
	log  *slog.Logger
	wake chan struct{}

	runMu sync.Mutex // one RunOnce at a time: jobs of a worker must not interleave

	envMu  sync.Mutex
	env    kimaiEnv
	envAt  time.Time
	envSet bool
}

// kimaiEnv is what Kimai tells about itself, checked before the first write.
type kimaiEnv struct {
	AllowOverlapping bool
	HardLimit        int
}

// envTTL: Kimai's timesheet settings are re-read this often.
const envTTL = time.Hour

// New checks cfg and builds a Syncer. It does not contact Kimai.
func New(cfg Config) (*Syncer, error) {
	if cfg.Store == nil || cfg.Kimai == nil {
		return nil, errors.New("kimaisync: store and Kimai client are required")
	}
	if err := checkDiaryBase(cfg.DiaryBaseURL); err != nil {
		return nil, fmt.Errorf("kimaisync: %w", err)
	}
	if len(cfg.Tags) == 0 {
		cfg.Tags = []string{"pow.do"}
	}
	if cfg.SegmentLength <= 0 {
		cfg.SegmentLength = 10 * time.Minute
	}
	if cfg.Grace < 0 {
		return nil, errors.New("kimaisync: negative grace")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 15 * time.Second
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Syncer{cfg: cfg, st: cfg.Store, k: cfg.Kimai, now: cfg.Now, log: cfg.Logger,
		wake: make(chan struct{}, 1)}, nil
}

// syncPayload is the job's payload.
type syncPayload struct {
	Session string `json:"session"`
}

// JobKey is the queue key of a session's sync job: pending syncs of one session coalesce.
func JobKey(sessionID string) string { return OpSyncSession + ":" + sessionID }

// SyncJob is the queue job that syncs the session; jobs of one worker run in order.
// The operator's `powdo-dvm kimai retry` queues it too.
func SyncJob(sessionID, worker string) store.Job {
	payload, _ := json.Marshal(syncPayload{Session: sessionID})
	return store.Job{Op: OpSyncSession, Group: worker, Key: JobKey(sessionID), Payload: payload}
}

// Enqueue queues a sync of the session (coalesced with a pending one) and wakes Run.
func (s *Syncer) Enqueue(ctx context.Context, sessionID, worker string) error {
	_, err := s.st.Enqueue(ctx, SyncJob(sessionID, worker))
	if err != nil {
		return fmt.Errorf("queue Kimai sync of session %s: %w", sessionID, err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *Syncer) hook(ctx context.Context, what, sessionID, worker string) {
	// The message's context may end as soon as the hook returns; the enqueue must not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.Enqueue(ctx, sessionID, worker); err != nil {
		// The session stays as stored; the next segment, tick or restart queues it again.
		s.log.Error("kimai sync: cannot queue", "on", what, "session", sessionID, "err", err)
	}
}

// SessionStarted queues opening a running timesheet.
func (s *Syncer) SessionStarted(ctx context.Context, sess store.Session) {
	s.hook(ctx, "start", sess.ID, sess.Worker)
}

// SessionStopped queues ending the session's timesheet at its last proven segment.
func (s *Syncer) SessionStopped(ctx context.Context, sess store.Session) {
	s.hook(ctx, "stop", sess.ID, sess.Worker)
}

// SegmentAccepted queues extending (or splitting) the session's timesheet.
func (s *Syncer) SegmentAccepted(ctx context.Context, seg store.Segment) {
	s.hook(ctx, "segment", seg.Session, seg.Worker)
}

// Check reads Kimai's settings and the DVM user's time zone, and creates the tags. It
// refuses a Kimai whose trackingMode is not "default" (punch modes refuse begin/end).
// The daemon may call it at start-up to fail fast; jobs call it before writing.
func (s *Syncer) Check(ctx context.Context) error {
	_, err := s.kimaiEnv(ctx)
	return err
}

// ErrTrackingMode: Kimai runs in a punch mode in which the API cannot set times.
var ErrTrackingMode = errors.New("kimai trackingMode is not \"default\"")

func (s *Syncer) kimaiEnv(ctx context.Context) (kimaiEnv, error) {
	s.envMu.Lock()
	defer s.envMu.Unlock()
	if s.envSet && s.now().Sub(s.envAt) < envTTL {
		return s.env, nil
	}
	cfg, err := s.k.TimesheetConfig(ctx)
	if err != nil {
		return kimaiEnv{}, fmt.Errorf("read Kimai timesheet settings: %w", err)
	}
	if cfg.TrackingMode != "default" {
		return kimaiEnv{}, fmt.Errorf("%w: it is %q, in which Kimai refuses begin and end from the API; "+
			"set Kimai's time-tracking mode to default", ErrTrackingMode, cfg.TrackingMode)
	}
	if _, err := s.k.Location(ctx); err != nil {
		return kimaiEnv{}, err
	}
	if !s.envSet {
		// Tags unknown to Kimai are silently dropped: create them once per process.
		for _, t := range s.cfg.Tags {
			if err := s.k.EnsureTag(ctx, t); err != nil {
				return kimaiEnv{}, err
			}
		}
	}
	env := kimaiEnv{AllowOverlapping: cfg.AllowOverlapping, HardLimit: cfg.ActiveEntriesHardLimit}
	if !s.envSet || env != s.env {
		s.log.Info("kimai sync: Kimai settings", "allow_overlapping", env.AllowOverlapping,
			"active_entries_hard_limit", env.HardLimit)
	}
	s.env, s.envAt, s.envSet = env, s.now(), true
	return env, nil
}

// Run processes the queue until ctx ends: at once when a hook queues work, and every
// PollInterval for retries that came due and for sessions that fell silent. On start it
// queues every open session and every session with segments not yet in Kimai, so work
// whose hook was lost (or whose enqueue failed) is picked up.
func (s *Syncer) Run(ctx context.Context) error {
	if err := s.EnqueueStartup(ctx); err != nil {
		s.log.Error("kimai sync: queue sessions at start", "err", err)
	}
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("kimai sync: expire silent sessions", "err", err)
		}
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("kimai sync: run queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// unsyncedLister is the optional store query (store.KimaiQueueAdmin has it) for sessions
// whose segments are not all in Kimai; without it only open sessions are queued at start.
type unsyncedLister interface {
	UnsyncedSessions(ctx context.Context) ([]store.Session, error)
}

// EnqueueStartup queues a sync of every open session and, if the store can list them,
// of every session with segments still pending for Kimai (stopped ones included). A
// session whose job died is queued afresh too: a restart is a natural retry point.
func (s *Syncer) EnqueueStartup(ctx context.Context) error {
	open, err := s.st.OpenSessions(ctx)
	if err != nil {
		return fmt.Errorf("list open sessions: %w", err)
	}
	if l, ok := s.st.(unsyncedLister); ok {
		unsynced, err := l.UnsyncedSessions(ctx)
		if err != nil {
			return fmt.Errorf("list unsynced sessions: %w", err)
		}
		open = append(open, unsynced...)
	}
	seen := map[string]bool{}
	for _, o := range open {
		if seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		if err := s.Enqueue(ctx, o.ID, o.Worker); err != nil {
			return err
		}
	}
	return nil
}

// Tick ends every open session that has been silent for two segment lengths (plus
// grace) at the end of its last proven segment, and queues its sync.
func (s *Syncer) Tick(ctx context.Context) error {
	open, err := s.st.OpenSessions(ctx)
	if err != nil {
		return fmt.Errorf("expire sessions: %w", err)
	}
	now := s.now()
	for _, o := range open {
		segs, err := s.st.SessionSegments(ctx, o.ID)
		if err != nil {
			return fmt.Errorf("expire session %s: %w", o.ID, err)
		}
		if !silent(o, segs, now, s.segmentLength(segs), s.cfg.Grace) {
			continue
		}
		at := lastProvenEnd(o, segs)
		if err := s.st.EndSession(ctx, o.ID, store.SessionExpired, at); err != nil {
			return fmt.Errorf("expire session %s: %w", o.ID, err)
		}
		s.log.Info("kimai sync: session silent for two segment lengths; ended at its last proven segment",
			"session", o.ID, "at", at)
		if err := s.Enqueue(ctx, o.ID, o.Worker); err != nil {
			return err
		}
	}
	return nil
}

// lastProvenEnd is the end of the session's last active segment, or its start if none.
func lastProvenEnd(sess store.Session, segs []store.Segment) time.Time {
	at := time.Time{}
	for _, g := range segs {
		if !idle(g) && g.End.After(at) {
			at = g.End
		}
	}
	if at.IsZero() {
		at = sess.StartedAt
	}
	return at
}

// segmentLength is the session's segment length from its newest segment's policy.
func (s *Syncer) segmentLength(segs []store.Segment) time.Duration {
	var newest store.Segment
	for _, g := range segs {
		if g.Policy.SegmentSeconds > 0 && (newest.ID == 0 || g.Start.After(newest.Start)) {
			newest = g
		}
	}
	if newest.ID != 0 {
		return time.Duration(newest.Policy.SegmentSeconds) * time.Second
	}
	return s.cfg.SegmentLength
}

// RunOnce runs every due job until none is left and says how many ran. Failures are
// recorded on the jobs (retried with backoff, or dead if they can never succeed).
func (s *Syncer) RunOnce(ctx context.Context) (int, error) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	ran := 0
	for {
		jobs, err := s.st.LeaseJobs(ctx, 16, s.cfg.LeaseTime)
		if err != nil {
			return ran, fmt.Errorf("lease Kimai jobs: %w", err)
		}
		if len(jobs) == 0 {
			return ran, nil
		}
		for _, j := range jobs {
			if err := s.runJob(ctx, j); err != nil {
				return ran, err
			}
			ran++
		}
	}
}

// runJob runs one leased job and records its outcome; only store errors are returned.
func (s *Syncer) runJob(ctx context.Context, j store.Job) error {
	var err error
	switch j.Op {
	case OpSyncSession:
		var p syncPayload
		if jerr := json.Unmarshal(j.Payload, &p); jerr != nil || p.Session == "" {
			err = permanent(fmt.Errorf("job %d: bad payload %s", j.ID, j.Payload))
		} else {
			err = s.syncSession(ctx, p.Session)
		}
	default:
		err = permanent(fmt.Errorf("job %d: unknown op %q", j.ID, j.Op))
	}
	if err == nil {
		if cerr := s.st.CompleteJob(ctx, j.ID, j.Lease, 0); cerr != nil && !errors.Is(cerr, store.ErrLeaseLost) {
			return fmt.Errorf("complete Kimai job %d: %w", j.ID, cerr)
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	perm := isPermanent(err)
	next, ferr := s.st.FailJob(ctx, j.ID, j.Lease, err.Error(), perm)
	if ferr != nil && !errors.Is(ferr, store.ErrLeaseLost) {
		return fmt.Errorf("record failure of Kimai job %d: %w", j.ID, ferr)
	}
	if perm {
		s.log.Error("kimai sync: job failed for good; the next change of the session queues it again",
			"job", j.ID, "op", j.Op, "err", err)
	} else {
		s.log.Warn("kimai sync: job failed; will retry", "job", j.ID, "op", j.Op, "attempt", j.Attempts,
			"next", next, "err", err)
	}
	return nil
}

// permanentError marks a failure that retrying the same job cannot fix (Kimai refused
// the data). Temporary trouble (no answer, 5xx, the worker not yet mapped) is retried.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
