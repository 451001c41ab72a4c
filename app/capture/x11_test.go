package capture

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jezek/xgb/randr"
)

func decodeShot(t *testing.T, s Shot) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(s.JPEG))
	if err != nil {
		t.Fatalf("decode display %d: %v", s.Display, err)
	}
	if got := img.Bounds().Size(); got != (image.Point{s.Width, s.Height}) {
		t.Fatalf("display %d: JPEG is %v, Shot says %dx%d", s.Display, got, s.Width, s.Height)
	}
	return img
}

// near reports whether c is within tol of want on each channel.
func near(c color.Color, want [3]int, tol int) bool {
	r, g, b, _ := c.RGBA()
	got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
	for i := range got {
		if d := got[i] - want[i]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

// assertRegion checks every pixel of r is near want. r is inset by one
// 16x16 JPEG MCU: at corners of saturated colours 4:2:0 chroma subsampling
// legitimately shifts a few pixels far from the source colour.
func assertRegion(t *testing.T, img image.Image, r image.Rectangle, want [3]int, tol int) {
	t.Helper()
	r = r.Inset(16)
	bad := 0
	var first image.Point
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if !near(img.At(x, y), want, tol) {
				if bad == 0 {
					first = image.Pt(x, y)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d pixels in %v differ from %v, first at %v: %v", bad, r, want, first, img.At(first.X, first.Y))
	}
}

var (
	red   = [3]int{255, 0, 0}
	blue  = [3]int{0, 0, 255}
	black = [3]int{0, 0, 0}
)

func TestCaptureShowsKnownWindow(t *testing.T) {
	x := startXvfb(t)
	id := x.window(t, testWindow{rect: [4]int{100, 120, 400, 300}, color: 0xff0000, netName: "red", class: "Red", instance: "red", pid: os.Getpid()})
	x.activate(t, id)
	d := x.open(t)

	shots, err := d.Screen(EncodeOptions{Quality: 90}).Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(shots) != 1 {
		t.Fatalf("got %d shots, want 1 (one display)", len(shots))
	}
	s := shots[0]
	if s.Bounds != image.Rect(0, 0, 1280, 800) || s.Width != 1280 || s.Height != 800 {
		t.Fatalf("shot bounds %v size %dx%d, want the full 1280x800 display", s.Bounds, s.Width, s.Height)
	}
	if time.Since(s.TakenAt) > time.Minute || s.TakenAt.Location() != time.UTC {
		t.Fatalf("TakenAt %v is not a recent UTC time", s.TakenAt)
	}
	img := decodeShot(t, s)
	assertRegion(t, img, image.Rect(100, 120, 500, 420), red, 24)
	assertRegion(t, img, image.Rect(600, 0, 1280, 800), black, 24)
	assertRegion(t, img, image.Rect(0, 0, 100, 800), black, 24)
}

func TestGrabForcesOpaqueAlpha(t *testing.T) {
	x := startXvfb(t)
	x.window(t, testWindow{rect: [4]int{0, 0, 64, 64}, color: 0x00ff00})
	d := x.open(t)
	img, err := d.Grab(image.Rect(0, 0, 96, 96))
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		if img.Pix[i] != 0xff {
			t.Fatalf("alpha at byte %d is %#x, want 0xff", i, img.Pix[i])
		}
	}
	if c := img.RGBAAt(10, 10); c != (color.RGBA{0, 0xff, 0, 0xff}) {
		t.Fatalf("pixel inside the green window is %v", c)
	}
	if c := img.RGBAAt(80, 80); c != (color.RGBA{0, 0, 0, 0xff}) {
		t.Fatalf("pixel outside the window is %v", c)
	}
}

func TestCaptureEveryDisplay(t *testing.T) {
	// One 1440x600 screen split into two monitors, as RandR 1.5 does for two
	// outputs; RandR's Xinerama emulation then reports two displays.
	x := startXvfb(t, "-screen", "0", "1440x600x24")
	if ok, err := enableExtension(x.conn, "RANDR"); !ok || err != nil {
		t.Fatalf("randr: %v %v", ok, err)
	}
	res, err := randr.GetScreenResources(x.conn, x.root).Reply()
	if err != nil || len(res.Outputs) == 0 {
		t.Fatalf("randr outputs: %v (%d outputs)", err, len(res.Outputs))
	}
	for i, m := range []struct {
		name    string
		x, w, h int
		outputs []randr.Output
	}{
		// Claiming Xvfb's only output replaces its automatic full-screen monitor.
		{"PD-A", 0, 640, 480, res.Outputs[:1]},
		{"PD-B", 640, 800, 600, nil},
	} {
		err := randr.SetMonitorChecked(x.conn, x.root, randr.MonitorInfo{
			Name: x.atom(t, m.name), Primary: i == 0, X: int16(m.x), Width: uint16(m.w), Height: uint16(m.h),
			WidthInMillimeters: uint32(m.w / 4), HeightInMillimeters: uint32(m.h / 4),
			NOutput: uint16(len(m.outputs)), Outputs: m.outputs,
		}).Check()
		if err != nil {
			t.Fatalf("set monitor %s: %v", m.name, err)
		}
	}
	x.window(t, testWindow{rect: [4]int{660, 20, 200, 100}, color: 0x0000ff})
	d := x.open(t)
	shots, err := d.Screen(EncodeOptions{}).Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(shots) != 2 {
		t.Fatalf("got %d shots, want 2", len(shots))
	}
	if shots[0].Bounds != image.Rect(0, 0, 640, 480) || shots[1].Bounds != image.Rect(640, 0, 1440, 600) {
		t.Fatalf("display bounds %v, %v", shots[0].Bounds, shots[1].Bounds)
	}
	second := decodeShot(t, shots[1])
	if second.Bounds().Dx() != 800 || second.Bounds().Dy() != 600 {
		t.Fatalf("second display JPEG is %v", second.Bounds())
	}
	// The window at root x=660 is at x=20 on the second display.
	assertRegion(t, second, image.Rect(20, 20, 220, 120), blue, 24)
	assertRegion(t, decodeShot(t, shots[0]), image.Rect(0, 0, 640, 480), black, 24)
}

func TestCaptureMaxWidthAndBlur(t *testing.T) {
	x := startXvfb(t)
	// Red left half, blue right half of one 600x400 area: a sharp edge at x=400.
	x.window(t, testWindow{rect: [4]int{100, 100, 300, 400}, color: 0xff0000})
	x.window(t, testWindow{rect: [4]int{400, 100, 300, 400}, color: 0x0000ff})
	d := x.open(t)
	ctx := context.Background()

	small, err := d.Screen(EncodeOptions{MaxWidth: 640}).Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if small[0].Width != 640 || small[0].Height != 400 {
		t.Fatalf("max width 640 gave %dx%d, want 640x400", small[0].Width, small[0].Height)
	}
	img := decodeShot(t, small[0])
	assertRegion(t, img, image.Rect(50, 50, 200, 250), red, 24) // halved coordinates
	assertRegion(t, img, image.Rect(200, 50, 350, 250), blue, 24)

	sharp, err := d.Screen(EncodeOptions{Quality: 95}).Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blurred, err := d.Screen(EncodeOptions{Quality: 95, Blur: true, BlurRadius: 6}).Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	si, bi := decodeShot(t, sharp[0]), decodeShot(t, blurred[0])
	// Two pixels left of the edge: red when sharp, red-blue mix when blurred.
	if !near(si.At(398, 300), red, 30) {
		t.Fatalf("sharp capture at the edge is %v, want red", si.At(398, 300))
	}
	r, _, b, _ := bi.At(398, 300).RGBA()
	if r>>8 < 80 || b>>8 < 60 {
		t.Fatalf("blurred capture at the edge is %v, want a red/blue mix", bi.At(398, 300))
	}
	// Far from any edge the colour is unchanged by the blur.
	assertRegion(t, bi, image.Rect(150, 150, 350, 450), red, 24)
	if bytes.Equal(sharp[0].JPEG, blurred[0].JPEG) {
		t.Fatal("blur did not change the JPEG")
	}
}

func TestActiveWindow(t *testing.T) {
	x := startXvfb(t)
	d := x.open(t)

	if _, err := d.ActiveWindow(); !errors.Is(err, ErrNoActiveWindow) {
		t.Fatalf("without a window manager: err = %v, want ErrNoActiveWindow", err)
	}

	id := x.window(t, testWindow{rect: [4]int{0, 0, 50, 50}, color: 0xffffff,
		netName: "main.go — Visual Studio Code ✓", wmName: "legacy", class: "Code", instance: "code", pid: os.Getpid()})
	x.activate(t, id)
	w, err := d.ActiveWindow()
	if err != nil {
		t.Fatal(err)
	}
	want := Window{ID: uint32(id), App: "Code", Title: "main.go — Visual Studio Code ✓", PID: os.Getpid(),
		Class: "Code", Instance: "code", Comm: testComm()}
	if w != want {
		t.Fatalf("active window\n got %+v\nwant %+v", w, want)
	}

	// No WM_CLASS and no _NET_WM_NAME: app from /proc/<pid>/comm, title from WM_NAME.
	id2 := x.window(t, testWindow{rect: [4]int{60, 0, 50, 50}, color: 0xffffff, wmName: "plain title", pid: os.Getpid()})
	x.activate(t, id2)
	w, err = d.ActiveWindow()
	if err != nil {
		t.Fatal(err)
	}
	if w.ID != uint32(id2) || w.App != testComm() || w.Title != "plain title" || w.Class != "" {
		t.Fatalf("window without WM_CLASS: %+v, want app %q title %q", w, testComm(), "plain title")
	}

	x.activate(t, 0)
	if _, err := d.ActiveWindow(); !errors.Is(err, ErrNoActiveWindow) {
		t.Fatalf("_NET_ACTIVE_WINDOW None: err = %v, want ErrNoActiveWindow", err)
	}
}

// testComm is what the kernel reports as this test binary's name: the
// executable's base name cut to 15 bytes.
func testComm() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	name := filepath.Base(exe)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// waitIdle polls until the idle time reaches at least min.
func waitIdle(t *testing.T, d *X11, min time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		idle, err := d.IdleTime()
		if err != nil {
			t.Fatal(err)
		}
		if idle >= min {
			return idle
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle time stayed at %v, never reached %v", idle, min)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestIdleTimeDropsAfterInput(t *testing.T) {
	x := startXvfb(t)
	d := x.open(t)
	for _, input := range [][]string{{"mousemove", "200", "200"}, {"key", "shift"}, {"click", "1"}} {
		before := waitIdle(t, d, 400*time.Millisecond)
		x.xdotool(t, input...)
		after, err := d.IdleTime()
		if err != nil {
			t.Fatal(err)
		}
		if after >= before {
			t.Fatalf("after xdotool %v idle is %v, was %v before: input did not reset it", input, after, before)
		}
	}
}

func TestCaptureSkipsExcludedApp(t *testing.T) {
	x := startXvfb(t)
	id := x.window(t, testWindow{rect: [4]int{0, 0, 300, 200}, color: 0xff0000,
		netName: "Passwords.kdbx - KeePassXC", class: "KeePassXC", instance: "keepassxc", pid: os.Getpid()})
	x.activate(t, id)
	d := x.open(t)
	screen := &countingScreen{Screen: d.Screen(EncodeOptions{})}

	res, err := Capture(context.Background(), screen, d, []string{"firefox", "keepassxc"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped == nil || res.Skipped.Reason != "excluded app: KeePassXC" || len(res.Shots) != 0 {
		t.Fatalf("excluded app captured: skipped=%+v shots=%d", res.Skipped, len(res.Shots))
	}
	if screen.calls != 0 {
		t.Fatalf("screen was read %d times while an excluded app was focused", screen.calls)
	}

	res, err = Capture(context.Background(), screen, d, []string{"firefox"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != nil || len(res.Shots) != 1 || res.Window.App != "KeePassXC" {
		t.Fatalf("not excluded: skipped=%+v shots=%d window=%+v", res.Skipped, len(res.Shots), res.Window)
	}
	assertRegion(t, decodeShot(t, res.Shots[0]), image.Rect(0, 0, 300, 200), red, 24)
}

type countingScreen struct {
	Screen
	calls int
}

func (c *countingScreen) Capture(ctx context.Context) ([]Shot, error) {
	c.calls++
	return c.Screen.Capture(ctx)
}

func TestOpenErrors(t *testing.T) {
	t.Setenv("DISPLAY", "")
	if _, err := Open(""); err == nil {
		t.Fatal("Open without DISPLAY succeeded")
	}
	if _, err := Open(":4999"); err == nil {
		t.Fatal("Open of a display nobody serves succeeded")
	}
	if _, err := OpenRecordCounter(":4999"); err == nil {
		t.Fatal("OpenRecordCounter of a display nobody serves succeeded")
	}
}

func TestCaptureHonoursContext(t *testing.T) {
	x := startXvfb(t, "-screen", "0", "320x200x24")
	d := x.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Screen(EncodeOptions{}).Capture(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled capture: err = %v", err)
	}
}

func TestGrabAfterServerDiedIsAnError(t *testing.T) {
	x := startXvfb(t, "-screen", "0", "320x200x24")
	d := x.open(t)
	if _, err := d.Grab(image.Rect(0, 0, 320, 200)); err != nil {
		t.Fatal(err)
	}
	x.stop()
	if _, err := d.Grab(image.Rect(0, 0, 320, 200)); err == nil {
		t.Fatal("grab succeeded with the X server gone")
	}
	if _, err := d.IdleTime(); err == nil {
		t.Fatal("idle time read with the X server gone")
	}
}
