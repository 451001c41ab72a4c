package capture

import (
	"image"
	"testing"
	"time"

	"pow.do/app/capture/capturetest"
)

// BenchmarkCaptureEncode measures one 1920x1080 display: the X capture
// through robotgo and the JPEG encoding separately, and the JPEG size.
func BenchmarkCaptureEncode(b *testing.B) {
	x := startXvfb(b, "-screen", "0", "1920x1080x24")
	capturetest.PaintRoot(b, x.conn, x.root, capturetest.DesktopImage(1920, 1080))
	d := x.open(b)
	full := image.Rect(0, 0, 1920, 1080)
	for _, bc := range []struct {
		name string
		opts EncodeOptions
	}{
		{"q80", EncodeOptions{Quality: 80}},
		{"q80-w1280", EncodeOptions{Quality: 80, MaxWidth: 1280}},
		{"q80-blur", EncodeOptions{Quality: 80, Blur: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var capture, encode time.Duration
			var bytes int
			for b.Loop() {
				t0 := time.Now()
				img, err := d.Grab(full)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				data, _, err := Encode(img, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				capture += t1.Sub(t0)
				encode += time.Since(t1)
				bytes += len(data)
			}
			n := float64(b.N)
			b.ReportMetric(float64(capture.Microseconds())/1000/n, "capture-ms")
			b.ReportMetric(float64(encode.Microseconds())/1000/n, "encode-ms")
			b.ReportMetric(float64(bytes)/n, "bytes/jpeg")
		})
	}
}
