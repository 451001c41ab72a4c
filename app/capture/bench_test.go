package capture

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"
)

// desktopImage draws something shaped like a working desktop (gradient
// wallpaper, windows with title bars, lines of glyph-sized marks) so JPEG
// sizes are realistic; a black Xvfb screen would compress to nothing.
func desktopImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(40 + 60*x/w), uint8(60 + 80*y/h), 140, 255})
		}
	}
	r := rand.New(rand.NewPCG(42, 42))
	fill := func(rc image.Rectangle, c color.RGBA) {
		rc = rc.Intersect(img.Bounds())
		for y := rc.Min.Y; y < rc.Max.Y; y++ {
			for x := rc.Min.X; x < rc.Max.X; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	for i := 0; i < 4; i++ {
		win := image.Rect(60+i*420, 50+i*90, 60+i*420+760, 50+i*90+700)
		fill(win, color.RGBA{250, 250, 248, 255})
		fill(image.Rect(win.Min.X, win.Min.Y, win.Max.X, win.Min.Y+28), color.RGBA{60, 63, 70, 255})
		for y := win.Min.Y + 40; y+12 < win.Max.Y; y += 18 {
			x := win.Min.X + 12 + r.IntN(3)*24
			for x < win.Max.X-20 && r.IntN(40) != 0 {
				gw := 4 + r.IntN(6)
				ink := uint8(r.IntN(90))
				fill(image.Rect(x, y+r.IntN(3), x+gw, y+12), color.RGBA{ink, ink, ink + 30, 255})
				x += gw + 2
				if r.IntN(7) == 0 {
					x += 6
				}
			}
		}
	}
	return img
}

// paintRoot uploads img onto the root window in strips small enough for a
// request without BIG-REQUESTS.
func paintRoot(b *testing.B, x *xvfb, img *image.RGBA) {
	gc, err := xproto.NewGcontextId(x.conn)
	if err != nil {
		b.Fatal(err)
	}
	if err := xproto.CreateGCChecked(x.conn, gc, xproto.Drawable(x.root), 0, nil).Check(); err != nil {
		b.Fatal(err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	const rows = 30
	buf := make([]byte, 4*w*rows)
	for y0 := 0; y0 < h; y0 += rows {
		n := min(rows, h-y0)
		for y := 0; y < n; y++ {
			for xx := 0; xx < w; xx++ {
				p := img.Pix[(y0+y)*img.Stride+4*xx:]
				o := buf[4*(y*w+xx):]
				o[0], o[1], o[2], o[3] = p[2], p[1], p[0], 0 // BGRX
			}
		}
		err := xproto.PutImageChecked(x.conn, xproto.ImageFormatZPixmap, xproto.Drawable(x.root), gc,
			uint16(w), uint16(n), 0, int16(y0), 0, 24, buf[:4*w*n]).Check()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureEncode measures one 1920x1080 display: the X capture
// through robotgo and the JPEG encoding separately, and the JPEG size.
func BenchmarkCaptureEncode(b *testing.B) {
	x := startXvfb(b, "-screen", "0", "1920x1080x24")
	paintRoot(b, x, desktopImage(1920, 1080))
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
