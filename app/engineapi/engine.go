// Package engineapi is the seam between the tracker's window (Wails bindings and the
// Svelte UI) and the engine underneath (session, capture, outbox, publisher, keys, join).
//
// It holds only the Engine interface and the plain, JSON-tagged values that cross it,
// so the UI can be built and tested before the engine exists, and the engine can be
// driven headless without importing Wails.
package engineapi

import "context"

// Engine is everything the UI asks of the tracker. Implementations must be safe for
// concurrent use: the UI calls methods from several goroutines at once.
//
// Methods that fail because of something the worker can fix return a *Problem (see
// problem.go), so the UI can say what to do; any other error is shown as internal.
type Engine interface {
	// State is a snapshot of everything the main screen shows.
	State(ctx context.Context) (State, error)

	// Join pairs this device with an employer from an invite link (powdo://join?… or
	// https://host/join#…): it makes the worker key, encrypts it under passphrase,
	// claims the invite on the relay and sends the join request. It returns once the
	// request is sent; the catalogue follows as an EventCatalogue.
	Join(ctx context.Context, link, passphrase string) (JoinResult, error)
	// Unlock decrypts the stored key after a restart (State.Locked).
	Unlock(ctx context.Context, passphrase string) error

	// Catalogue is the last catalogue received from the DVM: what the worker may book to.
	Catalogue(ctx context.Context) (Catalogue, error)
	// RefreshCatalogue asks the DVM to send the catalogue again (kind 7704).
	RefreshCatalogue(ctx context.Context) error

	// Start opens a session on a project and activity from the catalogue.
	Start(ctx context.Context, projectID, activityID int, memo string) error
	// Pause closes the current segment and stops recording until Resume.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Stop closes the current segment and the session.
	Stop(ctx context.Context) error

	// Today lists today's segments (local day), oldest first.
	Today(ctx context.Context) ([]SegmentView, error)
	// Screenshots returns the screenshots of one segment, full size, for review.
	Screenshots(ctx context.Context, segmentID string) ([]Screenshot, error)
	// DeleteScreenshot removes one screenshot from a segment still in review; the
	// deletion is recorded in the segment's manifest.
	DeleteScreenshot(ctx context.Context, segmentID, name string) error

	// IdleDecision answers State.Idle.
	IdleDecision(ctx context.Context, choice IdleChoice) error

	// Settings returns the current settings, read-only fields filled in.
	Settings(ctx context.Context) (Settings, error)
	// SaveSettings validates and stores the editable fields of s (see
	// Settings.WithEditable) and returns the settings now in force.
	SaveSettings(ctx context.Context, s Settings) (Settings, error)

	// ExportKey returns the worker key as a NIP-49 ncryptsec under passphrase, to move
	// it to another device. The passphrase may differ from the one used at rest.
	ExportKey(ctx context.Context, passphrase string) (string, error)

	// Subscribe registers fn for pushed changes and returns a function that removes it.
	// The engine calls fn from one goroutine at a time, in order; fn must return quickly
	// and must not call back into the engine's mutating methods.
	Subscribe(fn func(Event)) (unsubscribe func())

	// Close stops background work and releases files. The engine is unusable after it.
	Close() error
}

// EventKind names what changed.
type EventKind string

const (
	// EventState carries a fresh State (any change of the main screen).
	EventState EventKind = "state"
	// EventSegment carries one SegmentView that was added or changed state.
	EventSegment EventKind = "segment"
	// EventCatalogue carries a new Catalogue from the DVM.
	EventCatalogue EventKind = "catalogue"
)

// Event is pushed by the engine to subscribers. Exactly the field named by Kind is set.
type Event struct {
	Kind      EventKind    `json:"kind"`
	State     *State       `json:"state,omitempty"`
	Segment   *SegmentView `json:"segment,omitempty"`
	Catalogue *Catalogue   `json:"catalogue,omitempty"`
}

// Payload is the value the UI receives for this event; ok is false when the event is
// malformed (unknown kind, or the field its kind names is nil).
func (e Event) Payload() (payload any, ok bool) {
	switch e.Kind {
	case EventState:
		return e.State, e.State != nil
	case EventSegment:
		return e.Segment, e.Segment != nil
	case EventCatalogue:
		return e.Catalogue, e.Catalogue != nil
	}
	return nil, false
}
