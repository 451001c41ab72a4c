package bundle

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits bound what Open will read. Zero fields take the DefaultLimits value.
type Limits struct {
	MaxEntries   int   // archive entries, manifest.json included
	MaxEntrySize int64 // uncompressed bytes of one entry
	MaxTotalSize int64 // uncompressed bytes of all entries together
	MaxJSONSize  int64 // uncompressed bytes of manifest.json and of activity.json
	MaxRatio     int64 // uncompressed:compressed bytes of a deflated entry
}

// DefaultLimits are the limits of PROTOCOL.md section 2.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:   64,
		MaxEntrySize: 32 << 20,
		MaxTotalSize: 64 << 20,
		MaxJSONSize:  4 << 20,
		MaxRatio:     100,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxEntrySize <= 0 {
		l.MaxEntrySize = d.MaxEntrySize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxJSONSize <= 0 {
		l.MaxJSONSize = d.MaxJSONSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// ratioFloor is the compressed size below which the ratio is measured against this
// floor instead: tiny entries are judged on up to MaxRatio*ratioFloor bytes of output,
// so a short run of repeated bytes early in a small file is not mistaken for a bomb.
const ratioFloor = 1024

// Bundle is a bundle that passed every check of Open.
type Bundle struct {
	Manifest     Manifest // times in UTC
	Activity     Activity // times in UTC
	manifestJSON []byte
	files        map[string][]byte
}

// ManifestJSON returns manifest.json exactly as it was in the archive.
func (b *Bundle) ManifestJSON() []byte { return b.manifestJSON }

// File returns the verified content of a file listed in the manifest
// (activity.json or a screenshot).
func (b *Bundle) File(name string) ([]byte, bool) {
	data, ok := b.files[name]
	return data, ok
}

// Screenshot returns the verified JPEG of a screenshot listed in the manifest.
func (b *Bundle) Screenshot(name string) ([]byte, bool) {
	if !IsScreenshotName(name) {
		return nil, false
	}
	return b.File(name)
}

// OpenBytes is Open on an in-memory archive.
func OpenBytes(zipData []byte, lim Limits) (*Bundle, error) {
	return Open(bytes.NewReader(zipData), int64(len(zipData)), lim)
}

// Open reads and verifies a plaintext bundle. Sizes are counted while decompressing,
// never taken from ZIP headers, and memory use stays proportional to the bytes actually
// produced. A refusal matches ErrRefused and its own sentinel (errors.Is); any other error
// comes from r.
func Open(r io.ReaderAt, size int64, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	if size < 0 {
		return nil, fmt.Errorf("open bundle: negative size %d: %w", size, ErrNotZip)
	}
	rec := &recordingReaderAt{r: r, size: size}
	zr, err := zip.NewReader(rec, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are judged below
		if rec.err != nil {
			return nil, fmt.Errorf("open bundle: read: %w", rec.err)
		}
		return nil, fmt.Errorf("open bundle: %w (%v)", formatError(rec, size), err)
	}

	if len(zr.File) > lim.MaxEntries {
		return nil, fmt.Errorf("open bundle: %d entries, at most %d allowed: %w", len(zr.File), lim.MaxEntries, ErrTooManyEntries)
	}
	entries := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("open bundle: entry %q: %w", f.Name, err)
		}
		if entries[f.Name] != nil {
			return nil, fmt.Errorf("open bundle: entry %q: %w", f.Name, ErrDuplicateName)
		}
		entries[f.Name] = f
	}

	mf := entries[ManifestName]
	if mf == nil {
		return nil, fmt.Errorf("open bundle: %w", ErrNoManifest)
	}
	rd := entryReader{lim: lim, rec: rec, size: size}
	manJSON, err := rd.read(mf, entryLimit(ManifestName, lim), entryLimit(ManifestName, lim))
	if err != nil {
		return nil, fmt.Errorf("open bundle: %s: %w", ManifestName, err)
	}
	m, err := parseManifest(manJSON)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %s: %w", ManifestName, err)
	}

	listed := make(map[string]bool, len(m.Files))
	for _, fe := range m.Files {
		listed[fe.Name] = true
	}
	for _, f := range zr.File {
		if f.Name != ManifestName && !listed[f.Name] {
			return nil, fmt.Errorf("open bundle: entry %q: %w", f.Name, ErrUnlisted)
		}
	}
	// Refuse on the manifest's own figures before decompressing anything more.
	declared := rd.total
	for _, fe := range m.Files {
		if entries[fe.Name] == nil {
			return nil, fmt.Errorf("open bundle: %s: %w", fe.Name, ErrMissingFile)
		}
		if limit := entryLimit(fe.Name, lim); fe.Size > limit {
			return nil, fmt.Errorf("open bundle: %s declares %d bytes, at most %d allowed: %w", fe.Name, fe.Size, limit, ErrEntryTooLarge)
		}
		declared += fe.Size
	}
	if declared > lim.MaxTotalSize {
		return nil, fmt.Errorf("open bundle: manifest declares %d bytes in all, at most %d allowed: %w", declared, lim.MaxTotalSize, ErrTotalTooLarge)
	}

	b := &Bundle{manifestJSON: manJSON, files: make(map[string][]byte, len(m.Files))}
	for _, fe := range m.Files {
		data, err := rd.read(entries[fe.Name], entryLimit(fe.Name, lim), fe.Size)
		if err != nil {
			return nil, fmt.Errorf("open bundle: %s: %w", fe.Name, err)
		}
		if int64(len(data)) != fe.Size {
			return nil, fmt.Errorf("open bundle: %s has %d bytes, manifest says %d: %w", fe.Name, len(data), fe.Size, ErrSizeMismatch)
		}
		if got := sha256Hex(data); got != fe.SHA256 {
			return nil, fmt.Errorf("open bundle: %s has sha256 %s, manifest says %s: %w", fe.Name, got, fe.SHA256, ErrHashMismatch)
		}
		if fe.Type == TypeJPEG && !isJPEG(data) {
			return nil, fmt.Errorf("open bundle: %s: %w", fe.Name, ErrNotJPEG)
		}
		b.files[fe.Name] = data
	}

	if err := json.Unmarshal(b.files[ActivityName], &b.Activity); err != nil {
		return nil, fmt.Errorf("open bundle: %w: %v", ErrInvalidActivity, err)
	}
	if err := b.Activity.Validate(m.Start, m.End); err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	b.Activity = b.Activity.normalized()
	b.Manifest = m
	return b, nil
}

// parseManifest checks the version before anything else, so a future format is
// reported as such rather than as invalid.
func parseManifest(data []byte) (Manifest, error) {
	var head struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if string(head.V) != "1" {
		return Manifest{}, fmt.Errorf("v is %q, want 1: %w", head.V, ErrVersion)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	m.Start, m.End = m.Start.UTC(), m.End.UTC()
	for i := range m.Files {
		if !m.Files[i].TakenAt.IsZero() {
			m.Files[i].TakenAt = m.Files[i].TakenAt.UTC()
		}
	}
	for i := range m.Deleted {
		m.Deleted[i].TakenAt, m.Deleted[i].DeletedAt = m.Deleted[i].TakenAt.UTC(), m.Deleted[i].DeletedAt.UTC()
	}
	for i := range m.Skipped {
		m.Skipped[i].At = m.Skipped[i].At.UTC()
	}
	return m, nil
}

func entryLimit(name string, lim Limits) int64 {
	if name == ActivityName || name == ManifestName {
		return min(lim.MaxJSONSize, lim.MaxEntrySize)
	}
	return lim.MaxEntrySize
}

// checkName refuses names that could escape a directory if anyone ever extracted them.
func checkName(name string) error {
	switch {
	case strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':' && isLetter(name[0])):
		return ErrAbsolutePath
	case strings.Contains(name, `\`):
		return ErrBackslash
	case strings.Contains(name, ".."):
		return ErrParentPath
	}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// formatError tells a cut-off ZIP (it starts like one) from something else.
func formatError(r io.ReaderAt, size int64) error {
	var sig [4]byte
	if size >= 4 {
		if n, _ := r.ReadAt(sig[:], 0); n == 4 && string(sig[:]) == "PK\x03\x04" {
			return ErrTruncated
		}
	}
	return ErrNotZip
}

// recordingReaderAt remembers the first real I/O error, so that a failing disk is not
// reported as a hostile archive.
type recordingReaderAt struct {
	r    io.ReaderAt
	size int64
	err  error
}

func (x *recordingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	// Offsets outside the archive come from its own headers: that is the archive's
	// fault, not the reader's, so answer EOF without asking.
	if off < 0 || off >= x.size {
		return 0, io.EOF
	}
	if rest := x.size - off; int64(len(p)) > rest {
		n, err := x.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	n, err := x.r.ReadAt(p, off)
	if err != nil && err != io.EOF && x.err == nil {
		x.err = err
	}
	return n, err
}

// entryReader decompresses entries while counting every byte in and out.
type entryReader struct {
	lim   Limits
	rec   *recordingReaderAt
	size  int64 // of the whole archive
	total int64 // uncompressed bytes produced so far, all entries
	chunk []byte
}

// read returns the entry's bytes. It keeps at most keep bytes in memory but goes on
// counting (up to the limits) past them, so that a bomb is named as such.
func (e *entryReader) read(f *zip.File, limit, keep int64) ([]byte, error) {
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, fmt.Errorf("compression method %d not supported: %w", f.Method, ErrCorrupt)
	}
	raw, err := f.OpenRaw()
	if err != nil {
		return nil, e.classify(err)
	}
	in := &countingReader{r: bufio.NewReaderSize(raw, 4096)}
	var src io.Reader = in
	if f.Method == zip.Deflate {
		fr := flate.NewReader(in)
		defer fr.Close()
		src = fr
	}
	if e.chunk == nil {
		e.chunk = make([]byte, 32<<10)
	}
	var buf bytes.Buffer
	if f.Method == zip.Store {
		// A stored entry can be no longer than the archive, so this is bounded by the input.
		buf.Grow(int(min(keep, int64(min(f.CompressedSize64, uint64(e.size))))))
	}
	var out int64
	for {
		n, err := src.Read(e.chunk)
		if n > 0 {
			out += int64(n)
			switch {
			case out > limit:
				return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrEntryTooLarge)
			case e.total+out > e.lim.MaxTotalSize:
				return nil, fmt.Errorf("more than %d bytes in all: %w", e.lim.MaxTotalSize, ErrTotalTooLarge)
			case f.Method == zip.Deflate && out > e.lim.MaxRatio*max(in.n, ratioFloor):
				return nil, fmt.Errorf("%d bytes from %d compressed, above %d:1: %w", out, in.n, e.lim.MaxRatio, ErrRatio)
			}
			if room := keep - int64(buf.Len()); room > 0 {
				buf.Write(e.chunk[:min(int64(n), room)])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, e.classify(err)
		}
	}
	// A stored entry is as long as its header says; fewer bytes means the archive was cut.
	if f.Method == zip.Store && uint64(in.n) != f.CompressedSize64 {
		return nil, fmt.Errorf("stored data ends after %d of %d bytes: %w", in.n, f.CompressedSize64, ErrTruncated)
	}
	e.total += out
	if out != int64(buf.Len()) {
		// More bytes than the caller keeps: report the real count.
		return nil, fmt.Errorf("%d bytes, expected %d: %w", out, keep, ErrSizeMismatch)
	}
	return buf.Bytes(), nil
}

func (e *entryReader) classify(err error) error {
	switch {
	case e.rec.err != nil:
		return fmt.Errorf("read: %w", e.rec.err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	default: // flate.CorruptInputError, a bad local header
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
}

// countingReader counts the compressed bytes flate actually consumes. It offers
// ReadByte so flate reads through it directly instead of adding its own read-ahead.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
