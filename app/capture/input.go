package capture

import (
	"errors"
	"fmt"
	"log/slog"
)

// InputCounts are cumulative input counts. They never say which key or
// button was used, only how often.
type InputCounts struct {
	Keys    int64 `json:"keys"`
	Clicks  int64 `json:"clicks"`
	Moves   int64 `json:"moves"`
	ScrollX int64 `json:"scroll_x"`
	ScrollY int64 `json:"scroll_y"`
	DeltaX  int64 `json:"delta_x"` // pointer travel in pixels, summed |dx|
	DeltaY  int64 `json:"delta_y"`
}

// Sub returns c - o, field by field: the counts between two Totals calls.
func (c InputCounts) Sub(o InputCounts) InputCounts {
	return InputCounts{
		Keys: c.Keys - o.Keys, Clicks: c.Clicks - o.Clicks, Moves: c.Moves - o.Moves,
		ScrollX: c.ScrollX - o.ScrollX, ScrollY: c.ScrollY - o.ScrollY,
		DeltaX: c.DeltaX - o.DeltaX, DeltaY: c.DeltaY - o.DeltaY,
	}
}

// Any reports whether any input was counted.
func (c InputCounts) Any() bool {
	return c.Keys != 0 || c.Clicks != 0 || c.Moves != 0 || c.ScrollX != 0 || c.ScrollY != 0
}

// Counting methods, as reported by InputCounter.Method.
const (
	// MethodRecord counts every key press, button press and motion event
	// through the X RECORD extension: exact.
	MethodRecord = "xrecord"
	// MethodPoll samples the pointer, the button state and the keyboard
	// state: approximate (see OpenPollCounter).
	MethodPoll = "poll"
)

// InputCounter counts keyboard and mouse input since it was opened.
type InputCounter interface {
	// Totals returns the cumulative counts; callers diff two readings.
	Totals() InputCounts
	// Method is MethodRecord or MethodPoll (or a fake's own name).
	Method() string
	Close() error
}

// ErrNoRecord means the X server does not offer the RECORD extension.
var ErrNoRecord = errors.New("X server lacks the RECORD extension")

// OpenInputCounter counts input on the display ("" means $DISPLAY), exactly
// through RECORD when the server has it, otherwise approximately by polling.
func OpenInputCounter(display string) (InputCounter, error) {
	rc, err := OpenRecordCounter(display)
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, ErrNoRecord) {
		return nil, fmt.Errorf("input counter: %w", err)
	}
	slog.Info("input counts are approximate: polling the pointer and keyboard state", "display", display, "reason", err)
	pc, perr := OpenPollCounter(display, 0)
	if perr != nil {
		return nil, fmt.Errorf("input counter: %w (and polling failed: %w)", err, perr)
	}
	return pc, nil
}
