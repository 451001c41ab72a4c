package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var (
	segStart = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	segEnd   = segStart.Add(10 * time.Minute)
)

func testManifest() Manifest {
	return Manifest{
		Worker:     strings.Repeat("ab", 32),
		Session:    strings.Repeat("0f", 16),
		Index:      3,
		Start:      segStart,
		End:        segEnd,
		Project:    12,
		Activity:   5,
		Memo:       "fixing the invoice export — ünïcode",
		AppVersion: "0.1.0",
		Policy:     Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		Prev:       strings.Repeat("cd", 32),
	}
}

// testActivity makes n window events spread over the segment, plus afk, web, input
// and one minute record per minute.
func testActivity(n int) Activity {
	a := Activity{Source: SourceActivityWatch, ActiveSeconds: 540}
	step := segEnd.Sub(segStart) / time.Duration(max(n, 1))
	for i := 0; i < n; i++ {
		a.Window = append(a.Window, Event{
			Timestamp: segStart.Add(time.Duration(i) * step),
			Duration:  step.Seconds() * 0.9,
			Data:      map[string]any{"app": "code", "title": fmt.Sprintf("main.go — window %d", i)},
		})
	}
	a.AFK = []Event{{Timestamp: segStart, Duration: 600, Data: map[string]any{"status": "not-afk"}}}
	a.Web = []Event{{Timestamp: segStart.Add(time.Minute), Duration: 12.5,
		Data: map[string]any{"url": "https://example.org/a?b=c", "title": "Docs", "audible": false, "incognito": false}}}
	for m := 0; m < 10; m++ {
		t := segStart.Add(time.Duration(m) * time.Minute)
		a.Input = append(a.Input, Event{Timestamp: t, Duration: 60,
			Data: map[string]any{"presses": float64(40 + m), "clicks": float64(3), "deltaX": float64(0), "deltaY": float64(0), "scrollX": float64(0), "scrollY": float64(0)}})
		a.Minutes = append(a.Minutes, Minute{T: t, Keys: int64(40 + m), Clicks: 3, Moves: 120, Active: m != 4})
	}
	return a
}

// noisyJPEG encodes a w×h gradient with noise of the given amplitude at quality 80;
// 1920×1080 with amplitude 8 gives a screenshot-sized file (~250 KiB).
func noisyJPEG(tb testing.TB, w, h, amp int, seed uint64) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := rng.IntN(2*amp+1) - amp
			c := func(v int) uint8 { return uint8(min(255, max(0, v+n))) }
			img.SetRGBA(x, y, color.RGBA{c(x * 255 / w), c(y * 255 / h), c(128 + (x/64+y/64)%2*60), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func testShots(tb testing.TB) []Screenshot {
	return []Screenshot{
		{TakenAt: segStart.Add(3*time.Minute + 17*time.Second), JPEG: noisyJPEG(tb, 32, 24, 20, 1)},
		{TakenAt: segStart.Add(7*time.Minute + 41*time.Second), JPEG: noisyJPEG(tb, 24, 16, 20, 2)},
	}
}

func validBundle(tb testing.TB) Built {
	tb.Helper()
	b, err := Build(testManifest(), testActivity(20), testShots(tb))
	if err != nil {
		tb.Fatalf("Build: %v", err)
	}
	return b
}

// entry is one raw archive entry for hand-made archives.
type entry struct {
	name   string
	method uint16
	data   []byte
}

// parts splits a bundle into its manifest and entries, to rebuild it with changes.
func parts(tb testing.TB, zipData []byte) (Manifest, []entry) {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		tb.Fatal(err)
	}
	var m Manifest
	var out []entry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			tb.Fatal(err)
		}
		rc.Close()
		if f.Name == ManifestName {
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		out = append(out, entry{f.Name, f.Method, buf.Bytes()})
	}
	return m, out
}

func zipOf(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func manifestEntry(tb testing.TB, m Manifest) entry {
	tb.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return entry{ManifestName, zip.Deflate, data}
}

// listed returns a manifest file entry that matches data exactly.
func listed(name string, data []byte, takenAt time.Time) FileEntry {
	fe := FileEntry{Name: name, SHA256: sha256Hex(data), Size: int64(len(data)), Type: TypeJPEG, TakenAt: takenAt}
	if name == ActivityName {
		fe.Type, fe.TakenAt = TypeJSON, time.Time{}
	}
	return fe
}

func deflate(tb testing.TB, data []byte, level int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, level)
	if _, err := fw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// rawZip writes entries whose headers say whatever the test wants (CreateRaw): data is
// already compressed, and the uncompressed size and CRC in the headers are lies.
func rawZip(tb testing.TB, plain []entry, raw []entry, claimedSize uint64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range plain {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(e.data)
	}
	for _, e := range raw {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: e.method,
			CompressedSize64: uint64(len(e.data)), UncompressedSize64: claimedSize, CRC32: 0xdeadbeef})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
