// Package session is the tracker's session state machine and segment scheduler, with its
// state in SQLite so that a crash or a reboot mid-session resumes.
//
// Work is cut into clock-aligned segments (PROTOCOL.md section 2). While a segment is
// open the scheduler takes screenshots at random moments inside it, checkpoints the
// activity recorded so far, and watches for idle time. A closed segment is held until no
// idle period can reach back over its end, then waits in the review window, and is then
// bundled, sealed and handed to the outbox in index order (each manifest's prev is the
// previous segment's ox).
//
// The scheduler does nothing on its own: the owner calls Step about once a second. All
// time comes from Deps.Now, so tests drive it with a fake clock.
package session

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/app/capture"
	"pow.do/app/segment"
	"pow.do/shared/bundle"
	"pow.do/shared/proto"
)

// Shooter takes one screenshot of every display as the segment's policy says (JPEG
// quality, width, blur), or says why not (an excluded app is focused).
type Shooter interface {
	Shoot(ctx context.Context, p proto.Policy) (capture.Result, error)
}

// Collector returns the activity recorded inside [start, end); it never fails (it falls
// back to the built-in watcher).
type Collector interface {
	Collect(ctx context.Context, start, end time.Time) activitywatch.Activity
}

// IdleSource reports how long since the last keyboard or mouse input.
type IdleSource interface {
	IdleTime() (time.Duration, error)
}

// Delivery is one sealed segment for the outbox.
type Delivery struct {
	Session SessionRow
	Segment SegmentRow
	Sealed  segment.Sealed
}

// Deps is what the scheduler works with. Now and Collector are required.
type Deps struct {
	Now       func() time.Time
	Rand      *mrand.Rand // screenshot moments; nil: seeded from crypto/rand
	Shooter   Shooter     // nil: screenshots are recorded as skipped
	Collector Collector
	Idle      IdleSource          // nil: idle time is never detected
	Policy    func() proto.Policy // the policy for new segments; nil: proto.DefaultPolicy
	// Worker is the worker's pubkey (hex); "" while no key is loaded: sealing waits.
	Worker     func() string
	AppVersion string
	// Deliver hands a sealed segment to the outbox; it must be durable when it returns
	// nil. A failure keeps the segment in review and is retried.
	Deliver func(ctx context.Context, d Delivery) error
	// ShotGate returns a reason not to take screenshots now (e.g. the disk quota is
	// reached), or "".
	ShotGate func() string
	// Changed is called after anything changed, outside the scheduler's lock.
	Changed func()
	// CheckpointEvery is how often the open segment's activity and liveness are saved
	// (default 15 s): after a crash, the segment ends at its last checkpoint or screenshot.
	CheckpointEvery time.Duration
	// GapLimit is how long Step may go uncalled before the scheduler treats it as an
	// interruption (suspend, frozen process) rather than time worked (default 30 s).
	GapLimit time.Duration
	// ThumbWidth is the width of timeline thumbnails (default 240).
	ThumbWidth int
}

// Errors the engine turns into problems for the worker.
var (
	ErrRunning      = errors.New("a session is already running")
	ErrNotRunning   = errors.New("no session is running")
	ErrPaused       = errors.New("the session is paused")
	ErrNotPaused    = errors.New("the session is not paused")
	ErrNoIdlePrompt = errors.New("no idle time is waiting for a decision")
	ErrNotInReview  = errors.New("the segment is no longer in review")
	ErrNoScreenshot = errors.New("no such screenshot")
	ErrBadChoice    = errors.New("unknown idle choice")
)

// Idle choices (the same words as engineapi.IdleChoice).
const (
	IdleKeep    = "keep"
	IdleDiscard = "discard"
	IdleStop    = "stop"
)

// Reasons recorded in a manifest's skipped list.
const (
	ReasonIdle        = "worker idle"
	ReasonInterrupted = "tracker interrupted (crash, power loss or suspend); the segment ends at its last evidence"
	ReasonLate        = "tracker busy: the screenshot moment passed before the segment ended"
	ReasonNoScreen    = "no screen to capture"
	ReasonTooMany     = "too many screenshots in one segment"
)

// StartParams opens a session.
type StartParams struct {
	Project      int64
	ProjectName  string
	Activity     int64
	ActivityName string
	Memo         string
}

// Scheduler runs sessions. It is safe for concurrent use.
type Scheduler struct {
	store *Store
	d     Deps

	mu        sync.Mutex
	cur       *SessionRow // the open (running or paused) session
	open      *SegmentRow // its open segment; nil when paused
	lastStep  time.Time
	lastInput time.Time
	sealAfter time.Time // backoff after a failed seal or delivery
	sealFails int
	sealErr   error // the last failure to seal or deliver, until one succeeds
	lastErr   error

	seenWrites atomic.Int64 // store writes already announced through Deps.Changed
}

// Open starts a scheduler on store. A session left open by a crash resumes: its
// interrupted segment is closed at its last evidence and marked interrupted, and a new
// segment opens now if the session was running.
func Open(ctx context.Context, store *Store, d Deps) (*Scheduler, error) {
	if d.Now == nil || d.Collector == nil {
		return nil, errors.New("session: Deps.Now and Deps.Collector are required")
	}
	if d.Rand == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:])
		d.Rand = mrand.New(mrand.NewPCG(uint64FromBytes(seed[:8]), uint64FromBytes(seed[8:])))
	}
	if d.Policy == nil {
		d.Policy = proto.DefaultPolicy
	}
	if d.Worker == nil {
		d.Worker = func() string { return "" }
	}
	if d.CheckpointEvery <= 0 {
		d.CheckpointEvery = 15 * time.Second
	}
	if d.GapLimit <= 0 {
		d.GapLimit = 30 * time.Second
	}
	if d.ThumbWidth <= 0 {
		d.ThumbWidth = 240
	}
	s := &Scheduler{store: store, d: d}
	if err := s.recover(ctx); err != nil {
		return nil, fmt.Errorf("resume session: %w", err)
	}
	return s, nil
}

func uint64FromBytes(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func (s *Scheduler) now() time.Time { return s.d.Now().UTC() }

func sec(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// changed tells the owner when the store was written since the last call.
func (s *Scheduler) changed() {
	w := s.store.writes.Load()
	if s.d.Changed != nil && s.seenWrites.Swap(w) != w {
		s.d.Changed()
	}
}

// Store is the scheduler's database (for read-only views).
func (s *Scheduler) Store() *Store { return s.store }

// recover closes what a crash left open.
func (s *Scheduler) recover(ctx context.Context) error {
	open, err := s.store.OpenSessions(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for i, sess := range open {
		sess := sess
		err := s.store.tx(ctx, func(tx *sql.Tx) error {
			segs, err := querySegments(ctx, tx, `WHERE session_id=? AND state=?`, sess.ID, SegOpen)
			if err != nil {
				return err
			}
			for _, seg := range segs {
				if err := s.closeInterrupted(ctx, tx, seg, seg.Checkpoint); err != nil {
					return err
				}
			}
			if i < len(open)-1 { // an older session left open: it cannot go on
				sess.State = Stopped
				sess.EndedAt, err = lastEnd(ctx, tx, sess)
				if err != nil {
					return err
				}
				return updateSession(ctx, tx, sess)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(open) == 0 {
		return nil
	}
	cur := open[len(open)-1]
	s.cur = &cur
	slog.Info("resuming the session left open", "session", cur.ID, "state", cur.State)
	if cur.State == Running {
		seg, err := s.openSegment(ctx, s.store.db, sec(now))
		if err != nil {
			return err
		}
		s.open = seg
	}
	s.lastStep = now
	return nil
}

// lastEnd is when a session's last segment ended (its start when it has none).
func lastEnd(ctx context.Context, db execer, sess SessionRow) (time.Time, error) {
	var end int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(end_at), 0) FROM segments WHERE session_id=?`, sess.ID).Scan(&end); err != nil {
		return time.Time{}, fmt.Errorf("last segment end of %s: %w", sess.ID, err)
	}
	if end == 0 {
		return sess.StartedAt, nil
	}
	return fromNS(end), nil
}

// closeInterrupted ends an open segment at its last evidence: the later of evidence
// (last checkpoint or step) and its last screenshot. Without any evidence past its start
// it is removed: it claims no time. Planned screenshots not taken are recorded as skipped.
func (s *Scheduler) closeInterrupted(ctx context.Context, tx execer, seg SegmentRow, evidence time.Time) error {
	shots, err := queryShots(ctx, tx, seg.ID, false)
	if err != nil {
		return err
	}
	end := evidence
	for _, sh := range shots {
		if sh.TakenAt.After(end) {
			end = sh.TakenAt
		}
	}
	end = sec(end)
	if end.After(seg.PlannedEnd) {
		end = seg.PlannedEnd
	}
	if !end.After(seg.Start) {
		slog.Info("dropped an interrupted segment with no evidence", "session", seg.SessionID, "index", seg.Index)
		return deleteSegment(ctx, tx, seg.ID)
	}
	fresh := s.d.Collector.Collect(ctx, seg.Start, end)
	switch {
	case fresh.Source == activitywatch.SourceActivityWatch || seg.Activity.V == 0:
		seg.Activity = fresh // ActivityWatch kept recording; the built-in watcher did not
	}
	seg.Activity = segment.Clip(seg.Activity, seg.Start, end)
	for i := seg.ShotsDone; i < len(seg.Planned); i++ {
		at := seg.Planned[i]
		if at.After(end) {
			at = end
		}
		if err := insertSkip(ctx, tx, SkipRow{SegmentID: seg.ID, At: at, Reason: ReasonInterrupted}); err != nil {
			return err
		}
	}
	seg.ShotsDone = len(seg.Planned)
	seg.End, seg.State, seg.Interrupted = end, SegHeld, true
	slog.Warn("closed an interrupted segment at its last evidence", "session", seg.SessionID, "index", seg.Index, "end", end)
	return updateSegment(ctx, tx, seg)
}

// policy returns a valid policy for new segments.
func (s *Scheduler) policy() proto.Policy {
	p := s.d.Policy()
	if err := p.Validate(); err != nil {
		slog.Warn("invalid capture policy, using the default", "err", err)
		return proto.DefaultPolicy()
	}
	return p
}

// nextIndex is one past the session's highest segment index.
func nextIndex(ctx context.Context, db execer, sessionID string) (int, error) {
	var n sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(idx) FROM segments WHERE session_id=?`, sessionID).Scan(&n); err != nil {
		return 0, fmt.Errorf("next segment index of %s: %w", sessionID, err)
	}
	if !n.Valid {
		return 0, nil
	}
	return int(n.Int64) + 1, nil
}

// openSegment opens the current session's next segment at start, which runs to the next
// clock-aligned boundary, and plans its screenshot moments.
func (s *Scheduler) openSegment(ctx context.Context, db execer, start time.Time) (*SegmentRow, error) {
	idx, err := nextIndex(ctx, db, s.cur.ID)
	if err != nil {
		return nil, err
	}
	p := s.policy()
	length := time.Duration(p.SegmentSeconds) * time.Second
	seg := &SegmentRow{
		SessionID: s.cur.ID, Index: idx, Start: start,
		PlannedEnd: Align(start, length).Add(length),
		State:      SegOpen, Policy: p, Checkpoint: start,
	}
	seg.Planned = s.plan(seg.Start, seg.PlannedEnd, length, p.Screenshots)
	if err := insertSegment(ctx, db, seg); err != nil {
		return nil, err
	}
	return seg, nil
}

// Align returns the start of the clock-aligned segment of the given length that contains
// t: boundaries are multiples of length since the Unix epoch (PROTOCOL.md section 2).
func Align(t time.Time, length time.Duration) time.Time {
	if length <= 0 {
		return t
	}
	d := time.Duration(t.UnixNano()) % length
	if d < 0 {
		d += length
	}
	return t.Add(-d)
}

// plan draws screenshot moments uniformly in [start, end−1s]. A partial segment gets a
// proportional share of the policy's count, rounded up, so screenshots per hour stay as
// the employer set them.
func (s *Scheduler) plan(start, end time.Time, length time.Duration, count int) []time.Time {
	span := end.Sub(start)
	if count <= 0 || span < time.Second {
		return nil
	}
	n := int(math.Ceil(float64(count) * float64(span) / float64(length)))
	n = min(max(n, 1), count)
	window := span - time.Second + 1
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(s.d.Rand.Int64N(int64(window))))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// Start opens a session now.
func (s *Scheduler) Start(ctx context.Context, p StartParams) (SessionRow, error) {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return SessionRow{}, ErrRunning
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	now := sec(s.now())
	sess := SessionRow{
		ID: hex.EncodeToString(id[:]), Project: p.Project, ProjectName: p.ProjectName,
		Activity: p.Activity, ActivityName: p.ActivityName, Memo: p.Memo,
		StartedAt: now, State: Running,
	}
	s.cur = &sess
	var seg *SegmentRow
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		var err error
		seg, err = s.openSegment(ctx, tx, now)
		return err
	})
	if err != nil {
		s.cur = nil
		return SessionRow{}, fmt.Errorf("start session: %w", err)
	}
	s.open, s.lastStep, s.lastInput = seg, s.now(), s.now()
	slog.Info("session started", "session", sess.ID, "project", sess.Project, "activity", sess.Activity)
	return sess, nil
}

// Pause closes the open segment now. Idle time waiting for a decision is discarded
// first: the worker is back and chose to pause.
func (s *Scheduler) Pause(ctx context.Context) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ErrNotRunning
	}
	if s.cur.State == Paused {
		return ErrPaused
	}
	now := s.now()
	if !s.cur.IdleSince.IsZero() {
		if err := s.decideLocked(ctx, IdleDiscard, now); err != nil {
			return err
		}
	}
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		if s.open != nil {
			if err := s.closeAt(ctx, tx, s.open, now); err != nil {
				return err
			}
		}
		s.cur.State = Paused
		return updateSession(ctx, tx, *s.cur)
	})
	if err != nil {
		return s.reload(ctx, fmt.Errorf("pause: %w", err))
	}
	s.open = nil
	s.lastInput = now
	return s.releaseLocked(ctx, now)
}

// Resume opens a new segment now.
func (s *Scheduler) Resume(ctx context.Context) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ErrNotRunning
	}
	if s.cur.State != Paused {
		return ErrNotPaused
	}
	now := s.now()
	var seg *SegmentRow
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		s.cur.State = Running
		if err := updateSession(ctx, tx, *s.cur); err != nil {
			return err
		}
		var err error
		seg, err = s.openSegment(ctx, tx, sec(now))
		return err
	})
	if err != nil {
		return s.reload(ctx, fmt.Errorf("resume: %w", err))
	}
	s.open, s.lastStep, s.lastInput = seg, now, now
	return nil
}

// Stop closes the open segment and the session. Idle time waiting for a decision ends
// the session where the idle time began.
func (s *Scheduler) Stop(ctx context.Context) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ErrNotRunning
	}
	now := s.now()
	if !s.cur.IdleSince.IsZero() {
		return s.decideLocked(ctx, IdleStop, now)
	}
	return s.stopLocked(ctx, now)
}

func (s *Scheduler) stopLocked(ctx context.Context, now time.Time) error {
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		end := sec(now)
		if s.open != nil {
			if err := s.closeAt(ctx, tx, s.open, now); err != nil {
				return err
			}
		} else {
			var err error
			if end, err = lastEnd(ctx, tx, *s.cur); err != nil {
				return err
			}
		}
		if end.Before(s.cur.StartedAt) {
			end = s.cur.StartedAt
		}
		s.cur.State, s.cur.EndedAt = Stopped, end
		s.cur.IdleSince, s.cur.IdleReturn = time.Time{}, time.Time{}
		return updateSession(ctx, tx, *s.cur)
	})
	if err != nil {
		return s.reload(ctx, fmt.Errorf("stop: %w", err))
	}
	slog.Info("session stopped", "session", s.cur.ID, "end", s.cur.EndedAt)
	id := s.cur.ID
	s.cur, s.open = nil, nil
	s.lastInput = now
	return s.releaseSessionLocked(ctx, id, now)
}

// reload re-reads the in-memory state from the database after a failed transaction, so
// memory never runs ahead of what is stored; it returns err.
func (s *Scheduler) reload(ctx context.Context, err error) error {
	s.cur, s.open = nil, nil
	open, lerr := s.store.OpenSessions(ctx)
	if lerr != nil || len(open) == 0 {
		return err
	}
	cur := open[len(open)-1]
	s.cur = &cur
	segs, lerr := querySegments(ctx, s.store.db, `WHERE session_id=? AND state=?`, cur.ID, SegOpen)
	if lerr == nil && len(segs) > 0 {
		seg := segs[len(segs)-1]
		s.open = &seg
	}
	return err
}

// closeAt ends the open segment at t (truncated to the second, at most its planned end):
// planned screenshots whose moment passed untaken are recorded as skipped, the activity
// is collected, and the segment is held for review. A segment of no length is removed.
func (s *Scheduler) closeAt(ctx context.Context, tx execer, seg *SegmentRow, t time.Time) error {
	end := sec(t)
	if end.After(seg.PlannedEnd) {
		end = seg.PlannedEnd
	}
	if !end.After(seg.Start) {
		return deleteSegment(ctx, tx, seg.ID)
	}
	for ; seg.ShotsDone < len(seg.Planned); seg.ShotsDone++ {
		at := seg.Planned[seg.ShotsDone]
		if !at.Before(end) {
			continue // the segment ended before this moment: nothing was planned there after all
		}
		if err := insertSkip(ctx, tx, SkipRow{SegmentID: seg.ID, At: at, Reason: ReasonLate}); err != nil {
			return err
		}
	}
	seg.End, seg.State, seg.Checkpoint = end, SegHeld, end
	seg.Activity = segment.Clip(s.d.Collector.Collect(ctx, seg.Start, end), seg.Start, end)
	return updateSegment(ctx, tx, *seg)
}

// Step does what is due now: it detects an interruption, tracks idle time, takes due
// screenshots, closes the segment at its boundary and opens the next, checkpoints,
// releases held segments into review and seals segments whose review ended.
func (s *Scheduler) Step(ctx context.Context) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var errs []error
	if s.cur != nil && s.cur.State == Running {
		if err := s.recordLocked(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	s.lastStep = now
	if err := s.releaseLocked(ctx, now); err != nil {
		errs = append(errs, err)
	}
	s.lastErr = errors.Join(errs...) // seal failures are kept in sealErr
	if err := s.sealDueLocked(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Scheduler) recordLocked(ctx context.Context, now time.Time) error {
	// A long silence means the machine slept or the process froze: that time is not
	// claimed. The open segment ends at the last step, marked interrupted.
	if s.open != nil && !s.lastStep.IsZero() && now.Sub(s.lastStep) > s.d.GapLimit {
		last := s.lastStep
		err := s.store.tx(ctx, func(tx *sql.Tx) error {
			if err := s.closeInterrupted(ctx, tx, *s.open, last); err != nil {
				return err
			}
			seg, err := s.openSegment(ctx, tx, sec(now))
			s.open = seg
			return err
		})
		if err != nil {
			return s.reload(ctx, fmt.Errorf("close the segment interrupted at %s: %w", last, err))
		}
	}
	s.trackIdleLocked(ctx, now)
	if s.open == nil {
		return nil
	}
	// Screenshots due before the boundary.
	if err := s.shootDueLocked(ctx, now); err != nil {
		return err
	}
	for s.open != nil && !now.Before(s.open.PlannedEnd) {
		boundary := s.open.PlannedEnd
		err := s.store.tx(ctx, func(tx *sql.Tx) error {
			if err := s.closeAt(ctx, tx, s.open, boundary); err != nil {
				return err
			}
			seg, err := s.openSegment(ctx, tx, boundary)
			s.open = seg
			return err
		})
		if err != nil {
			return s.reload(ctx, fmt.Errorf("close segment at %s: %w", boundary, err))
		}
		if err := s.shootDueLocked(ctx, now); err != nil {
			return err
		}
	}
	if now.Sub(s.open.Checkpoint) >= s.d.CheckpointEvery {
		seg := *s.open
		seg.Activity = segment.Clip(s.d.Collector.Collect(ctx, seg.Start, now), seg.Start, now)
		seg.Checkpoint = now
		if err := s.store.tx(ctx, func(tx *sql.Tx) error { return updateSegment(ctx, tx, seg) }); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		*s.open = seg
	}
	return nil
}

// trackIdleLocked notices the worker leaving (no input for the policy's idle_seconds)
// and coming back; the decision is then the worker's (IdleDecision).
func (s *Scheduler) trackIdleLocked(ctx context.Context, now time.Time) {
	if s.d.Idle == nil {
		s.lastInput = now
		return
	}
	idle, err := s.d.Idle.IdleTime()
	if err != nil {
		slog.Debug("idle time unknown", "err", err)
		s.lastInput = now
		return
	}
	last := now.Add(-idle)
	if last.After(s.lastInput) {
		s.lastInput = last
	}
	threshold := time.Duration(s.policy().IdleSeconds) * time.Second
	if s.open != nil {
		threshold = time.Duration(s.open.Policy.IdleSeconds) * time.Second
	}
	switch {
	case s.cur.IdleSince.IsZero() && idle >= threshold:
		s.cur.IdleSince = sec(last)
		slog.Info("worker idle", "since", s.cur.IdleSince)
	case !s.cur.IdleSince.IsZero() && s.cur.IdleReturn.IsZero() && sec(last).After(s.cur.IdleSince):
		s.cur.IdleReturn = sec(last)
		slog.Info("worker back after idle time", "since", s.cur.IdleSince, "back", s.cur.IdleReturn)
	default:
		return
	}
	if err := s.store.tx(ctx, func(tx *sql.Tx) error { return updateSession(ctx, tx, *s.cur) }); err != nil {
		slog.Error("save idle state", "err", err)
	}
}

// IdleNow reports the idle period waiting for a decision: since is the last input
// before it, back the first input after it (zero while the worker is still away).
func (s *Scheduler) IdleNow() (since, back time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.IdleSince.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	return s.cur.IdleSince, s.cur.IdleReturn, true
}

func (s *Scheduler) shootDueLocked(ctx context.Context, now time.Time) error {
	seg := s.open
	for seg.ShotsDone < len(seg.Planned) && !seg.Planned[seg.ShotsDone].After(now) && now.Before(seg.PlannedEnd) {
		if err := s.shootLocked(ctx, seg, now); err != nil {
			return err
		}
	}
	return nil
}

// shootLocked takes one planned screenshot (every display) or records why not.
func (s *Scheduler) shootLocked(ctx context.Context, seg *SegmentRow, now time.Time) error {
	reason := ""
	if s.d.ShotGate != nil {
		reason = s.d.ShotGate()
	}
	var res capture.Result
	switch {
	case !s.cur.IdleSince.IsZero() && s.cur.IdleReturn.IsZero():
		reason = ReasonIdle
	case reason != "":
	case s.d.Shooter == nil:
		reason = ReasonNoScreen
	default:
		var err error
		res, err = s.d.Shooter.Shoot(ctx, seg.Policy)
		switch {
		case err != nil:
			slog.Warn("screenshot failed", "err", err)
			reason = "capture failed: " + err.Error()
		case res.Skipped != nil:
			reason = res.Skipped.Reason
		case len(res.Shots) == 0:
			reason = ReasonNoScreen
		case seg.ShotSeq+len(res.Shots) > 999:
			reason = ReasonTooMany
		}
	}
	next := *seg
	next.ShotsDone++
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		if reason != "" {
			if err := insertSkip(ctx, tx, SkipRow{SegmentID: seg.ID, At: now, Reason: segment.Reason(reason)}); err != nil {
				return err
			}
		}
		if reason == "" {
			for _, sh := range res.Shots {
				next.ShotSeq++
				thumb, err := Thumbnail(sh.JPEG, s.d.ThumbWidth)
				if err != nil {
					slog.Warn("thumbnail", "err", err)
				}
				row := ShotRow{SegmentID: seg.ID, Name: bundle.ScreenshotName(next.ShotSeq), TakenAt: now,
					Width: sh.Width, Height: sh.Height, JPEG: sh.JPEG, Thumb: thumb}
				if err := insertShot(ctx, tx, row); err != nil {
					return err
				}
			}
		}
		return updateSegment(ctx, tx, next)
	})
	if err != nil {
		return fmt.Errorf("record screenshot: %w", err)
	}
	*seg = next
	return nil
}

// releaseLocked moves held segments into review once no idle period can reach back over
// their end: input came after it, or the session is not running.
func (s *Scheduler) releaseLocked(ctx context.Context, now time.Time) error {
	held, err := s.store.SegmentsInState(ctx, SegHeld)
	if err != nil {
		return err
	}
	for _, seg := range held {
		if s.cur != nil && seg.SessionID == s.cur.ID && s.cur.State == Running {
			if !s.cur.IdleSince.IsZero() || s.lastInput.Before(seg.End) {
				continue
			}
		}
		if err := s.toReview(ctx, seg, now); err != nil {
			return err
		}
	}
	return nil
}

// releaseSessionLocked moves every held segment of a session into review.
func (s *Scheduler) releaseSessionLocked(ctx context.Context, sessionID string, now time.Time) error {
	held, err := querySegments(ctx, s.store.db, `WHERE session_id=? AND state=? ORDER BY idx`, sessionID, SegHeld)
	if err != nil {
		return err
	}
	for _, seg := range held {
		if err := s.toReview(ctx, seg, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scheduler) toReview(ctx context.Context, seg SegmentRow, now time.Time) error {
	seg.State = SegReviewing
	seg.ReviewUntil = now.Add(time.Duration(reviewSeconds(seg)) * time.Second)
	if err := s.store.tx(ctx, func(tx *sql.Tx) error { return updateSegment(ctx, tx, seg) }); err != nil {
		return fmt.Errorf("start review: %w", err)
	}
	return nil
}

// reviewSeconds is the review window of the policy in force when the segment opened.
func reviewSeconds(seg SegmentRow) int { return seg.Policy.ReviewSeconds }

// sealDueLocked seals, in index order, segments whose review window has ended.
func (s *Scheduler) sealDueLocked(ctx context.Context, now time.Time) error {
	if now.Before(s.sealAfter) || s.d.Deliver == nil {
		return nil
	}
	worker := s.d.Worker()
	if worker == "" {
		return nil // the key is locked: segments wait, safe in the store
	}
	due, err := querySegments(ctx, s.store.db, `WHERE state=? AND review_until<=? ORDER BY session_id, idx`, SegReviewing, ns(now))
	if err != nil {
		return err
	}
	for _, seg := range due {
		if err := s.sealOne(ctx, seg, worker, now); err != nil {
			s.sealFails++
			backoff := time.Duration(1<<min(s.sealFails, 6)) * time.Second
			s.sealAfter = now.Add(backoff)
			s.sealErr = err
			return err
		}
		s.sealFails, s.sealErr = 0, nil
	}
	return nil
}

// errChainWait means the previous segment is not sealed yet.
var errChainWait = errors.New("previous segment not sealed yet")

func (s *Scheduler) sealOne(ctx context.Context, seg SegmentRow, worker string, now time.Time) error {
	prev := ""
	if seg.Index > 0 {
		ps, err := querySegments(ctx, s.store.db, `WHERE session_id=? AND idx=?`, seg.SessionID, seg.Index-1)
		if err != nil {
			return err
		}
		if len(ps) != 1 {
			return fmt.Errorf("seal segment %s/%d: the previous segment is missing", seg.SessionID, seg.Index)
		}
		if ps[0].State != SegSealed {
			return nil // sealed in a later step, after its predecessor
		}
		prev = ps[0].OX
	}
	sess, err := s.store.Session(ctx, seg.SessionID)
	if err != nil {
		return err
	}
	in, err := s.input(ctx, sess, seg, worker, prev)
	if err != nil {
		return err
	}
	sealed, err := segment.Seal(in)
	if err != nil {
		return err
	}
	seg.Prev, seg.OX, seg.X, seg.State, seg.SealedAt = prev, sealed.OX, sealed.X, SegSealed, now
	if err := s.d.Deliver(ctx, Delivery{Session: sess, Segment: seg, Sealed: sealed}); err != nil {
		return fmt.Errorf("hand segment %s/%d to the outbox: %w", seg.SessionID, seg.Index, err)
	}
	err = s.store.tx(ctx, func(tx *sql.Tx) error {
		if err := updateSegment(ctx, tx, seg); err != nil {
			return err
		}
		// The outbox holds the bundle now; keep only the thumbnails.
		if _, err := tx.ExecContext(ctx, `UPDATE screenshots SET jpeg=NULL WHERE segment_id=?`, seg.ID); err != nil {
			return fmt.Errorf("drop sealed screenshots: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record sealed segment %s/%d: %w", seg.SessionID, seg.Index, err)
	}
	slog.Info("segment sealed", "session", seg.SessionID, "index", seg.Index, "ox", sealed.OX, "bytes", len(sealed.Ciphertext))
	return nil
}

// input gathers a segment's bundle input from the store.
func (s *Scheduler) input(ctx context.Context, sess SessionRow, seg SegmentRow, worker, prev string) (segment.Input, error) {
	shots, err := s.store.Shots(ctx, seg.ID, true)
	if err != nil {
		return segment.Input{}, err
	}
	skips, err := s.store.Skips(ctx, seg.ID)
	if err != nil {
		return segment.Input{}, err
	}
	in := segment.Input{
		Worker: worker, Session: sess.ID, Index: seg.Index, Start: seg.Start, End: seg.End,
		Project: sess.Project, Activity: sess.Activity, Memo: sess.Memo, AppVersion: s.d.AppVersion,
		Policy: bundle.Policy{SegmentSeconds: seg.Policy.SegmentSeconds, Screenshots: seg.Policy.Screenshots,
			Blur: seg.Policy.Blur, JPEGQuality: seg.Policy.JPEGQuality, MaxWidth: seg.Policy.MaxWidth},
		Prev: prev, Recorded: seg.Activity,
	}
	if in.Recorded.V == 0 {
		in.Recorded = activitywatch.Activity{V: 1, Source: activitywatch.SourceBuiltin}
	}
	for _, sh := range shots {
		if !sh.DeletedAt.IsZero() {
			in.Deleted = append(in.Deleted, bundle.Deleted{Name: sh.Name, TakenAt: sh.TakenAt, DeletedAt: sh.DeletedAt})
			continue
		}
		if len(sh.JPEG) == 0 {
			return segment.Input{}, fmt.Errorf("segment %s/%d: screenshot %s has no image", sess.ID, seg.Index, sh.Name)
		}
		in.Shots = append(in.Shots, segment.Shot{Name: sh.Name, TakenAt: sh.TakenAt, JPEG: sh.JPEG})
	}
	for _, sk := range skips {
		in.Skipped = append(in.Skipped, bundle.Skipped{At: sk.At, Reason: sk.Reason})
	}
	return in, nil
}

// DeleteScreenshot removes a screenshot from a segment still held or in review. The
// image is gone at once; the deletion is recorded in the manifest.
func (s *Scheduler) DeleteScreenshot(ctx context.Context, segmentID int64, name string) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	seg, err := s.store.Segment(ctx, segmentID)
	if err != nil {
		return err
	}
	if seg.State != SegHeld && seg.State != SegReviewing {
		return ErrNotInReview
	}
	now := s.now()
	err = s.store.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE screenshots SET deleted_at=?, jpeg=NULL, thumb=NULL
			WHERE segment_id=? AND name=? AND deleted_at=0 AND taken_at<=?`, ns(sec(now)), segmentID, name, ns(now))
		if err != nil {
			return fmt.Errorf("delete screenshot %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%s in segment %d: %w", name, segmentID, ErrNoScreenshot)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slog.Info("screenshot deleted in review", "session", seg.SessionID, "index", seg.Index, "name", name)
	return nil
}

// IdleDecision answers the idle prompt: keep the idle time, discard it, or discard it
// and stop the session where it began.
func (s *Scheduler) IdleDecision(ctx context.Context, choice string) error {
	defer s.changed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if choice != IdleKeep && choice != IdleDiscard && choice != IdleStop {
		return fmt.Errorf("%w %q", ErrBadChoice, choice)
	}
	if s.cur == nil || s.cur.IdleSince.IsZero() {
		return ErrNoIdlePrompt
	}
	return s.decideLocked(ctx, choice, s.now())
}

func (s *Scheduler) decideLocked(ctx context.Context, choice string, now time.Time) error {
	since, back := s.cur.IdleSince, s.cur.IdleReturn
	if back.IsZero() {
		back = sec(now) // decided from the keyboard: the worker is back now
	}
	if back.Before(since) {
		back = since
	}
	slog.Info("idle decision", "choice", choice, "since", since, "back", back)
	switch choice {
	case IdleKeep:
		s.cur.IdleSince, s.cur.IdleReturn = time.Time{}, time.Time{}
		if err := s.store.tx(ctx, func(tx *sql.Tx) error { return updateSession(ctx, tx, *s.cur) }); err != nil {
			return err
		}
		s.lastInput = now
		return s.releaseSessionLocked(ctx, s.cur.ID, now)
	case IdleDiscard:
		if err := s.cutLocked(ctx, since, back, now); err != nil {
			return s.reload(ctx, fmt.Errorf("discard idle time: %w", err))
		}
		s.lastInput = now
		return s.releaseLocked(ctx, now)
	default: // stop
		if err := s.cutLocked(ctx, since, time.Time{}, now); err != nil {
			return s.reload(ctx, fmt.Errorf("discard idle time: %w", err))
		}
		return s.stopLocked(ctx, since)
	}
}

// cutLocked removes [since, back) from the session's segments not yet sealed (back zero:
// everything from since on). A segment is cut short, moved to start at back, split in
// two, or removed; screenshots and skips inside the cut go with the time; the remaining
// segments are renumbered so the chain has no gap.
func (s *Scheduler) cutLocked(ctx context.Context, since, back, now time.Time) error {
	toEnd := back.IsZero()
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		all, err := querySegments(ctx, tx, `WHERE session_id=? ORDER BY idx`, s.cur.ID)
		if err != nil {
			return err
		}
		dropShots := func(id int64, from, to time.Time) error {
			q := `DELETE FROM screenshots WHERE segment_id=? AND taken_at>=?`
			q2 := `DELETE FROM skipped WHERE segment_id=? AND at>=?`
			args := []any{id, ns(from)}
			if !to.IsZero() {
				q += ` AND taken_at<?`
				q2 += ` AND at<?`
				args = append(args, ns(to))
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("drop idle screenshots: %w", err)
			}
			if _, err := tx.ExecContext(ctx, q2, args...); err != nil {
				return fmt.Errorf("drop idle skips: %w", err)
			}
			return nil
		}
		for _, seg := range all {
			open := seg.State == SegOpen
			if seg.State == SegSealed || (!open && !seg.End.After(since)) {
				continue
			}
			end := seg.End
			if open {
				end = seg.PlannedEnd
			}
			switch {
			case seg.Start.Before(since):
				if !toEnd && end.After(back) { // the idle time lies inside: keep [back, end) as a new segment
					tail := seg
					tail.ID, tail.Start = 0, back
					if err := insertSegment(ctx, tx, &tail); err != nil {
						return err
					}
					for _, q := range []string{`UPDATE screenshots SET segment_id=? WHERE segment_id=? AND taken_at>=?`,
						`UPDATE skipped SET segment_id=? WHERE segment_id=? AND at>=?`} {
						if _, err := tx.ExecContext(ctx, q, tail.ID, seg.ID, ns(back)); err != nil {
							return fmt.Errorf("split segment: %w", err)
						}
					}
				}
				if err := dropShots(seg.ID, since, time.Time{}); err != nil {
					return err
				}
				if open {
					seg.Activity = segment.Clip(s.d.Collector.Collect(ctx, seg.Start, since), seg.Start, since)
					seg.ShotsDone = len(seg.Planned)
				}
				seg.End, seg.State, seg.Checkpoint = since, SegHeld, since
				if err := updateSegment(ctx, tx, seg); err != nil {
					return err
				}
			case toEnd || (!open && !end.After(back)):
				if err := deleteSegment(ctx, tx, seg.ID); err != nil {
					return err
				}
			case seg.Start.Before(back):
				if err := dropShots(seg.ID, seg.Start, back); err != nil {
					return err
				}
				seg.Start = back
				if seg.Checkpoint.Before(back) {
					seg.Checkpoint = back
				}
				if err := updateSegment(ctx, tx, seg); err != nil {
					return err
				}
			}
		}
		// Renumber by start time; sealed segments come first and keep their numbers.
		rest, err := querySegments(ctx, tx, `WHERE session_id=? ORDER BY start`, s.cur.ID)
		if err != nil {
			return err
		}
		for i, seg := range rest {
			if seg.Index == i {
				continue
			}
			if seg.State == SegSealed {
				return fmt.Errorf("renumber would change sealed segment %d", seg.Index)
			}
			seg.Index = i
			if err := updateSegment(ctx, tx, seg); err != nil {
				return err
			}
		}
		s.cur.IdleSince, s.cur.IdleReturn = time.Time{}, time.Time{}
		return updateSession(ctx, tx, *s.cur)
	})
	if err != nil {
		return err
	}
	s.open = nil
	opens, err := querySegments(ctx, s.store.db, `WHERE session_id=? AND state=?`, s.cur.ID, SegOpen)
	if err != nil {
		return err
	}
	if len(opens) > 0 {
		seg := opens[len(opens)-1]
		s.open = &seg
	}
	return nil
}

// Snapshot is the scheduler's state for the main screen.
type Snapshot struct {
	At      time.Time
	Session *SessionRow // nil when no session is open
	Open    *SegmentRow // the segment being recorded; nil when paused or stopped
	// ShotsTaken counts the open segment's screenshots so far.
	ShotsTaken int
	// Elapsed is the session's recorded time: its segments, pauses excluded.
	Elapsed time.Duration
	// LastErr is the last Step's error, or the last failure to seal or deliver until a
	// delivery succeeds; nil when all is well.
	LastErr error
}

// Snapshot returns the current state.
func (s *Scheduler) Snapshot(ctx context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{At: s.now(), LastErr: errors.Join(s.lastErr, s.sealErr)}
	if s.cur == nil {
		return snap, nil
	}
	sess := *s.cur
	snap.Session = &sess
	var closed int64
	if err := s.store.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(end_at - start), 0) FROM segments WHERE session_id=? AND state != ?`,
		sess.ID, SegOpen).Scan(&closed); err != nil {
		return Snapshot{}, fmt.Errorf("session time: %w", err)
	}
	snap.Elapsed = time.Duration(closed)
	if s.open != nil {
		seg := *s.open
		snap.Open = &seg
		if d := snap.At.Sub(seg.Start); d > 0 {
			snap.Elapsed += d
		}
		if err := s.store.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM screenshots WHERE segment_id=? AND deleted_at=0`, seg.ID).Scan(&snap.ShotsTaken); err != nil {
			return Snapshot{}, fmt.Errorf("count screenshots: %w", err)
		}
	}
	return snap, nil
}
