// Package store defines the DVM's storage contract: the record types the ingest, Kimai sync
// and work-diary code exchange with the database, and the Store interface they call. The
// SQLite implementation lives in pow.do/dvm/store/sqlite; a PostgreSQL one can follow by
// passing the behavioural suite in pow.do/dvm/store/storetest.
//
// All times cross this interface as time.Time and are stored in UTC; zero means "unset".
// Kimai ids start at 1, so 0 means "none".
package store

import (
	"context"
	"errors"
	"os"
	"time"
)

// Errors callers branch on. Implementations wrap them with context, so test with errors.Is.
var (
	// ErrNotFound: the record asked for does not exist (or, for web sessions, has expired).
	ErrNotFound = errors.New("not found")
	// ErrExists: a record with this key already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict: a different bundle (other ox) was already stored for this
	// worker+session+index, or the session belongs to another worker.
	ErrConflict = errors.New("conflicting record")
	// ErrInvalid: the record breaks a rule of PROTOCOL.md section 2 or of this package.
	ErrInvalid = errors.New("invalid record")
	// ErrInviteConsumed and ErrInviteExpired: the invite cannot be used any more.
	ErrInviteConsumed = errors.New("invite already consumed")
	ErrInviteExpired  = errors.New("invite expired")
	// ErrLeaseLost: the job's lease expired or was taken by another runner.
	ErrLeaseLost = errors.New("job lease lost")
)

// Roster is the set of workers and the invites that add them.
type Roster interface {
	// AddWorker adds a worker, or re-admits a removed one (clearing RemovedAt).
	// An active worker with the same key gives ErrExists.
	AddWorker(ctx context.Context, w Worker) error
	Worker(ctx context.Context, pubkey string) (Worker, error)
	// Workers lists workers by name; removed ones only if includeRemoved.
	Workers(ctx context.Context, includeRemoved bool) ([]Worker, error)
	// RemoveWorker marks the worker removed now; its data stays.
	RemoveWorker(ctx context.Context, pubkey string) error
	// MapWorker sets the worker's Kimai user id (0 unmaps).
	MapWorker(ctx context.Context, pubkey string, kimaiUserID int64) error

	AddInvite(ctx context.Context, inv Invite) error
	Invite(ctx context.Context, pubkey string) (Invite, error)
	Invites(ctx context.Context) ([]Invite, error)
	// ConsumeInvite atomically marks the invite used by workerPubkey and adds that worker to
	// the roster with the invite's name and Kimai user. ErrInviteConsumed, ErrInviteExpired,
	// ErrNotFound as the case may be.
	ConsumeInvite(ctx context.Context, invitePubkey, workerPubkey string) (Worker, error)
}

// Inbox keeps what the relay loops need to survive restarts.
type Inbox interface {
	// MarkWrapProcessed records a wrap id; marking it again keeps the first record.
	MarkWrapProcessed(ctx context.Context, w ProcessedWrap) error
	WrapProcessed(ctx context.Context, wrapID string) (bool, error)
	// PruneWraps forgets wraps seen before the given time and says how many.
	PruneWraps(ctx context.Context, seenBefore time.Time) (int64, error)
	// RelayCursor is the newest created_at handled from that relay; zero if none.
	RelayCursor(ctx context.Context, relayURL string) (time.Time, error)
	// AdvanceRelayCursor moves the cursor forward only; an older time is ignored.
	AdvanceRelayCursor(ctx context.Context, relayURL string, t time.Time) error
}

// Sessions are the worker's start/stop spans that become Kimai timesheets.
type Sessions interface {
	// StartSession records a start message. If segments created the session first, the
	// start message's project, activity, memo and start time win. Another worker's session
	// with the same id gives ErrConflict.
	StartSession(ctx context.Context, s Session) (Session, error)
	// StopSession records a stop message: state stopped, StoppedAt=end, DeclaredSegments.
	StopSession(ctx context.Context, id, worker string, end time.Time, segments int) (Session, error)
	// EndSession closes a session without a stop message (e.g. SessionExpired at the end
	// of the last proven segment).
	EndSession(ctx context.Context, id string, state SessionState, at time.Time) error
	SetSessionTimesheet(ctx context.Context, id string, kimaiTimesheetID int64) error
	Session(ctx context.Context, id string) (Session, error)
	// OpenSessions lists sessions in state open, oldest first.
	OpenSessions(ctx context.Context) ([]Session, error)
}

// Segments stores verified bundles and serves their parts back.
type Segments interface {
	// InsertSegment stores one segment in one transaction, screenshot files first.
	// The same bundle again (same worker, session, index and OX) gives inserted=false and
	// changes nothing; a different bundle for the same slot gives ErrConflict.
	InsertSegment(ctx context.Context, rec *SegmentRecord) (inserted bool, err error)
	Segment(ctx context.Context, id int64) (SegmentDetail, error)
	// SegmentAt finds a segment by its session and index.
	SegmentAt(ctx context.Context, session string, index int) (SegmentDetail, error)
	// SessionSegments lists a session's segments by index (without details).
	SessionSegments(ctx context.Context, session string) ([]Segment, error)
	// SegmentEvents returns the segment's activity events, by bucket then time.
	SegmentEvents(ctx context.Context, segmentID int64) ([]Event, error)
	// SegmentEvidence returns the raw manifest/activity/rumor/seal bytes kept for export.
	SegmentEvidence(ctx context.Context, segmentID int64) (Evidence, error)
	// SetSegmentsKimai sets the Kimai state and timesheet id (0 = none) of segments.
	SetSegmentsKimai(ctx context.Context, segmentIDs []int64, state KimaiState, timesheetID int64) error
	// OpenScreenshot opens a stored screenshot by its sha256 (hex).
	OpenScreenshot(sha256 string) (*os.File, error)
	// OpenBundle opens a kept plaintext bundle by its ox.
	OpenBundle(ox string) (*os.File, error)
	// SweepFiles removes screenshot and bundle files that no row references and that are
	// older than the given time (left over by failed inserts). It returns how many it removed.
	SweepFiles(ctx context.Context, olderThan time.Time) (int, error)
}

// Diary answers the work-diary page and API. Days are calendar days in loc; a segment
// belongs to the day in which it starts.
type Diary interface {
	// DayTotals sums segments per worker and day for days from..to inclusive (a zero Day
	// leaves that side open). worker "" means every worker. Only days with segments appear,
	// ordered by worker then day.
	DayTotals(ctx context.Context, worker string, loc *time.Location, from, to Day) ([]DayTotal, error)
	// WeekTotals is DayTotals summed per ISO week (Monday first).
	WeekTotals(ctx context.Context, worker string, loc *time.Location, from, to Day) ([]WeekTotal, error)
	// DaySegments returns a worker's segments that start on day (in loc), with all details.
	DaySegments(ctx context.Context, worker string, day Day, loc *time.Location) ([]SegmentDetail, error)
	// TimesheetSegments returns the segments booked to a Kimai timesheet, by start.
	TimesheetSegments(ctx context.Context, kimaiTimesheetID int64) ([]SegmentDetail, error)
}

// KimaiQueue is the durable outbox of Kimai API calls. Jobs of one Group run in id order:
// only the oldest pending job of a group can be leased.
type KimaiQueue interface {
	// Enqueue adds a job. If Key is set and a pending job with that key exists, that job's
	// payload is replaced instead (it keeps its place) and its id is returned.
	Enqueue(ctx context.Context, j Job) (int64, error)
	// LeaseJobs hands out up to max due jobs for leaseFor, counting an attempt for each.
	LeaseJobs(ctx context.Context, max int, leaseFor time.Duration) ([]Job, error)
	// CompleteJob marks a leased job done and records the Kimai id (0 = none). If its
	// payload was replaced while leased, it stays pending so the new payload runs too.
	CompleteJob(ctx context.Context, id int64, lease string, kimaiID int64) error
	// FailJob releases a leased job and schedules the next attempt with backoff; it returns
	// that time. permanent=true marks the job dead instead (it will not run again).
	FailJob(ctx context.Context, id int64, lease, reason string, permanent bool) (time.Time, error)
	Job(ctx context.Context, id int64) (Job, error)
	// QueueDepth counts pending jobs.
	QueueDepth(ctx context.Context) (int, error)
}

// Reviewers holds the work diary's accounts and login sessions.
type Reviewers interface {
	AddReviewer(ctx context.Context, r Reviewer) error
	// RemoveReviewer deletes the account and its web sessions.
	RemoveReviewer(ctx context.Context, username string) error
	Reviewer(ctx context.Context, username string) (Reviewer, error)
	Reviewers(ctx context.Context) ([]Reviewer, error)
	// CreateWebSession stores a session by the hash of its token (never the token).
	CreateWebSession(ctx context.Context, s WebSession) error
	// WebSession finds an unexpired session; expired or missing gives ErrNotFound.
	WebSession(ctx context.Context, tokenHash string) (WebSession, error)
	DeleteWebSession(ctx context.Context, tokenHash string) error
	// PruneWebSessions deletes expired sessions and says how many.
	PruneWebSessions(ctx context.Context) (int64, error)
}

// Store is everything the DVM keeps.
type Store interface {
	Roster
	Inbox
	Sessions
	Segments
	Diary
	KimaiQueue
	Reviewers
	Close() error
}
