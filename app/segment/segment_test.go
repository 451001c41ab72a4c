package segment

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/shared/bundle"
	"pow.do/shared/seal"
)

func jpg(t testing.TB, shade byte) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 32, 20))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func ev(at time.Time, secs float64, data map[string]any) activitywatch.Event {
	return activitywatch.Event{Timestamp: at, Duration: secs, Data: data}
}

// recorded is a segment's worth of activity that spills over both ends, as a watcher's
// heartbeats do.
func recorded() activitywatch.Activity {
	return activitywatch.Activity{V: 1, Source: activitywatch.SourceBuiltin,
		Window: []activitywatch.Event{
			ev(t0.Add(-30*time.Second), 90, map[string]any{"app": "code", "title": "main.go"}),
			ev(t0.Add(60*time.Second), 600, map[string]any{"app": "firefox", "title": "docs"}),
		},
		AFK:   []activitywatch.Event{ev(t0.Add(-time.Minute), 900, map[string]any{"status": "not-afk"})},
		Input: []activitywatch.Event{ev(t0, 60, map[string]any{"presses": 10})},
		Minutes: []activitywatch.Minute{
			{T: t0.Add(-time.Minute), Keys: 99}, {T: t0, Keys: 10, Active: true}, {T: t0.Add(time.Minute), Keys: 3, Active: true},
			{T: t0.Add(2 * time.Minute), Keys: 7},
		},
	}
}

func input(t testing.TB) Input {
	return Input{
		Worker: strings.Repeat("ab", 32), Session: strings.Repeat("cd", 16), Index: 1,
		Start: t0.Add(400 * time.Millisecond), End: t0.Add(2*time.Minute + 900*time.Millisecond),
		Project: 12, Activity: 5, Memo: "landing page", AppVersion: "0.1.0",
		Policy: bundle.Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		Prev:   strings.Repeat("ef", 32), Recorded: recorded(),
		Shots: []Shot{
			{Name: "screenshots/001.jpg", TakenAt: t0.Add(10*time.Second + 700*time.Millisecond), JPEG: jpg(t, 10)},
			{Name: "screenshots/003.jpg", TakenAt: t0.Add(70 * time.Second), JPEG: jpg(t, 200)},
		},
		Deleted: []bundle.Deleted{{Name: "screenshots/002.jpg", TakenAt: t0.Add(40 * time.Second), DeletedAt: t0.Add(3*time.Minute + 500*time.Millisecond)}},
		Skipped: []bundle.Skipped{{At: t0.Add(100 * time.Second), Reason: "excluded app: keepassxc"}},
	}
}

func TestSealOpensAsTheDVMReadsIt(t *testing.T) {
	in := input(t)
	s, err := Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := seal.Open(s.Ciphertext, s.Key[:], s.Nonce[:], s.X, s.OX)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != s.PlainSize {
		t.Fatalf("plain size %d, recorded %d", len(plain), s.PlainSize)
	}
	b, err := bundle.OpenBytes(plain, bundle.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	if !m.Start.Equal(t0) || !m.End.Equal(t0.Add(2*time.Minute)) || m.Prev != in.Prev || m.Index != 1 || m.Memo != "landing page" {
		t.Fatalf("manifest %+v", m)
	}
	if len(m.Files) != 3 || m.Files[1].Name != "screenshots/001.jpg" || !m.Files[1].TakenAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("files %+v", m.Files)
	}
	if len(m.Deleted) != 1 || !m.Deleted[0].DeletedAt.Equal(t0.Add(3*time.Minute)) || len(m.Skipped) != 1 {
		t.Fatalf("deleted %+v skipped %+v", m.Deleted, m.Skipped)
	}
	if got, _ := b.Screenshot("screenshots/003.jpg"); !bytes.Equal(got, in.Shots[1].JPEG) {
		t.Fatal("screenshot bytes differ")
	}
	// Activity clipped to [10:00:00, 10:02:00]: the window spill-over before the start and
	// after the end is cut, minutes outside the segment dropped.
	a := b.Activity
	if len(a.Window) != 2 || !a.Window[0].Timestamp.Equal(t0) || a.Window[0].Duration != 60 || a.Window[1].Duration != 60 {
		t.Fatalf("window %+v", a.Window)
	}
	if len(a.Minutes) != 2 || a.Minutes[0].Keys != 10 || a.Minutes[1].Keys != 3 {
		t.Fatalf("minutes %+v", a.Minutes)
	}
	if a.ActiveSeconds != 120 {
		t.Fatalf("active %v s", a.ActiveSeconds)
	}
}

func TestSameInputSameBundleNewKey(t *testing.T) {
	in := input(t)
	a, err := Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	if a.OX != b.OX {
		t.Fatal("the same segment gave two different plaintexts: the chain would break on a resend")
	}
	if a.Key == b.Key || a.X == b.X {
		t.Fatal("a key was reused")
	}
	if got := a.Seal(); got.X != a.X || got.OX != a.OX || got.Key != a.Key || !bytes.Equal(got.Ciphertext, a.Ciphertext) {
		t.Fatal("Seal() lost a field")
	}
}

func TestBuildRefusesWhatTheDVMWouldRefuse(t *testing.T) {
	for name, mutate := range map[string]func(*Input){
		"empty segment":       func(in *Input) { in.End = in.Start },
		"end before start":    func(in *Input) { in.End = in.Start.Add(-time.Minute) },
		"memo too long":       func(in *Input) { in.Memo = strings.Repeat("x", 1001) },
		"no project":          func(in *Input) { in.Project = 0 },
		"prev on index 0":     func(in *Input) { in.Index = 0 },
		"not a jpeg":          func(in *Input) { in.Shots[0].JPEG = []byte("GIF89a") },
		"shot outside":        func(in *Input) { in.Shots[0].TakenAt = t0.Add(time.Hour) },
		"deleted and kept":    func(in *Input) { in.Deleted[0].Name = "screenshots/001.jpg" },
		"bad worker":          func(in *Input) { in.Worker = "nope" },
		"policy out of range": func(in *Input) { in.Policy.SegmentSeconds = 5 },
	} {
		in := input(t)
		mutate(&in)
		if _, err := Build(in); err == nil {
			t.Errorf("%s: built", name)
		} else if name != "empty segment" && name != "end before start" && !errors.Is(err, bundle.ErrRefused) && !errors.Is(err, bundle.ErrNotJPEG) {
			t.Errorf("%s: %v is not a bundle refusal", name, err)
		}
	}
}

func TestReason(t *testing.T) {
	if got := Reason("  "); got != "unknown" {
		t.Fatalf("empty reason %q", got)
	}
	long := strings.Repeat("é", 400) // 800 bytes
	got := Reason(long)
	if len(got) > bundle.MaxReasonBytes || !strings.HasPrefix(long, got) || len(got) < bundle.MaxReasonBytes-1 {
		t.Fatalf("cut to %d bytes", len(got))
	}
	if got := Reason("bad \xff byte"); got != "bad ? byte" {
		t.Fatalf("invalid UTF-8 kept: %q", got)
	}
}

func TestClipEmptyAndDuplicateMinutes(t *testing.T) {
	a := Clip(activitywatch.Activity{Minutes: []activitywatch.Minute{{T: t0, Keys: 1}, {T: t0, Keys: 2}, {T: t0.Add(30 * time.Second)}}}, t0, t0.Add(time.Minute))
	if a.V != 1 || a.Source != activitywatch.SourceBuiltin || len(a.Minutes) != 1 || a.ActiveSeconds != 0 {
		t.Fatalf("clipped %+v", a)
	}
	if err := func() error { b := ToBundle(a); return b.Validate(t0, t0.Add(time.Minute)) }(); err != nil {
		t.Fatal(err)
	}
}
