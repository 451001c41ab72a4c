// Package capturetest has what benchmarks of screen capture share: a desktop-like
// picture, so JPEG sizes are realistic, and a way to show it on a real X server.
package capturetest

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// DesktopImage draws something shaped like a working desktop (gradient
// wallpaper, windows with title bars, lines of glyph-sized marks) so JPEG
// sizes are realistic; a black Xvfb screen would compress to nothing.
func DesktopImage(w, h int) *image.RGBA {
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

// PaintRoot uploads img onto the root window of the X connection in strips small
// enough for a request without BIG-REQUESTS.
func PaintRoot(tb testing.TB, conn *xgb.Conn, root xproto.Window, img *image.RGBA) {
	tb.Helper()
	gc, err := xproto.NewGcontextId(conn)
	if err != nil {
		tb.Fatal(err)
	}
	if err := xproto.CreateGCChecked(conn, gc, xproto.Drawable(root), 0, nil).Check(); err != nil {
		tb.Fatal(err)
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
		err := xproto.PutImageChecked(conn, xproto.ImageFormatZPixmap, xproto.Drawable(root), gc,
			uint16(w), uint16(n), 0, int16(y0), 0, 24, buf[:4*w*n]).Check()
		if err != nil {
			tb.Fatal(err)
		}
	}
}
