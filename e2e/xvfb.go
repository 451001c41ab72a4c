package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// Xvfb is a real X server with one "desktop" on it: a mapped window with a known title
// that the root window's _NET_ACTIVE_WINDOW names (as an EWMH window manager would),
// and a goroutine that moves the pointer through XTEST, so trackers see a focused
// window, input and a not-idle worker.
type Xvfb struct {
	Display string // ":N"
	Title   string // the focused window's title

	cmd    *exec.Cmd
	exited chan struct{}
	conn   *xgb.Conn
	root   xproto.Window
	stop   context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// XvfbInstallHint is shown when Xvfb is missing: the tests need it and never skip.
const XvfbInstallHint = "Xvfb is required (trackers capture a real X display): install it with `apt-get install xvfb` (scripts/setup.sh does)"

// StartXvfb starts a 1280×800 Xvfb on a free display number, creates the titled,
// focused window and starts the input loop (one pointer move every inputEvery).
func StartXvfb(logDir, title string, inputEvery time.Duration) (*Xvfb, error) {
	return StartXvfbSize(logDir, title, "1280x800x24", inputEvery)
}

// StartXvfbSize is StartXvfb with a screen size (WxHxDepth, e.g. "1920x1080x24").
func StartXvfbSize(logDir, title, size string, inputEvery time.Duration) (*Xvfb, error) {
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", XvfbInstallHint, err)
	}
	start := 100 + os.Getpid()%300
	var lastErr error
	for n := start; n < start+50; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		x, err := tryXvfb(bin, n, logDir, size)
		if err != nil {
			lastErr = err
			continue
		}
		x.Title = title
		if err := x.desktop(title); err != nil {
			x.Close()
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		x.stop = cancel
		x.wg.Add(1)
		go x.inputLoop(ctx, inputEvery)
		return x, nil
	}
	return nil, fmt.Errorf("no free X display from :%d: %v", start, lastErr)
}

func tryXvfb(bin string, n int, logDir, size string) (*Xvfb, error) {
	display := fmt.Sprintf(":%d", n)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("xvfb-%d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, display, "-nolisten", "tcp", "-noreset", "-screen", "0", size)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start Xvfb %s: %w", display, err)
	}
	x := &Xvfb{Display: display, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(x.exited) }()
	sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	// Give up at once if the server exits (e.g. the display was taken meanwhile).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-x.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = WaitFor(ctx, "Xvfb "+display, 15*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-x.exited:
			return errors.New("Xvfb exited (see its log)")
		default:
		}
		if _, err := os.Stat(sock); err != nil {
			return err
		}
		c, err := xgb.NewConnDisplay(display)
		if err != nil {
			return err
		}
		x.conn = c
		return nil
	})
	if err != nil {
		x.kill()
		return nil, fmt.Errorf("Xvfb %s: %w", display, err)
	}
	x.root = xproto.Setup(x.conn).DefaultScreen(x.conn).Root
	return x, nil
}

func (x *Xvfb) atom(name string) (xproto.Atom, error) {
	r, err := xproto.InternAtom(x.conn, false, uint16(len(name)), name).Reply()
	if err != nil {
		return 0, fmt.Errorf("intern %s: %w", name, err)
	}
	return r.Atom, nil
}

func (x *Xvfb) setProp(win xproto.Window, prop, typ string, format byte, data []byte) error {
	p, err := x.atom(prop)
	if err != nil {
		return err
	}
	var t xproto.Atom
	switch typ {
	case "STRING":
		t = xproto.AtomString
	case "WINDOW":
		t = xproto.AtomWindow
	case "CARDINAL":
		t = xproto.AtomCardinal
	default:
		if t, err = x.atom(typ); err != nil {
			return err
		}
	}
	n := uint32(len(data)) / uint32(format/8)
	if err := xproto.ChangePropertyChecked(x.conn, xproto.PropModeReplace, win, p, t, format, n, data).Check(); err != nil {
		return fmt.Errorf("set %s: %w", prop, err)
	}
	return nil
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// desktop creates a full-screen window with coloured bands, titles it, maps it and
// makes it the active window.
func (x *Xvfb) desktop(title string) error {
	scr := xproto.Setup(x.conn).DefaultScreen(x.conn)
	win, err := xproto.NewWindowId(x.conn)
	if err != nil {
		return fmt.Errorf("window id: %w", err)
	}
	if err := xproto.CreateWindowChecked(x.conn, scr.RootDepth, win, x.root, 0, 0, scr.WidthInPixels, scr.HeightInPixels, 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel, []uint32{0x00336699}).Check(); err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	if err := x.setProp(win, "_NET_WM_NAME", "UTF8_STRING", 8, []byte(title)); err != nil {
		return err
	}
	if err := x.setProp(win, "WM_NAME", "STRING", 8, []byte(title)); err != nil {
		return err
	}
	if err := x.setProp(win, "WM_CLASS", "STRING", 8, []byte("powdo-e2e\x00PowdoE2E\x00")); err != nil {
		return err
	}
	if err := x.setProp(win, "_NET_WM_PID", "CARDINAL", 32, le32(uint32(os.Getpid()))); err != nil {
		return err
	}
	if err := xproto.MapWindowChecked(x.conn, win).Check(); err != nil {
		return fmt.Errorf("map window: %w", err)
	}
	gc, err := xproto.NewGcontextId(x.conn)
	if err != nil {
		return fmt.Errorf("gc id: %w", err)
	}
	if err := xproto.CreateGCChecked(x.conn, gc, xproto.Drawable(win), 0, nil).Check(); err != nil {
		return fmt.Errorf("create gc: %w", err)
	}
	// Bands of colour so screenshots are not one flat colour.
	colours := []uint32{0xcc3333, 0x33cc33, 0x3333cc, 0xcccc33, 0x33cccc, 0xcc33cc, 0xeeeeee, 0x222222}
	bw := scr.WidthInPixels / uint16(len(colours))
	for i, c := range colours {
		xproto.ChangeGC(x.conn, gc, xproto.GcForeground, []uint32{c})
		xproto.PolyFillRectangle(x.conn, xproto.Drawable(win), gc, []xproto.Rectangle{
			{X: int16(uint16(i) * bw), Y: int16(scr.HeightInPixels / 4), Width: bw, Height: scr.HeightInPixels / 2}})
	}
	// Small blocks of many colours, like the text and icons of a real desktop: they give
	// screenshots a realistic JPEG size (a flat picture compresses to almost nothing).
	seed := uint32(12345)
	rnd := func(n uint32) uint32 { seed = seed*1664525 + 1013904223; return (seed >> 8) % n }
	for i := 0; i < 3000; i++ {
		xproto.ChangeGC(x.conn, gc, xproto.GcForeground, []uint32{rnd(0xffffff)})
		xproto.PolyFillRectangle(x.conn, xproto.Drawable(win), gc, []xproto.Rectangle{{
			X: int16(rnd(uint32(scr.WidthInPixels))), Y: int16(rnd(uint32(scr.HeightInPixels))),
			Width: uint16(2 + rnd(10)), Height: uint16(2 + rnd(10))}})
	}
	if err := x.setProp(x.root, "_NET_ACTIVE_WINDOW", "WINDOW", 32, le32(uint32(win))); err != nil {
		return err
	}
	if err := xtest.Init(x.conn); err != nil {
		return fmt.Errorf("XTEST extension: %w", err)
	}
	// A round trip makes sure every request above reached the server.
	if _, err := xproto.GetInputFocus(x.conn).Reply(); err != nil {
		return fmt.Errorf("X round trip: %w", err)
	}
	return nil
}

// inputLoop moves the pointer through XTEST: real input events for the trackers' X
// RECORD counters and the screensaver idle timer.
func (x *Xvfb) inputLoop(ctx context.Context, every time.Duration) {
	defer x.wg.Done()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		px, py := int16(100+(i*37)%1000), int16(100+(i*53)%600)
		xtest.FakeInput(x.conn, xproto.MotionNotify, 0, 0, x.root, px, py, 0)
		xproto.GetInputFocus(x.conn).Reply() // flush and wait, so errors surface here
	}
}

// Env is the environment a child process needs to use this display.
func (x *Xvfb) Env() []string { return []string{"DISPLAY=" + x.Display} }

// kill stops the server with SIGTERM, so it removes its lock file and socket, and
// with SIGKILL if it does not go within five seconds (then removes them itself).
func (x *Xvfb) kill() {
	if x.cmd == nil || x.cmd.Process == nil {
		return
	}
	x.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-x.exited:
		return
	case <-time.After(5 * time.Second):
	}
	x.cmd.Process.Kill()
	<-x.exited
	n := strings.TrimPrefix(x.Display, ":")
	os.Remove("/tmp/.X" + n + "-lock")
	os.Remove("/tmp/.X11-unix/X" + n)
}

// Close stops the input loop and the X server.
func (x *Xvfb) Close() {
	x.once.Do(func() {
		if x.stop != nil {
			x.stop()
		}
		x.wg.Wait()
		if x.conn != nil {
			x.conn.Close()
		}
		x.kill()
	})
}

// String is for logs.
func (x *Xvfb) String() string { return strings.TrimSpace("Xvfb " + x.Display) }
