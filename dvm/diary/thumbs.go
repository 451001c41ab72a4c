package diary

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"pow.do/dvm/store"
)

// maxPixels refuses to decode screenshots larger than 8K×8K: a hostile JPEG header can
// claim 65535×65535 and make a decoder allocate 16 GiB.
const maxPixels = 7680 * 7680

// thumbCache makes thumbnails from stored screenshots and keeps them on disk
// (<dir>/ab/<sha>-<width>.jpg, mode 0600). Each is made once even when many requests
// ask for it at the same time, and at most two are made at once.
type thumbCache struct {
	st    store.Store
	dir   string
	width int
	sem   chan struct{}

	mu       sync.Mutex
	inflight map[string]*thumbCall
}

type thumbCall struct {
	done chan struct{}
	err  error
}

func newThumbCache(st store.Store, dir string, width int) (*thumbCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("diary: thumbnail dir: %w", err)
	}
	return &thumbCache{st: st, dir: dir, width: width, sem: make(chan struct{}, 2), inflight: map[string]*thumbCall{}}, nil
}

func (c *thumbCache) path(sha string) string {
	return filepath.Join(c.dir, sha[:2], fmt.Sprintf("%s-%d.jpg", sha, c.width))
}

// open returns the thumbnail of screenshot sha, making it first if needed.
func (c *thumbCache) open(sha string) (*os.File, error) {
	p := c.path(sha)
	if f, err := os.Open(p); err == nil {
		return f, nil
	}
	c.mu.Lock()
	call, busy := c.inflight[sha]
	if !busy {
		call = &thumbCall{done: make(chan struct{})}
		c.inflight[sha] = call
	}
	c.mu.Unlock()
	if busy {
		<-call.done
	} else {
		call.err = c.make(sha, p)
		c.mu.Lock()
		delete(c.inflight, sha)
		c.mu.Unlock()
		close(call.done)
	}
	if call.err != nil {
		return nil, call.err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("thumbnail %s: %w", sha, err)
	}
	return f, nil
}

func (c *thumbCache) make(sha, p string) error {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	src, err := c.st.OpenScreenshot(sha)
	if err != nil {
		return err
	}
	defer src.Close()
	data, err := Thumbnail(src, c.width)
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", sha, err)
	}
	if err := os.Mkdir(filepath.Dir(p), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("thumbnail %s: %w", sha, err)
	}
	if err := writePrivate(p, func(f *os.File) error { _, err := f.Write(data); return err }); err != nil {
		return fmt.Errorf("thumbnail %s: %w", sha, err)
	}
	return nil
}

// Thumbnail scales a JPEG down to width pixels (never up), averaging the source pixels
// that fall into each target pixel, and encodes it as a JPEG.
func Thumbnail(r io.Reader, width int) ([]byte, error) {
	var buf bytes.Buffer
	cfg, err := jpeg.DecodeConfig(io.TeeReader(r, &buf))
	if err != nil {
		return nil, fmt.Errorf("not a JPEG: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("JPEG of %d×%d pixels is too large to thumbnail", cfg.Width, cfg.Height)
	}
	img, err := jpeg.Decode(io.MultiReader(&buf, r))
	if err != nil {
		return nil, fmt.Errorf("decode JPEG: %w", err)
	}
	out := scaleDown(img, width)
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, out, &jpeg.Options{Quality: 70}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return enc.Bytes(), nil
}

// scaleDown is a box filter: each target pixel is the mean of its source rectangle.
func scaleDown(src image.Image, width int) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if width >= sw {
		width = sw
	}
	height := max(1, sh*width/sw)
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	for ty := 0; ty < height; ty++ {
		y0, y1 := b.Min.Y+ty*sh/height, b.Min.Y+(ty+1)*sh/height
		for tx := 0; tx < width; tx++ {
			x0, x1 := b.Min.X+tx*sw/width, b.Min.X+(tx+1)*sw/width
			var r, g, bl, n uint64
			for y := y0; y < max(y1, y0+1); y++ {
				for x := x0; x < max(x1, x0+1); x++ {
					cr, cg, cb, _ := src.At(x, y).RGBA()
					r, g, bl, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), n+1
				}
			}
			i := dst.PixOffset(tx, ty)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = uint8(r/n>>8), uint8(g/n>>8), uint8(bl/n>>8), 255
		}
	}
	return dst
}

// shaParam reads {sha}.
func shaParam(r *http.Request) (string, error) {
	sha := r.PathValue("sha")
	if !store.IsHex(sha, 64) {
		return "", badRequest("screenshot %q: want a 64-hex sha256", clip(sha))
	}
	return sha, nil
}

func (d *Diary) screenshot(w http.ResponseWriter, r *http.Request) {
	sha, err := shaParam(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	f, err := d.st.OpenScreenshot(sha)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	defer f.Close()
	serveJPEG(w, r, f)
}

func (d *Diary) thumbnail(w http.ResponseWriter, r *http.Request) {
	sha, err := shaParam(r)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	f, err := d.thumbs.open(sha)
	if err != nil {
		d.apiFail(w, r, err)
		return
	}
	defer f.Close()
	serveJPEG(w, r, f)
}

func serveJPEG(w http.ResponseWriter, r *http.Request, f *os.File) {
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "cannot read the file", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	http.ServeContent(w, r, "", st.ModTime(), f)
}
