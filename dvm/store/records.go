package store

import (
	"encoding/json"
	"time"
)

// Worker is one entry of the roster.
type Worker struct {
	Pubkey      string // hex
	Name        string
	KimaiUserID int64 // 0 = not mapped
	JoinedAt    time.Time
	RemovedAt   time.Time // zero while active
}

// Invite is a one-time join key the DVM issued.
type Invite struct {
	Pubkey      string // the invite key's pubkey, hex
	Name        string
	KimaiUserID int64
	Quota       int // invites the new worker may issue in turn
	CreatedAt   time.Time
	ExpiresAt   time.Time
	ConsumedAt  time.Time // zero while unused
	ConsumedBy  string    // worker pubkey
}

// WrapOutcome says what became of a processed gift wrap.
type WrapOutcome string

const (
	WrapAccepted  WrapOutcome = "accepted"
	WrapDuplicate WrapOutcome = "duplicate"
	WrapRejected  WrapOutcome = "rejected"
	WrapIgnored   WrapOutcome = "ignored" // not for us, or a kind we do not handle
)

// ProcessedWrap is one entry of the durable set of handled wraps.
type ProcessedWrap struct {
	ID      string // wrap event id, hex
	SeenAt  time.Time
	Outcome WrapOutcome
	Reason  string
}

// SessionState is a session's life-cycle state.
type SessionState string

const (
	SessionOpen    SessionState = "open"
	SessionStopped SessionState = "stopped" // the tracker sent a stop message
	SessionExpired SessionState = "expired" // the DVM ended it after silence
)

// Session is a worker's span of work (PROTOCOL.md section 4).
type Session struct {
	ID               string // 32 hex
	Worker           string
	Project          int64
	Activity         int64
	Memo             string
	StartedAt        time.Time
	StoppedAt        time.Time // zero while open
	LastSegmentEnd   time.Time // end of the newest stored segment; zero if none
	KimaiTimesheetID int64     // current running timesheet
	State            SessionState
	Announced        bool // a start message was received (not only segments)
	DeclaredSegments int  // from the stop message; -1 unknown
}

// Bucket is an activity event type (ActivityWatch bucket kinds).
type Bucket string

const (
	BucketWindow Bucket = "window"
	BucketAFK    Bucket = "afk"
	BucketWeb    Bucket = "web"
	BucketInput  Bucket = "input"
)

// Valid reports whether b is one of the four bucket types.
func (b Bucket) Valid() bool {
	switch b {
	case BucketWindow, BucketAFK, BucketWeb, BucketInput:
		return true
	}
	return false
}

// Event is one ActivityWatch-shaped event from activity.json.
type Event struct {
	Bucket    Bucket
	Timestamp time.Time
	Duration  float64 // seconds
	Data      json.RawMessage
}

// Minute is one entry of activity.json's "minutes": counts only.
type Minute struct {
	T      time.Time
	Keys   int
	Clicks int
	Moves  int
	Active bool
}

// Screenshot is a screenshot to store: Data is written content-addressed. SHA256, if set,
// is the manifest's hash and must match Data.
type Screenshot struct {
	Name    string // "screenshots/001.jpg"
	SHA256  string
	TakenAt time.Time
	Data    []byte
}

// ScreenshotMeta is a stored screenshot as read back.
type ScreenshotMeta struct {
	Name    string
	SHA256  string
	Size    int64
	TakenAt time.Time
}

// DeletedScreenshot is a manifest "deleted" entry: removed by the worker during review.
type DeletedScreenshot struct {
	Name      string
	TakenAt   time.Time
	DeletedAt time.Time
}

// SkippedCapture is a manifest "skipped" entry: a planned screenshot not taken.
type SkippedCapture struct {
	At     time.Time
	Reason string
}

// Policy is the manifest's capture policy for the segment.
type Policy struct {
	SegmentSeconds int  `json:"segment_seconds"`
	Screenshots    int  `json:"screenshots"`
	Blur           bool `json:"blur"`
	JPEGQuality    int  `json:"jpeg_quality"`
	MaxWidth       int  `json:"max_width"`
}

// ChainStatus is the result of the session hash-chain check for a segment.
type ChainStatus string

const (
	ChainVerified ChainStatus = "verified" // prev equals the previous segment's ox (or index 0 with empty prev)
	ChainGap      ChainStatus = "gap"      // the previous segment has not arrived
	ChainBroken   ChainStatus = "broken"   // prev differs from the previous segment's ox
)

// KimaiState is a segment's place in the Kimai sync.
type KimaiState string

const (
	KimaiPending KimaiState = "pending" // not yet in Kimai
	KimaiSynced  KimaiState = "synced"  // covered by KimaiTimesheetID
	KimaiSkipped KimaiState = "skipped" // deliberately not booked (e.g. fully idle)
)

// Valid reports whether k is a known state.
func (k KimaiState) Valid() bool {
	return k == KimaiPending || k == KimaiSynced || k == KimaiSkipped
}

// Evidence is the raw material kept for evidence exports. All optional.
type Evidence struct {
	Manifest []byte // manifest.json as received
	Activity []byte // activity.json as received
	Rumor    []byte // the kind-15 rumor JSON
	Seal     []byte // the signed kind-13 seal JSON
}

// SegmentRecord is one verified bundle, mapped from manifest.json, activity.json and the
// kind-15 rumor by the ingest code (PROTOCOL.md sections 2 and 3).
type SegmentRecord struct {
	Worker     string // pubkey hex
	Session    string // 32 hex
	Index      int
	Start, End time.Time
	Project    int64
	Activity   int64
	Memo       string
	AppVersion string
	Policy     Policy
	Source     string // activity.json "source": activitywatch or builtin

	RumorID string // kind-15 rumor id
	X       string // sha256 of the ciphertext
	OX      string // sha256 of the plaintext ZIP
	Prev    string // previous segment's ox in this session; "" for index 0

	ActiveSeconds int
	ReceivedAt    time.Time // zero: now

	Events      []Event
	Minutes     []Minute
	Screenshots []Screenshot
	Deleted     []DeletedScreenshot
	Skipped     []SkippedCapture

	Evidence Evidence
	// Bundle, if set, is the plaintext ZIP, kept as a file named by OX so exports can prove
	// the chain. Its sha256 must equal OX.
	Bundle []byte
}

// Segment is a stored segment without its per-minute and per-event details.
type Segment struct {
	ID         int64
	Worker     string
	Session    string
	Index      int
	Start, End time.Time
	Project    int64
	Activity   int64
	Memo       string
	AppVersion string
	Policy     Policy
	Source     string
	RumorID    string
	X, OX      string
	Prev       string

	ActiveSeconds    int
	ReceivedAt       time.Time
	ChainStatus      ChainStatus
	KimaiState       KimaiState
	KimaiTimesheetID int64
	ScreenshotCount  int
	BundleKept       bool
}

// Usage is time spent in one app, window title or URL within a segment.
type Usage struct {
	Name    string
	Seconds float64
}

// SegmentDetail is a segment with everything the work diary shows.
type SegmentDetail struct {
	Segment
	Minutes     []Minute
	TopApps     []Usage // by window-event duration, most first
	TopTitles   []Usage
	TopURLs     []Usage
	Screenshots []ScreenshotMeta
	Deleted     []DeletedScreenshot
	Skipped     []SkippedCapture
}

// Totals are sums over a set of segments.
type Totals struct {
	Segments       int
	TrackedSeconds int64 // sum of end-start
	ActiveSeconds  int64
	Screenshots    int
	Verified       int // segments by chain status
	Gaps           int
	Broken         int
	KimaiPending   int // segments not yet in Kimai
}

// DayTotal is one worker's totals for one day.
type DayTotal struct {
	Worker string
	Day    Day
	Totals
}

// WeekTotal is one worker's totals for one ISO week; Week is its Monday.
type WeekTotal struct {
	Worker string
	Week   Day
	Totals
}

// JobState is a Kimai queue job's state.
type JobState string

const (
	JobPending JobState = "pending"
	JobDone    JobState = "done"
	JobDead    JobState = "dead" // failed permanently
)

// Job is one queued Kimai operation.
type Job struct {
	ID            int64
	Op            string // e.g. "timesheet.start"
	Group         string // jobs of a group run in order (e.g. the session id); "" = no order
	Key           string // coalescing key; "" = none
	Payload       json.RawMessage
	State         JobState
	Attempts      int
	NextAttemptAt time.Time
	Lease         string // set on leased jobs; pass back to CompleteJob/FailJob
	LeaseUntil    time.Time
	KimaiID       int64
	LastError     string
	CreatedAt     time.Time
	DoneAt        time.Time
}

// Reviewer is a work-diary account.
type Reviewer struct {
	Username     string
	PasswordHash string // encoded KDF output (argon2id/bcrypt), never a password
	CreatedAt    time.Time
}

// WebSession is a logged-in reviewer's session, keyed by the hash of its cookie token.
type WebSession struct {
	TokenHash string
	Reviewer  string
	CSRF      string // per-session CSRF secret, if the caller keeps one here
	CreatedAt time.Time
	ExpiresAt time.Time
}
