package capture

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"golang.org/x/image/draw"
)

// Defaults used when EncodeOptions fields are zero.
const (
	DefaultQuality    = 80
	DefaultBlurRadius = 8
	blurPasses        = 3 // three box blurs approximate a gaussian closely
)

// EncodeOptions says how a screenshot becomes a JPEG.
type EncodeOptions struct {
	Quality    int  // JPEG quality 1..100; 0 means DefaultQuality
	MaxWidth   int  // downscale (keeping the aspect ratio) when wider; 0 = keep
	Blur       bool // blur so text becomes unreadable
	BlurRadius int  // box radius in output pixels; 0 means DefaultBlurRadius
}

func (o EncodeOptions) quality() int {
	if o.Quality <= 0 {
		return DefaultQuality
	}
	if o.Quality > 100 {
		return 100
	}
	return o.Quality
}

// Encode turns a screenshot into a JPEG: downscale to MaxWidth, blur if asked,
// encode. img's alpha is ignored (JPEG has none). It returns the JPEG and the
// encoded size.
func Encode(img *image.RGBA, o EncodeOptions) ([]byte, image.Point, error) {
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, image.Point{}, fmt.Errorf("encode: empty image %v", b)
	}
	if o.MaxWidth < 0 {
		return nil, image.Point{}, fmt.Errorf("encode: negative max width %d", o.MaxWidth)
	}
	out := Downscale(img, o.MaxWidth)
	if o.Blur {
		r := o.BlurRadius
		if r <= 0 {
			r = DefaultBlurRadius
		}
		if out == img { // never modify the caller's pixels
			out = cloneRGBA(img)
		}
		Blur(out, r, blurPasses)
	}
	var buf bytes.Buffer
	// Rough guess of the final size so the buffer rarely grows.
	buf.Grow(out.Bounds().Dx() * out.Bounds().Dy() / 8)
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: o.quality()}); err != nil {
		return nil, image.Point{}, fmt.Errorf("encode jpeg: %w", err)
	}
	return buf.Bytes(), out.Bounds().Size(), nil
}

// Downscale returns img scaled to maxWidth keeping the aspect ratio, or img
// itself when it is not wider than maxWidth (or maxWidth is 0). The filter is
// bilinear with its support stretched by the scale factor (x/image/draw's
// Kernel.Scale), so downscaling averages every source pixel instead of
// aliasing.
func Downscale(img *image.RGBA, maxWidth int) *image.RGBA {
	b := img.Bounds()
	if maxWidth <= 0 || b.Dx() <= maxWidth {
		return img
	}
	h := (b.Dy()*maxWidth + b.Dx()/2) / b.Dx()
	if h < 1 {
		h = 1
	}
	dst := image.NewRGBA(image.Rect(0, 0, maxWidth, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

func cloneRGBA(src *image.RGBA) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*b.Dx()], src.Pix[y*src.Stride:y*src.Stride+4*b.Dx()])
	}
	return dst
}

// Blur applies a box blur of the given radius `passes` times, horizontally
// then vertically, in place (colour channels only; alpha is left alone).
// Repeated box blurs converge on a gaussian at a cost independent of the
// radius: each pass is a running sum.
func Blur(img *image.RGBA, radius, passes int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if radius <= 0 || passes <= 0 || w == 0 || h == 0 {
		return
	}
	pix, stride := img.Pix, img.Stride
	line := make([]uint8, 4*w)
	sums := make([]uint32, 3*w)
	for p := 0; p < passes; p++ {
		for y := 0; y < h; y++ {
			row := pix[y*stride : y*stride+4*w]
			blurRow(row, line[:4*w], w, radius)
		}
		blurColumns(pix, stride, w, h, radius, sums)
	}
}

// blurRow box-blurs one row of RGBA pixels in place using tmp as scratch.
func blurRow(row, tmp []uint8, w, r int) {
	copy(tmp, row)
	div := uint32(2*r + 1)
	for c := 0; c < 3; c++ {
		// Window [x-r, x+r] with edges clamped to the first/last pixel.
		var sum uint32
		for i := -r; i <= r; i++ {
			sum += uint32(tmp[4*clamp(i, 0, w-1)+c])
		}
		for x := 0; x < w; x++ {
			row[4*x+c] = uint8(sum / div)
			sum += uint32(tmp[4*min(x+r+1, w-1)+c])
			sum -= uint32(tmp[4*max(x-r, 0)+c])
		}
	}
}

// blurColumns box-blurs every column in place, walking rows so memory is
// read sequentially: sums holds the running window sum of every column.
// Rows still needed as the window's trailing edge are kept in a ring buffer.
func blurColumns(pix []uint8, stride, w, h, r int, sums []uint32) {
	div := uint32(2*r + 1)
	rowAt := func(y int) []uint8 {
		y = clamp(y, 0, h-1)
		return pix[y*stride : y*stride+4*w]
	}
	// The trailing rows are overwritten before they leave the window, so keep
	// copies of the original rows [y-r, y] in a ring of r+1 rows.
	ring := make([]uint8, (r+1)*4*w)
	ringRow := func(y int) []uint8 {
		i := ((y % (r + 1)) + (r + 1)) % (r + 1)
		return ring[i*4*w : (i+1)*4*w]
	}
	for i := range sums {
		sums[i] = 0
	}
	for i := -r; i <= r; i++ {
		src := rowAt(i)
		for x := 0; x < w; x++ {
			sums[3*x] += uint32(src[4*x])
			sums[3*x+1] += uint32(src[4*x+1])
			sums[3*x+2] += uint32(src[4*x+2])
		}
	}
	for y := 0; y < h; y++ {
		// Save the original of row y before overwriting it.
		cur := rowAt(y)
		copy(ringRow(y), cur)
		for x := 0; x < w; x++ {
			cur[4*x] = uint8(sums[3*x] / div)
			cur[4*x+1] = uint8(sums[3*x+1] / div)
			cur[4*x+2] = uint8(sums[3*x+2] / div)
		}
		// Slide: add row y+r+1 (not yet modified), drop the original of
		// row y-r (edges clamped).
		add := rowAt(y + r + 1)
		drop := ringRow(max(y-r, 0))
		for x := 0; x < w; x++ {
			sums[3*x] += uint32(add[4*x]) - uint32(drop[4*x])
			sums[3*x+1] += uint32(add[4*x+1]) - uint32(drop[4*x+1])
			sums[3*x+2] += uint32(add[4*x+2]) - uint32(drop[4*x+2])
		}
	}
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
