package capture

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

func randomRGBA(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		if i%4 == 3 {
			img.Pix[i] = 0xff
		} else {
			img.Pix[i] = uint8(r.IntN(256))
		}
	}
	return img
}

// naiveBoxBlur is the textbook definition: every output pixel is the mean of
// the (2r+1) neighbours along the axis, edges clamped.
func naiveBoxBlur(img *image.RGBA, r, passes int) *image.RGBA {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	cur := cloneRGBA(img)
	at := func(m *image.RGBA, x, y, c int) int {
		x, y = clamp(x, 0, w-1), clamp(y, 0, h-1)
		return int(m.Pix[y*m.Stride+4*x+c])
	}
	for p := 0; p < passes; p++ {
		tmp := cloneRGBA(cur)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for c := 0; c < 3; c++ {
					s := 0
					for i := -r; i <= r; i++ {
						s += at(cur, x+i, y, c)
					}
					tmp.Pix[y*tmp.Stride+4*x+c] = uint8(s / (2*r + 1))
				}
			}
		}
		out := cloneRGBA(tmp)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for c := 0; c < 3; c++ {
					s := 0
					for i := -r; i <= r; i++ {
						s += at(tmp, x, y+i, c)
					}
					out.Pix[y*out.Stride+4*x+c] = uint8(s / (2*r + 1))
				}
			}
		}
		cur = out
	}
	return cur
}

func TestBlurMatchesDefinition(t *testing.T) {
	for _, tc := range []struct{ w, h, r, passes int }{
		{37, 23, 1, 1}, {37, 23, 3, 3}, {16, 40, 8, 2}, {5, 4, 9, 3}, {1, 1, 2, 3}, {64, 1, 4, 3},
	} {
		img := randomRGBA(tc.w, tc.h, uint64(tc.w*1000+tc.r))
		want := naiveBoxBlur(img, tc.r, tc.passes)
		Blur(img, tc.r, tc.passes)
		if !bytes.Equal(img.Pix, want.Pix) {
			t.Fatalf("%+v: fast blur differs from the definition", tc)
		}
	}
}

func TestBlurKeepsFlatColourAndAlpha(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 50, 30))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []uint8{10, 200, 90, 0xff})
	}
	Blur(img, 6, 3)
	for i := 0; i < len(img.Pix); i += 4 {
		if !bytes.Equal(img.Pix[i:i+4], []uint8{10, 200, 90, 0xff}) {
			t.Fatalf("flat image changed at %d: %v", i/4, img.Pix[i:i+4])
		}
	}
}

func TestDownscaleKeepsAspect(t *testing.T) {
	for _, tc := range []struct{ w, h, max, ww, wh int }{
		{384, 216, 256, 256, 144},
		{256, 144, 192, 192, 108},
		{385, 217, 128, 128, 72},
		{1000, 3, 100, 100, 1}, // never 0 rows
		{800, 600, 1920, 800, 600},
		{800, 600, 0, 800, 600},
	} {
		img := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		out := Downscale(img, tc.max)
		if out.Bounds().Dx() != tc.ww || out.Bounds().Dy() != tc.wh {
			t.Errorf("%dx%d max %d -> %v, want %dx%d", tc.w, tc.h, tc.max, out.Bounds().Size(), tc.ww, tc.wh)
		}
	}
}

func TestDownscaleAveragesInsteadOfAliasing(t *testing.T) {
	// One-pixel black/white columns: point sampling would give pure black or
	// white, a proper filter gives grey.
	img := image.NewRGBA(image.Rect(0, 0, 400, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 400; x++ {
			v := uint8(0)
			if x%2 == 0 {
				v = 255
			}
			img.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	out := Downscale(img, 100)
	for x := 2; x < 98; x++ {
		if v := out.RGBAAt(x, 5).R; v < 100 || v > 155 {
			t.Fatalf("column %d is %d, want grey", x, v)
		}
	}
}

func TestEncode(t *testing.T) {
	img := randomRGBA(320, 200, 7)
	orig := bytes.Clone(img.Pix)

	lo, size, err := Encode(img, EncodeOptions{Quality: 30})
	if err != nil {
		t.Fatal(err)
	}
	hi, _, err := Encode(img, EncodeOptions{Quality: 95})
	if err != nil {
		t.Fatal(err)
	}
	if size != (image.Point{320, 200}) || len(lo) >= len(hi) {
		t.Fatalf("size %v, q30 %d bytes, q95 %d bytes", size, len(lo), len(hi))
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(lo))
	if err != nil || cfg.Width != 320 || cfg.Height != 200 {
		t.Fatalf("decode config %+v %v", cfg, err)
	}

	blurred, _, err := Encode(img, EncodeOptions{Quality: 95, Blur: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.Pix, orig) {
		t.Fatal("Encode with blur modified the caller's pixels")
	}
	// Noise blurred flat compresses far better.
	if len(blurred) >= len(hi)/2 {
		t.Fatalf("blurred noise %d bytes, sharp %d: blur had no effect", len(blurred), len(hi))
	}

	small, size, err := Encode(img, EncodeOptions{MaxWidth: 100})
	if err != nil || size != (image.Point{100, 63}) {
		t.Fatalf("max width 100: size %v err %v", size, err)
	}
	if cfg, _ := jpeg.DecodeConfig(bytes.NewReader(small)); cfg.Width != 100 || cfg.Height != 63 {
		t.Fatalf("max width 100: JPEG is %dx%d", cfg.Width, cfg.Height)
	}

	if _, _, err := Encode(image.NewRGBA(image.Rect(0, 0, 0, 10)), EncodeOptions{}); err == nil {
		t.Fatal("empty image encoded")
	}
	if _, _, err := Encode(img, EncodeOptions{MaxWidth: -1}); err == nil {
		t.Fatal("negative max width accepted")
	}
}
