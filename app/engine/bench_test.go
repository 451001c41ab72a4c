package engine

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"pow.do/app/activitywatch"
	"pow.do/app/capture"
	"pow.do/app/capture/capturetest"
	"pow.do/app/segment"
	"pow.do/shared/bundle"
)

// BenchmarkSegmentPipeline measures, in one run, what one segment costs the tracker:
// capturing and encoding one 1920×1080 screen from a real X server (Xvfb showing a
// desktop-like picture), and bundling and sealing a 10-minute segment with two such
// screenshots. It reports both times, their ratio, the JPEG size and the bundle bytes
// per segment.
//
//	go test -run '^$' -bench SegmentPipeline ./app/engine/
func BenchmarkSegmentPipeline(b *testing.B) {
	display := benchXvfb(b)
	paintRoot(b, display, capturetest.DesktopImage(1920, 1080))
	x, err := capture.Open(display)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	screen := x.Screen(capture.EncodeOptions{Quality: 80, MaxWidth: 1920})
	ctx := context.Background()
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	act := typicalActivity(start, start.Add(10*time.Minute))

	var captureT, sealT time.Duration
	var jpegBytes, bundleBytes, cipherBytes int
	for b.Loop() {
		t0 := time.Now()
		var shots []segment.Shot
		for i := 1; i <= 2; i++ {
			got, err := screen.Capture(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) != 1 || got[0].Width != 1920 || got[0].Height != 1080 {
				b.Fatalf("captured %d screens", len(got))
			}
			jpegBytes += len(got[0].JPEG)
			shots = append(shots, segment.Shot{Name: bundle.ScreenshotName(i), TakenAt: start.Add(time.Duration(i) * 4 * time.Minute), JPEG: got[0].JPEG})
		}
		t1 := time.Now()
		s, err := segment.Seal(segment.Input{
			Worker: strings.Repeat("ab", 32), Session: strings.Repeat("cd", 16), Index: 0, Start: start, End: start.Add(10 * time.Minute),
			Project: 1, Activity: 1, AppVersion: AppVersion, Recorded: act, Shots: shots,
			Policy: bundle.Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		})
		if err != nil {
			b.Fatal(err)
		}
		captureT += t1.Sub(t0)
		sealT += time.Since(t1)
		bundleBytes += s.PlainSize
		cipherBytes += len(s.Ciphertext)
	}
	n := float64(b.N)
	perScreen := float64(captureT.Microseconds()) / 1000 / (2 * n)
	perSeal := float64(sealT.Microseconds()) / 1000 / n
	b.ReportMetric(perScreen, "capture+encode-ms/screen")
	b.ReportMetric(perSeal, "bundle+seal-ms/segment")
	b.ReportMetric(perSeal/perScreen, "seal/screen-ratio")
	b.ReportMetric(float64(jpegBytes)/(2*n), "bytes/jpeg")
	b.ReportMetric(float64(bundleBytes)/n, "bundle-bytes/segment")
	b.ReportMetric(float64(cipherBytes)/n, "ciphertext-bytes/segment")
}

// typicalActivity is ten minutes of window switching every ~20 s, not-afk, and per-minute
// input counts, as the built-in watcher records it.
func typicalActivity(start, end time.Time) activitywatch.Activity {
	r := rand.New(rand.NewPCG(7, 7))
	a := activitywatch.Activity{V: 1, Source: activitywatch.SourceBuiltin}
	apps := []string{"code", "firefox", "terminal", "slack"}
	for t := start; t.Before(end); {
		d := time.Duration(5+r.IntN(30)) * time.Second
		if t.Add(d).After(end) {
			d = end.Sub(t)
		}
		app := apps[r.IntN(len(apps))]
		a.Window = append(a.Window, activitywatch.Event{Timestamp: t, Duration: d.Seconds(),
			Data: map[string]any{"app": app, "title": fmt.Sprintf("%s — document %d", app, r.IntN(50))}})
		t = t.Add(d)
	}
	a.AFK = []activitywatch.Event{{Timestamp: start, Duration: end.Sub(start).Seconds(), Data: map[string]any{"status": "not-afk"}}}
	for t := start; t.Before(end); t = t.Add(time.Minute) {
		a.Input = append(a.Input, activitywatch.Event{Timestamp: t, Duration: 60, Data: map[string]any{"presses": r.IntN(200), "clicks": r.IntN(30)}})
		a.Minutes = append(a.Minutes, activitywatch.Minute{T: t, Keys: int64(r.IntN(200)), Clicks: int64(r.IntN(30)), Moves: int64(r.IntN(900)), Active: true})
	}
	return segment.Clip(a, start, end)
}

// benchXvfb starts a 1920×1080 X server and returns its display name once it accepts
// connections. -noreset keeps the server from resetting when its last client leaves
// (paintRoot's connection): a reset drops the painted root and resets connections made
// meanwhile ("connection reset by peer").
func benchXvfb(b *testing.B) string {
	b.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-noreset", "-screen", "0", "1920x1080x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start Xvfb (apt-get install xvfb): %v", err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		b.Fatalf("Xvfb display number: %v", err)
	}
	display := ":" + strings.TrimSpace(line)
	if err := waitForX(display, exited, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	return display
}

// waitForX polls a real X connection to display until the server completes a handshake
// and answers a round trip, the server exits, or the deadline passes.
func waitForX(display string, exited <-chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := xgb.NewConnDisplay(display)
		if err == nil {
			_, err = xproto.GetInputFocus(conn).Reply()
			conn.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("X server %s not accepting connections after %s: %w", display, within, err)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("X server %s exited while starting: %v (last connect error: %w)", display, werr, err)
		case <-tick.C:
		}
	}
}

// paintRoot shows img on the X server at display.
func paintRoot(b *testing.B, display string, img *image.RGBA) {
	b.Helper()
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	capturetest.PaintRoot(b, conn, xproto.Setup(conn).DefaultScreen(conn).Root, img)
}
