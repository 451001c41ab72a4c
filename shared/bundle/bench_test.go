package bundle

import (
	"bytes"
	"testing"
	"time"
)

// typicalInput is one segment as the tracker makes it: a 1920×1080 screenshot at
// quality 80 (~250 KiB) and ~100 activity events.
func typicalInput(b *testing.B) (Manifest, Activity, []Screenshot) {
	b.Helper()
	shot := noisyJPEG(b, 1920, 1080, 8, 42)
	return testManifest(), testActivity(80), []Screenshot{{TakenAt: segStart.Add(4 * time.Minute), JPEG: shot}}
}

func BenchmarkWrite(b *testing.B) {
	m, a, shots := typicalInput(b)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if _, err := Write(&buf, m, a, shots); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(len(shots[0].JPEG))/1024, "jpeg-KiB")
}

func BenchmarkOpen(b *testing.B) {
	m, a, shots := typicalInput(b)
	built, err := Build(m, a, shots)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(built.ZIP)))
	for b.Loop() {
		if _, err := OpenBytes(built.ZIP, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(shots[0].JPEG))/1024, "jpeg-KiB")
}
