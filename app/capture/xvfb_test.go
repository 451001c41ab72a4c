package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// xvfb is a real X server started for one test.
type xvfb struct {
	display string // ":N"
	conn    *xgb.Conn
	root    xproto.Window
	stop    func() // kills the server (idempotent)
}

// startXvfb starts `Xvfb :N` on a free display number with the given extra
// arguments (screens etc.) and waits until its socket accepts connections.
func startXvfb(t testing.TB, args ...string) *xvfb {
	t.Helper()
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Fatalf("Xvfb not found (%v): install it with `apt-get install xvfb`", err)
	}
	if len(args) == 0 {
		args = []string{"-screen", "0", "1280x800x24"}
	}
	start := 40 + os.Getpid()%400
	for n := start; n < start+40; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		x, err := tryXvfb(t, bin, n, args)
		if err != nil {
			t.Logf("Xvfb :%d: %v; trying the next display", n, err)
			continue
		}
		return x
	}
	t.Fatalf("no free X display number found from :%d", start)
	return nil
}

func tryXvfb(t testing.TB, bin string, n int, args []string) (*xvfb, error) {
	display := fmt.Sprintf(":%d", n)
	// -br: black root so pixels outside test windows are predictable.
	cmd := exec.Command(bin, append([]string{display, "-nolisten", "tcp", "-br", "-noreset"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(sock); err == nil {
			if conn, err := xgb.NewConnDisplay(display); err == nil {
				x := &xvfb{display: display, conn: conn, root: xproto.Setup(conn).DefaultScreen(conn).Root, stop: stop}
				t.Cleanup(func() {
					conn.Close()
					stop()
				})
				return x, nil
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("exited early (%v): %s", err, stderr.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("socket %s did not appear: %s", sock, stderr.String())
		}
	}
}

// xdotool runs xdotool against this server.
func (x *xvfb) xdotool(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xdotool %v: %v: %s (install with `apt-get install xdotool`)", args, err, out)
	}
}

// sync waits until the server has processed every request sent so far.
func (x *xvfb) sync(t testing.TB) {
	t.Helper()
	if _, err := xproto.GetInputFocus(x.conn).Reply(); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func (x *xvfb) atom(t testing.TB, name string) xproto.Atom {
	t.Helper()
	r, err := xproto.InternAtom(x.conn, false, uint16(len(name)), name).Reply()
	if err != nil {
		t.Fatalf("intern %s: %v", name, err)
	}
	return r.Atom
}

type testWindow struct {
	rect     [4]int // x, y, w, h
	color    uint32 // 0xRRGGBB
	netName  string // _NET_WM_NAME, skipped when empty
	wmName   string // WM_NAME, skipped when empty
	instance string // WM_CLASS, skipped when class is empty
	class    string
	pid      int // _NET_WM_PID, skipped when 0
}

// window creates and maps a solid-colour top-level window with the given
// properties, as a client would, and returns its id.
func (x *xvfb) window(t testing.TB, w testWindow) xproto.Window {
	t.Helper()
	id, err := xproto.NewWindowId(x.conn)
	if err != nil {
		t.Fatalf("window id: %v", err)
	}
	scr := xproto.Setup(x.conn).DefaultScreen(x.conn)
	err = xproto.CreateWindowChecked(x.conn, scr.RootDepth, id, x.root,
		int16(w.rect[0]), int16(w.rect[1]), uint16(w.rect[2]), uint16(w.rect[3]), 0,
		xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{w.color, 1}).Check()
	if err != nil {
		t.Fatalf("create window: %v", err)
	}
	set := func(prop, typ xproto.Atom, format byte, data []byte) {
		n := uint32(len(data)) / uint32(format/8)
		if err := xproto.ChangePropertyChecked(x.conn, xproto.PropModeReplace, id, prop, typ, format, n, data).Check(); err != nil {
			t.Fatalf("set property: %v", err)
		}
	}
	if w.netName != "" {
		set(x.atom(t, "_NET_WM_NAME"), x.atom(t, "UTF8_STRING"), 8, []byte(w.netName))
	}
	if w.wmName != "" {
		set(xproto.AtomWmName, xproto.AtomString, 8, []byte(w.wmName))
	}
	if w.class != "" {
		set(xproto.AtomWmClass, xproto.AtomString, 8, []byte(w.instance+"\x00"+w.class+"\x00"))
	}
	if w.pid != 0 {
		b := make([]byte, 4)
		xgb.Put32(b, uint32(w.pid))
		set(x.atom(t, "_NET_WM_PID"), xproto.AtomCardinal, 32, b)
	}
	if err := xproto.MapWindowChecked(x.conn, id).Check(); err != nil {
		t.Fatalf("map window: %v", err)
	}
	x.sync(t)
	return id
}

// activate does what an EWMH window manager does on focus: set
// _NET_ACTIVE_WINDOW on the root.
func (x *xvfb) activate(t testing.TB, id xproto.Window) {
	t.Helper()
	b := make([]byte, 4)
	xgb.Put32(b, uint32(id))
	err := xproto.ChangePropertyChecked(x.conn, xproto.PropModeReplace, x.root,
		x.atom(t, "_NET_ACTIVE_WINDOW"), xproto.AtomWindow, 32, 1, b).Check()
	if err != nil {
		t.Fatalf("set _NET_ACTIVE_WINDOW: %v", err)
	}
	x.sync(t)
}

// open opens the package's X11 implementation on this server.
func (x *xvfb) open(t testing.TB) *X11 {
	t.Helper()
	t.Setenv("DISPLAY", x.display)
	d, err := Open(x.display)
	if err != nil {
		t.Fatalf("Open(%s): %v", x.display, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
