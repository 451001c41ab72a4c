package engineapi

import "time"

// Source says where activity data comes from.
type Source string

const (
	SourceActivityWatch Source = "activitywatch" // the local ActivityWatch server
	SourceBuiltin       Source = "builtin"       // the tracker's own watcher
	SourceNone          Source = "none"          // nothing is recorded (not running, or the preview engine)
)

// State is a snapshot of the main screen. Times are UTC and travel as RFC 3339
// strings (the ts_type tags tell Wails' TypeScript generator so); durations are
// whole seconds.
type State struct {
	// Preview is true for the in-memory preview engine, which records nothing.
	Preview bool `json:"preview"`
	// Onboarded is true once this device has joined an employer.
	Onboarded bool `json:"onboarded"`
	// Locked is true when a key is stored but not yet unlocked with its passphrase.
	Locked bool `json:"locked"`
	// WorkerName is the name the employer gave this worker (from the invite or catalogue).
	WorkerName string `json:"worker_name"`

	Running bool `json:"running"`
	Paused  bool `json:"paused"`
	// Session is the open session, nil when not running.
	Session *Session `json:"session"`
	// Segment is the segment being recorded, nil when stopped or paused.
	Segment *Segment `json:"segment"`
	// ElapsedSeconds is the session's recorded time so far (pauses excluded), as of At.
	ElapsedSeconds int64 `json:"elapsed_seconds"`
	// Activity measures the current segment so far.
	Activity ActivityMeter `json:"activity"`
	Source   Source        `json:"source"`

	Network Network `json:"network"`
	// Idle is set while the engine waits for the worker's IdleDecision.
	Idle *IdlePrompt `json:"idle"`
	// Error is the most pressing problem the worker should act on, nil when all is well.
	Error *Problem `json:"error"`

	// At is when this snapshot was taken; the UI counts elapsed time and the
	// segment countdown forward from it.
	At time.Time `json:"at" ts_type:"string"`
}

// Session is an open work session.
type Session struct {
	ID           string    `json:"id"` // 32 hex chars
	ProjectID    int       `json:"project_id"`
	ProjectName  string    `json:"project_name"`
	ActivityID   int       `json:"activity_id"`
	ActivityName string    `json:"activity_name"`
	Memo         string    `json:"memo"`
	StartedAt    time.Time `json:"started_at" ts_type:"string"`
}

// Segment is the segment being recorded.
type Segment struct {
	Index int       `json:"index"`
	Start time.Time `json:"start" ts_type:"string"`
	End   time.Time `json:"end" ts_type:"string"` // planned end: the next clock-aligned boundary
	// RemainingSeconds is End minus State.At.
	RemainingSeconds int64 `json:"remaining_seconds"`
	// ScreenshotsPlanned and ScreenshotsTaken count this segment's screenshots.
	ScreenshotsPlanned int `json:"screenshots_planned"`
	ScreenshotsTaken   int `json:"screenshots_taken"`
}

// ActivityMeter summarises input in the current segment: counts only, never keys.
type ActivityMeter struct {
	ActiveSeconds int64 `json:"active_seconds"`
	// Percent is ActiveSeconds over the segment's elapsed seconds, 0–100.
	Percent int `json:"percent"`
	Keys    int `json:"keys"`
	Clicks  int `json:"clicks"`
	Moves   int `json:"moves"`
}

// EndpointStatus is the state of one connection.
type EndpointStatus string

const (
	EndpointConnected  EndpointStatus = "connected"
	EndpointConnecting EndpointStatus = "connecting"
	EndpointOffline    EndpointStatus = "offline"  // tried and failed; Error says why
	EndpointDisabled   EndpointStatus = "disabled" // not used (e.g. the preview engine)
)

// Endpoint is one relay or Blossom server.
type Endpoint struct {
	URL    string         `json:"url"`
	Status EndpointStatus `json:"status"`
	Error  string         `json:"error,omitempty"`
}

// Network is connectivity to the public server and the DVM behind it.
type Network struct {
	Relays   []Endpoint `json:"relays"`
	Blossoms []Endpoint `json:"blossoms"`
	// DVMLastSeen is when the last message from the DVM (receipt or catalogue) arrived.
	DVMLastSeen *time.Time `json:"dvm_last_seen" ts_type:"string"`
	// Pending counts finished segments not yet accepted by the DVM.
	Pending int `json:"pending"`
}

// IdlePrompt asks the worker what to do with time spent away.
type IdlePrompt struct {
	Since       time.Time `json:"since" ts_type:"string"` // last input before the idle period
	IdleSeconds int64     `json:"idle_seconds"`
}

// IdleChoice is the worker's answer to an IdlePrompt.
type IdleChoice string

const (
	IdleKeep    IdleChoice = "keep"    // the idle time counts as work
	IdleDiscard IdleChoice = "discard" // cut the idle time out, keep tracking
	IdleStop    IdleChoice = "stop"    // discard the idle time and stop the session
)

// Valid reports whether c is one of the three choices.
func (c IdleChoice) Valid() bool {
	return c == IdleKeep || c == IdleDiscard || c == IdleStop
}

// JoinResult is what the worker needs to see right after joining.
type JoinResult struct {
	// Fingerprint is the six-word pairing fingerprint (PROTOCOL.md §7) to compare with
	// the employer; empty when no key was made (the preview engine).
	Fingerprint string `json:"fingerprint"`
	DVMNpub     string `json:"dvm_npub"`
	OwnNpub     string `json:"own_npub"`
	WorkerName  string `json:"worker_name"`
}

// Catalogue mirrors the DVM's kind-7703 content (PROTOCOL.md §6).
type Catalogue struct {
	UpdatedAt  time.Time  `json:"updated_at" ts_type:"string"`
	WorkerName string     `json:"worker_name"`
	Projects   []Project  `json:"projects"`
	Activities []Activity `json:"activities"`
	Policy     Policy     `json:"policy"`
}

// Project is a Kimai project the worker may book to.
type Project struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Customer string `json:"customer"`
}

// Activity is a Kimai activity; Project nil means it is usable with any project.
type Activity struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Project *int   `json:"project"`
}

// Policy is the capture policy set by the employer.
type Policy struct {
	SegmentSeconds int  `json:"segment_seconds"`
	Screenshots    int  `json:"screenshots"`
	Blur           bool `json:"blur"`
	ReviewSeconds  int  `json:"review_seconds"`
	IdleSeconds    int  `json:"idle_seconds"`
	JPEGQuality    int  `json:"jpeg_quality"`
	MaxWidth       int  `json:"max_width"`
}

// DefaultPolicy is the policy before the first catalogue arrives (PROTOCOL.md §6).
func DefaultPolicy() Policy {
	return Policy{SegmentSeconds: 600, Screenshots: 2, ReviewSeconds: 120, IdleSeconds: 300, JPEGQuality: 80, MaxWidth: 1920}
}

// SegmentState is where a finished segment is on its way to the DVM.
type SegmentState string

const (
	SegmentHeld      SegmentState = "held"      // closed, held until input after it shows whether idle time reaches back over it; screenshots can be deleted
	SegmentReviewing SegmentState = "reviewing" // in the review window; screenshots can be deleted
	SegmentQueued    SegmentState = "queued"    // sealed in the outbox, waiting to be sent
	SegmentSent      SegmentState = "sent"      // published; waiting for the DVM's receipt
	SegmentAccepted  SegmentState = "accepted"  // the DVM accepted it (or already had it)
	SegmentRejected  SegmentState = "rejected"  // the DVM refused it; Reason says why
)

// HeldReason is the Reason of a held segment.
const HeldReason = "waiting for input after the segment to decide about idle time"

// SegmentView is one segment in today's timeline.
type SegmentView struct {
	ID           string    `json:"id"`
	SessionID    string    `json:"session_id"`
	Index        int       `json:"index"`
	Start        time.Time `json:"start" ts_type:"string"`
	End          time.Time `json:"end" ts_type:"string"`
	ProjectName  string    `json:"project_name"`
	ActivityName string    `json:"activity_name"`
	// Thumbnail is a small image of the first remaining screenshot as a data: URL
	// (image/jpeg), empty when the segment has none.
	Thumbnail string `json:"thumbnail"`
	// Screenshots counts the screenshots still in the segment; Deleted those removed in review.
	Screenshots   int          `json:"screenshots"`
	Deleted       int          `json:"deleted"`
	ActiveSeconds int64        `json:"active_seconds"`
	State         SegmentState `json:"state"`
	// ReviewUntil is when the review window closes (State reviewing only).
	ReviewUntil *time.Time `json:"review_until" ts_type:"string"`
	// Reason says why a segment is held (State held) or comes from a rejecting receipt
	// (State rejected, with Permanent).
	Reason    string `json:"reason,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
}

// Screenshot is one screenshot of a segment under review.
type Screenshot struct {
	Name    string    `json:"name"` // as in the bundle: screenshots/001.jpg
	TakenAt time.Time `json:"taken_at" ts_type:"string"`
	// DataURL is the full image as a data: URL (image/jpeg).
	DataURL string `json:"data_url"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

// AlignSegment returns the start of the clock-aligned segment of the given length that
// contains t: boundaries are multiples of length since the Unix epoch (PROTOCOL.md §2).
func AlignSegment(t time.Time, length time.Duration) time.Time {
	if length <= 0 {
		return t
	}
	d := time.Duration(t.UnixNano()) % length
	if d < 0 {
		d += length
	}
	return t.Add(-d)
}
