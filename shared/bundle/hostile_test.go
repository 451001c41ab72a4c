package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// allRefusals lists every sentinel, to check that each hostile archive is refused for
// its own reason and no other.
var allRefusals = []error{
	ErrNotZip, ErrTruncated, ErrCorrupt, ErrTooManyEntries, ErrAbsolutePath, ErrParentPath,
	ErrBackslash, ErrDuplicateName, ErrUnlisted, ErrNoManifest, ErrMissingFile,
	ErrEntryTooLarge, ErrTotalTooLarge, ErrRatio, ErrSizeMismatch, ErrHashMismatch,
	ErrVersion, ErrInvalidManifest, ErrInvalidActivity, ErrNotJPEG,
}

type hostile struct {
	name string
	zip  []byte
	lim  Limits
	want error
}

// hostileArchives builds one archive per refusal. Apart from the flaw under test each
// is a correct bundle, so the refusal can only come from the check it is named after.
func hostileArchives(tb testing.TB) []hostile {
	tb.Helper()
	good := validBundle(tb)
	m, es := parts(tb, good.ZIP) // es: activity.json, screenshots/001.jpg, screenshots/002.jpg
	shot := es[1]
	var out []hostile
	add := func(name string, want error, zipData []byte) {
		out = append(out, hostile{name: name, zip: zipData, want: want})
	}
	with := func(m Manifest, rest ...entry) []byte {
		return zipOf(tb, append([]entry{manifestEntry(tb, m)}, rest...)...)
	}
	// withFile lists data under name in a copy of the manifest, with a correct hash and size.
	withFile := func(name string, method uint16, data []byte) []byte {
		m2 := m
		m2.Files = append(append([]FileEntry{}, m.Files...), listed(name, data, segStart.Add(time.Minute)))
		return with(m2, append(append([]entry{}, es...), entry{name, method, data})...)
	}

	// Zip bomb by ratio: 2 MiB of zeros deflate to about 2 KiB, a correct manifest
	// entry and all — refused on the ratio long before 2 MiB are produced.
	bomb := append([]byte{0xFF, 0xD8, 0xFF}, make([]byte, 2<<20)...)
	add("ratio bomb", ErrRatio, withFile("screenshots/003.jpg", zip.Deflate, bomb))
	add("ratio bomb as manifest", ErrRatio, zipOf(tb, entry{ManifestName, zip.Deflate, make([]byte, 2<<20)}))

	// Zip bomb by size: the headers and the manifest say 100 bytes, the deflate stream
	// (incompressible, so the ratio is ~1) inflates to 3 MiB, over a 1 MiB entry limit.
	noise := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	noise[0], noise[1], noise[2] = 0xFF, 0xD8, 0xFF
	m2 := m
	m2.Files = append(append([]FileEntry{}, m.Files...), listed("screenshots/003.jpg", noise[:100], segStart))
	manData := manifestEntry(tb, m2)
	liar := rawZip(tb, append([]entry{manData}, es...), []entry{{"screenshots/003.jpg", zip.Deflate, deflate(tb, noise, flate.NoCompression)}}, 100)
	out = append(out, hostile{name: "size bomb, headers lie small", zip: liar, want: ErrEntryTooLarge,
		lim: Limits{MaxEntrySize: 1 << 20, MaxTotalSize: 8 << 20}})

	// The same archive with a wide entry limit: the stream is longer than the manifest says.
	out = append(out, hostile{name: "entry longer than listed", zip: liar, want: ErrSizeMismatch,
		lim: Limits{MaxEntrySize: 4 << 20, MaxTotalSize: 8 << 20}})

	// Total, counted: the entry fits the entry limit, but not what is left of the total.
	out = append(out, hostile{name: "total too large, headers lie small", zip: liar, want: ErrTotalTooLarge,
		lim: Limits{MaxEntrySize: 4 << 20, MaxTotalSize: 1 << 20}})
	// Declared sizes are refused before decompressing anything.
	m3 := m
	m3.Files = append([]FileEntry{}, m.Files...)
	m3.Files[1].Size = 40 << 20
	add("declared entry too large", ErrEntryTooLarge, with(m3, es...))
	m4 := m
	m4.Files = append([]FileEntry{}, m.Files...)
	m4.Files[1].Size, m4.Files[2].Size = 30<<20, 30<<20
	m4.Files = append(m4.Files, FileEntry{Name: "screenshots/003.jpg", SHA256: m.Files[1].SHA256, Size: 30 << 20, Type: TypeJPEG, TakenAt: segStart})
	add("declared total too large", ErrTotalTooLarge, with(m4, append(es, entry{"screenshots/003.jpg", zip.Store, shot.data})...))

	// Names.
	add("zip slip", ErrParentPath, with(m, append(es, entry{"../../etc/cron.d/evil", zip.Store, []byte("x")})...))
	add("zip slip inside a dir", ErrParentPath, with(m, append(es, entry{"screenshots/../../x.jpg", zip.Store, shot.data})...))
	add("absolute path", ErrAbsolutePath, with(m, append(es, entry{"/etc/passwd", zip.Store, []byte("x")})...))
	add("drive letter", ErrAbsolutePath, with(m, append(es, entry{"C:/Windows/x", zip.Store, []byte("x")})...))
	add("backslash", ErrBackslash, with(m, append(es, entry{`screenshots\001.jpg`, zip.Store, shot.data})...))
	add("duplicate name", ErrDuplicateName, with(m, append(es, es[0])...))
	add("duplicate manifest", ErrDuplicateName, with(m, append(es, manifestEntry(tb, m))...))
	add("unlisted file", ErrUnlisted, with(m, append(es, entry{"notes.txt", zip.Deflate, []byte("hello")})...))
	add("unlisted directory", ErrUnlisted, with(m, append(es, entry{"screenshots/", zip.Store, nil})...))
	add("listed file missing", ErrMissingFile, with(m, es[:2]...))
	add("no manifest", ErrNoManifest, zipOf(tb, es...))
	add("too many entries", ErrTooManyEntries, func() []byte {
		many := append([]entry{}, es...)
		for i := 3; len(many) < 64; i++ {
			many = append(many, entry{ScreenshotName(i), zip.Store, shot.data})
		}
		return with(m, many...) // 65 with the manifest
	}())

	// Content.
	tampered := bytes.Clone(shot.data)
	tampered[len(tampered)/2] ^= 0x01
	add("hash mismatch", ErrHashMismatch, with(m, es[0], entry{shot.name, zip.Store, tampered}, es[2]))
	add("size mismatch", ErrSizeMismatch, with(m, es[0], entry{shot.name, zip.Store, append(bytes.Clone(shot.data), 0)}, es[2]))
	add("not a JPEG", ErrNotJPEG, withFile("screenshots/003.jpg", zip.Store, []byte("\x89PNG\r\n\x1a\n....")))
	badAct := []byte(strings.Replace(string(es[0].data), `"source":"activitywatch"`, `"source":"keylogger"`, 1))
	mAct := m
	mAct.Files = append([]FileEntry{listed(ActivityName, badAct, time.Time{})}, m.Files[1:]...)
	add("invalid activity", ErrInvalidActivity, with(mAct, entry{ActivityName, zip.Deflate, badAct}, es[1], es[2]))
	notJSON := []byte("{not json")
	mAct.Files = append([]FileEntry{listed(ActivityName, notJSON, time.Time{})}, m.Files[1:]...)
	add("activity not JSON", ErrInvalidActivity, with(mAct, entry{ActivityName, zip.Deflate, notJSON}, es[1], es[2]))

	// Manifest.
	m5 := m
	m5.V = 2
	add("manifest version 2", ErrVersion, with(m5, es...))
	add("manifest without v", ErrVersion, zipOf(tb, append([]entry{{ManifestName, zip.Deflate, []byte(`{"worker":"x"}`)}}, es...)...))
	add("manifest v as string", ErrVersion, zipOf(tb, append([]entry{{ManifestName, zip.Deflate, []byte(`{"v":"1"}`)}}, es...)...))
	m6 := m
	m6.Worker = strings.ToUpper(m.Worker)
	add("invalid manifest", ErrInvalidManifest, with(m6, es...))
	add("manifest not JSON", ErrInvalidManifest, zipOf(tb, append([]entry{{ManifestName, zip.Deflate, []byte(`{"v":1,`)}}, es...)...))

	// Archive structure.
	for _, cut := range []struct {
		name string
		n    int
	}{{"1 byte off", len(good.ZIP) - 1}, {"end record off", len(good.ZIP) - 30}, {"half", len(good.ZIP) / 2}, {"40 bytes", 40}} {
		add("truncated, "+cut.name, ErrTruncated, good.ZIP[:cut.n])
	}
	add("empty", ErrNotZip, nil)
	add("not a zip", ErrNotZip, []byte(strings.Repeat("this is not a zip file. ", 50)))
	add("bzip2 method", ErrCorrupt, rawZip(tb, append([]entry{manifestEntry(tb, m)}, es[1:]...), []entry{{ActivityName, 12, es[0].data}}, uint64(len(es[0].data))))
	add("corrupt deflate", ErrCorrupt, rawZip(tb, append([]entry{manifestEntry(tb, m)}, es[1:]...), []entry{{ActivityName, zip.Deflate, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}}, uint64(len(es[0].data))))
	return out
}

func TestOpenRefusesHostileArchives(t *testing.T) {
	for _, h := range hostileArchives(t) {
		t.Run(h.name, func(t *testing.T) {
			lim := h.lim
			if lim == (Limits{}) {
				lim = DefaultLimits()
			}
			b, err := OpenBytes(h.zip, lim)
			if b != nil {
				t.Fatal("Open returned a bundle along with the refusal")
			}
			if !errors.Is(err, h.want) {
				t.Fatalf("err = %v, want %v", err, h.want)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("err = %v does not match ErrRefused", err)
			}
			for _, other := range allRefusals {
				if other != h.want && errors.Is(err, other) {
					t.Errorf("err = %v also matches %v", err, other)
				}
			}
		})
	}
}

// The checks must not refuse what they should pass: the same flaws' neighbours open.
func TestOpenAcceptsHonestVariants(t *testing.T) {
	good := validBundle(t)
	m, es := parts(t, good.ZIP)

	// Headers that lie big do not matter: sizes are counted, not read from headers.
	liar := rawZip(t, []entry{manifestEntry(t, m), es[0], es[1]}, []entry{{es[2].name, zip.Store, es[2].data}}, 1<<40)
	if _, err := OpenBytes(liar, DefaultLimits()); err != nil {
		t.Errorf("header claiming 1 TiB uncompressed: %v", err)
	}
	// Entry order is not part of the check, and stored JSON is fine.
	es[0].method = zip.Store
	reordered := zipOf(t, es[2], es[0], manifestEntry(t, m), es[1])
	if _, err := OpenBytes(reordered, DefaultLimits()); err != nil {
		t.Errorf("reordered archive: %v", err)
	}
	// Exactly 64 entries is allowed.
	m2 := m
	many := append([]entry{}, es...)
	for i := 3; len(many) < 63; i++ {
		many = append(many, entry{ScreenshotName(i), zip.Store, es[1].data})
		m2.Files = append(m2.Files, listed(ScreenshotName(i), es[1].data, segStart))
	}
	b, err := OpenBytes(zipOf(t, append([]entry{manifestEntry(t, m2)}, many...)...), DefaultLimits())
	if err != nil {
		t.Fatalf("64 entries: %v", err)
	}
	if len(b.Manifest.Files) != 63 {
		t.Errorf("got %d files", len(b.Manifest.Files))
	}
	// Limits at exactly the bundle's size pass; one byte less refuses.
	total := int64(0)
	for _, e := range append(es, manifestEntry(t, m)) {
		total += int64(len(e.data))
	}
	if _, err := OpenBytes(good.ZIP, Limits{MaxTotalSize: total}); err != nil {
		t.Errorf("total limit == size: %v", err)
	}
	if _, err := OpenBytes(good.ZIP, Limits{MaxTotalSize: total - 1}); !errors.Is(err, ErrTotalTooLarge) {
		t.Errorf("total limit == size-1: %v", err)
	}
}

func TestDefaultLimits(t *testing.T) {
	d := DefaultLimits()
	if d.MaxEntries != 64 || d.MaxEntrySize != 32<<20 || d.MaxTotalSize != 64<<20 || d.MaxRatio != 100 || d.MaxJSONSize != 4<<20 {
		t.Fatalf("DefaultLimits() = %+v, PROTOCOL.md section 2 says 64 entries, 32 MiB, 64 MiB, 100:1, JSON 4 MiB", d)
	}
	if got := (Limits{MaxRatio: 7}).withDefaults(); got.MaxRatio != 7 || got.MaxEntries != 64 {
		t.Fatalf("withDefaults = %+v", got)
	}
}

// failingReaderAt fails after the first n bytes, like a bad disk.
type failingReaderAt struct {
	data []byte
	n    int64
}

var errDisk = errors.New("disk on fire")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errDisk
	}
	return copy(p, f.data[off:]), nil
}

func TestOpenIOErrorIsNotARefusal(t *testing.T) {
	good := validBundle(t)
	for _, n := range []int64{0, int64(len(good.ZIP) / 2)} {
		_, err := Open(failingReaderAt{good.ZIP, n}, int64(len(good.ZIP)), DefaultLimits())
		if !errors.Is(err, errDisk) || errors.Is(err, ErrRefused) {
			t.Errorf("fail after %d bytes: err = %v, want the disk error and no refusal", n, err)
		}
	}
}
