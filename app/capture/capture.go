// Package capture takes the tracker's evidence from the desktop: JPEG
// screenshots of every display, the focused window, the idle time and
// per-minute input counts (counts only, never which key).
//
// Everything the engine needs is behind small interfaces (Screen, Activity,
// InputCounter) so it can be driven by fakes in tests; the real X11
// implementation is opened with Open.
package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
	"time"
)

// Shot is one display's screenshot, encoded as JPEG.
type Shot struct {
	Display int             // index of the display (Xinerama screen order)
	Bounds  image.Rectangle // the display's area in root-window coordinates
	Width   int             // width of the encoded image (after downscaling)
	Height  int             // height of the encoded image
	JPEG    []byte
	TakenAt time.Time
}

// Window describes the focused top-level window.
type Window struct {
	ID       uint32 // X window id; 0 when nothing is focused
	App      string // WM_CLASS class, else the process name from /proc/<pid>/comm
	Title    string // _NET_WM_NAME, else WM_NAME
	PID      int    // _NET_WM_PID, 0 when the client does not set it
	Class    string // WM_CLASS class as set by the client
	Instance string // WM_CLASS instance as set by the client
	Comm     string // /proc/<pid>/comm, when the pid is known
}

// ErrNoActiveWindow means the window manager reports no focused window (or
// no EWMH window manager runs at all).
var ErrNoActiveWindow = errors.New("no active window")

// Screen captures every display.
type Screen interface {
	Capture(ctx context.Context) ([]Shot, error)
}

// Activity reports what the user is doing right now.
type Activity interface {
	ActiveWindow() (Window, error)
	IdleTime() (time.Duration, error)
}

// Skipped tells why a planned screenshot was not taken.
type Skipped struct {
	Reason string `json:"reason"`
}

// Result is the outcome of one planned screenshot: either Shots or Skipped.
type Result struct {
	Window  Window // the focused window at capture time (zero if none)
	Shots   []Shot
	Skipped *Skipped
}

// Capture takes a screenshot of every display unless the focused window
// belongs to one of the excluded apps, in which case no pixels are read at
// all and Result.Skipped says why.
//
// Excluded names match the window's App, WM_CLASS class or instance, or
// process name, case-insensitively. When exclusions are configured and the
// focused window cannot be determined because of an error, Capture fails
// rather than risk photographing an excluded app.
func Capture(ctx context.Context, screen Screen, act Activity, excluded []string) (Result, error) {
	var res Result
	if act == nil && len(excluded) > 0 {
		return Result{}, errors.New("capture: exclusions given but no way to read the active window")
	}
	if act != nil {
		w, err := act.ActiveWindow()
		switch {
		case err == nil:
			res.Window = w
		case errors.Is(err, ErrNoActiveWindow):
			// Nothing focused: nothing to exclude.
		case len(excluded) > 0:
			return Result{}, fmt.Errorf("capture: active window unknown, exclusions cannot be checked: %w", err)
		}
	}
	if name, ok := Excluded(res.Window, excluded); ok {
		res.Skipped = &Skipped{Reason: "excluded app: " + name}
		return res, nil
	}
	shots, err := screen.Capture(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("capture screens: %w", err)
	}
	res.Shots = shots
	return res, nil
}

// Excluded reports whether w belongs to one of the excluded apps, and the
// app name to record in the skip reason.
func Excluded(w Window, excluded []string) (string, bool) {
	for _, ex := range excluded {
		ex = strings.TrimSpace(ex)
		if ex == "" {
			continue
		}
		for _, have := range []string{w.App, w.Class, w.Instance, w.Comm} {
			if have != "" && strings.EqualFold(have, ex) {
				name := w.App
				if name == "" {
					name = have
				}
				return name, true
			}
		}
	}
	return "", false
}
