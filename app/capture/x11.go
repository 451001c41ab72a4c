package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go-vgo/robotgo"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/screensaver"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgbutil"
	"github.com/jezek/xgbutil/ewmh"
	"github.com/jezek/xgbutil/icccm"
)

// X11 is the real desktop on an X server: window and idle time through the
// X protocol (EWMH, MIT-SCREEN-SAVER), pixels through robotgo.
type X11 struct {
	display string
	xu      *xgbutil.XUtil
	conn    *xgb.Conn
	root    xproto.Window

	hasScreensaver bool
	hasXinerama    bool
	pixelErr       error // non-nil when the root visual is not 24/32-bit BGRX

	grabMu sync.Mutex // robotgo's X calls are not meant to run concurrently
}

// Open connects to the X display ("" means $DISPLAY).
//
// robotgo opens its own connection for every screenshot from $DISPLAY, so
// when display is given, Open also sets $DISPLAY for this process.
func Open(display string) (*X11, error) {
	if display == "" {
		display = os.Getenv("DISPLAY")
	}
	if display == "" {
		return nil, errors.New("open X display: DISPLAY is not set")
	}
	xu, err := xgbutil.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("open X display %q: %w", display, err)
	}
	if os.Getenv("DISPLAY") != display {
		if err := os.Setenv("DISPLAY", display); err != nil {
			xu.Conn().Close()
			return nil, fmt.Errorf("set DISPLAY for robotgo: %w", err)
		}
	}
	x := &X11{display: display, xu: xu, conn: xu.Conn(), root: xu.RootWin()}
	if x.hasScreensaver, err = enableExtension(x.conn, "MIT-SCREEN-SAVER"); err != nil {
		x.conn.Close()
		return nil, fmt.Errorf("open X display %q: %w", display, err)
	}
	hasXinerama, err := enableExtension(x.conn, "XINERAMA")
	if err != nil {
		x.conn.Close()
		return nil, fmt.Errorf("open X display %q: %w", display, err)
	}
	if hasXinerama {
		if rep, err := xinerama.IsActive(x.conn).Reply(); err == nil && rep.State != 0 {
			x.hasXinerama = true
		}
	}
	x.pixelErr = checkPixelFormat(xu.Screen(), xproto.Setup(x.conn))
	return x, nil
}

// checkPixelFormat makes sure the root visual stores pixels as 32-bit
// little-endian BGRX, which is the only layout robotgo's bitmap handles.
func checkPixelFormat(scr *xproto.ScreenInfo, setup *xproto.SetupInfo) error {
	if setup.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return errors.New("unsupported X image byte order (MSB first)")
	}
	for _, d := range scr.AllowedDepths {
		for _, v := range d.Visuals {
			if v.VisualId != scr.RootVisual {
				continue
			}
			if d.Depth < 24 || v.RedMask != 0xff0000 || v.GreenMask != 0xff00 || v.BlueMask != 0xff {
				return fmt.Errorf("unsupported root visual: depth %d, masks %#x/%#x/%#x", d.Depth, v.RedMask, v.GreenMask, v.BlueMask)
			}
			return nil
		}
	}
	return errors.New("root visual not found")
}

// Display returns the display name this connection uses.
func (x *X11) Display() string { return x.display }

// Close closes the X connection.
func (x *X11) Close() error {
	x.conn.Close()
	return nil
}

// ActiveWindow reads the focused window from the window manager's EWMH
// _NET_ACTIVE_WINDOW (robotgo.GetTitle is not used: it exits the process when
// no window manager runs).
func (x *X11) ActiveWindow() (Window, error) {
	atom, err := xproto.InternAtom(x.conn, true, uint16(len("_NET_ACTIVE_WINDOW")), "_NET_ACTIVE_WINDOW").Reply()
	if err != nil {
		return Window{}, fmt.Errorf("intern _NET_ACTIVE_WINDOW: %w", err)
	}
	if atom.Atom == xproto.AtomNone {
		return Window{}, fmt.Errorf("_NET_ACTIVE_WINDOW never set: %w", ErrNoActiveWindow)
	}
	// Read the property ourselves first so that "not set" (no EWMH window
	// manager) is told apart from a broken connection.
	prop, err := xproto.GetProperty(x.conn, false, x.root, atom.Atom, xproto.AtomWindow, 0, 1).Reply()
	if err != nil {
		return Window{}, fmt.Errorf("read _NET_ACTIVE_WINDOW: %w", err)
	}
	if prop.Format == 0 || len(prop.Value) < 4 {
		return Window{}, fmt.Errorf("_NET_ACTIVE_WINDOW not set: %w", ErrNoActiveWindow)
	}
	win, err := ewmh.ActiveWindowGet(x.xu)
	if err != nil {
		return Window{}, fmt.Errorf("read _NET_ACTIVE_WINDOW: %w", err)
	}
	if win == 0 {
		return Window{}, fmt.Errorf("_NET_ACTIVE_WINDOW is None: %w", ErrNoActiveWindow)
	}
	w := Window{ID: uint32(win)}
	// The window may disappear while we read it; missing properties just
	// stay empty.
	if t, err := ewmh.WmNameGet(x.xu, win); err == nil && t != "" {
		w.Title = t
	} else if t, err := icccm.WmNameGet(x.xu, win); err == nil {
		w.Title = t
	}
	if pid, err := ewmh.WmPidGet(x.xu, win); err == nil {
		w.PID = int(pid)
	}
	if c, err := icccm.WmClassGet(x.xu, win); err == nil && c != nil {
		w.Class, w.Instance = c.Class, c.Instance
	}
	if w.PID > 0 {
		w.Comm = procComm(w.PID)
	}
	w.App = w.Class
	if w.App == "" {
		w.App = w.Comm
	}
	return w, nil
}

// procComm reads the process name of pid, "" if unknown. The pid comes from
// a window property the client sets itself, so it is only a hint.
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// IdleTime is the time since the last keyboard or mouse input, from the
// MIT-SCREEN-SAVER extension.
func (x *X11) IdleTime() (time.Duration, error) {
	if !x.hasScreensaver {
		return 0, errors.New("idle time: X server lacks the MIT-SCREEN-SAVER extension")
	}
	rep, err := screensaver.QueryInfo(x.conn, xproto.Drawable(x.root)).Reply()
	if err != nil {
		return 0, fmt.Errorf("idle time: %w", err)
	}
	return time.Duration(rep.MsSinceUserInput) * time.Millisecond, nil
}

// Displays lists every display's area in root-window coordinates: the
// Xinerama screens when Xinerama (or RandR's emulation of it) is active,
// otherwise the whole root window. robotgo.GetDisplayBounds is not used
// because it reports positions relative to the primary display, which is not
// what XGetImage on the root expects when the primary is not at (0,0).
func (x *X11) Displays() ([]image.Rectangle, error) {
	geo, err := xproto.GetGeometry(x.conn, xproto.Drawable(x.root)).Reply()
	if err != nil {
		return nil, fmt.Errorf("root geometry: %w", err)
	}
	root := image.Rect(0, 0, int(geo.Width), int(geo.Height))
	if x.hasXinerama {
		rep, err := xinerama.QueryScreens(x.conn).Reply()
		if err != nil {
			return nil, fmt.Errorf("xinerama screens: %w", err)
		}
		var out []image.Rectangle
		for _, s := range rep.ScreenInfo {
			r := image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height))
			// XGetImage outside the root is a BadMatch, which Xlib's default
			// handler answers by exiting the process: never ask for it.
			r = r.Intersect(root)
			if !r.Empty() {
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return []image.Rectangle{root}, nil
}

// Grab reads the pixels of r (root coordinates) through robotgo and returns
// them as RGBA with alpha forced to 0xff: robotgo copies the X padding byte
// into alpha, which is 0 on most servers.
func (x *X11) Grab(r image.Rectangle) (*image.RGBA, error) {
	if x.pixelErr != nil {
		return nil, fmt.Errorf("grab %v: %w", r, x.pixelErr)
	}
	if r.Empty() {
		return nil, fmt.Errorf("grab: empty rectangle %v", r)
	}
	x.grabMu.Lock()
	defer x.grabMu.Unlock()
	// robotgo opens its own display and does not check it: if the server is
	// gone, it would crash in C. A round trip first turns that into an error.
	if _, err := xproto.GetInputFocus(x.conn).Reply(); err != nil {
		return nil, fmt.Errorf("grab %v: X server unreachable: %w", r, err)
	}
	bit := robotgo.CaptureScreen(r.Min.X, r.Min.Y, r.Dx(), r.Dy())
	if bit == nil {
		return nil, fmt.Errorf("grab %v: robotgo returned no image", r)
	}
	defer robotgo.FreeBitmap(bit)
	bm := robotgo.ToBitmap(bit)
	if bm.BytesPerPixel != 4 || bm.Width != r.Dx() || bm.Height != r.Dy() || bm.ImgBuf == nil {
		return nil, fmt.Errorf("grab %v: unexpected bitmap %dx%d, %d bytes/pixel", r, bm.Width, bm.Height, bm.BytesPerPixel)
	}
	src := unsafe.Slice(bm.ImgBuf, bm.Bytewidth*bm.Height)
	img := image.NewRGBA(image.Rect(0, 0, bm.Width, bm.Height))
	for y := 0; y < bm.Height; y++ {
		s := src[y*bm.Bytewidth : y*bm.Bytewidth+4*bm.Width]
		d := img.Pix[y*img.Stride : y*img.Stride+4*bm.Width]
		for i := 0; i < len(s); i += 4 {
			d[i], d[i+1], d[i+2], d[i+3] = s[i+2], s[i+1], s[i], 0xff // BGRX -> RGBA
		}
	}
	return img, nil
}

// Screen returns a Screen that captures every display and encodes each as
// one JPEG with the given options.
func (x *X11) Screen(o EncodeOptions) Screen { return &x11Screen{x: x, opts: o, now: time.Now} }

type x11Screen struct {
	x    *X11
	opts EncodeOptions
	now  func() time.Time
}

func (s *x11Screen) Capture(ctx context.Context) ([]Shot, error) {
	displays, err := s.x.Displays()
	if err != nil {
		return nil, err
	}
	shots := make([]Shot, 0, len(displays))
	for i, r := range displays {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("capture display %d: %w", i, err)
		}
		taken := s.now().UTC()
		img, err := s.x.Grab(r)
		if err != nil {
			return nil, fmt.Errorf("capture display %d: %w", i, err)
		}
		data, size, err := Encode(img, s.opts)
		if err != nil {
			return nil, fmt.Errorf("capture display %d: %w", i, err)
		}
		shots = append(shots, Shot{Display: i, Bounds: r, Width: size.X, Height: size.Y, JPEG: data, TakenAt: taken})
	}
	return shots, nil
}
