package bundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Screenshot is one JPEG to put in a bundle.
type Screenshot struct {
	// Name is screenshots/NNN.jpg. Empty means ScreenshotName(position in the slice + 1);
	// give names explicitly when some screenshots of the segment were deleted.
	Name    string
	TakenAt time.Time // recorded in UTC, truncated to the second
	JPEG    []byte
}

// Built is a bundle ready to encrypt.
type Built struct {
	ZIP      []byte
	OX       string // hex sha256 of ZIP, the kind-15 "ox" tag and the next segment's prev
	Manifest Manifest
}

// Build writes the bundle into memory and hashes it.
func Build(m Manifest, activity Activity, shots []Screenshot) (Built, error) {
	var buf bytes.Buffer
	done, err := Write(&buf, m, activity, shots)
	if err != nil {
		return Built{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return Built{ZIP: buf.Bytes(), OX: hex.EncodeToString(sum[:]), Manifest: done}, nil
}

// Write fills in m.V and m.Files from activity and shots, validates everything, and only
// then writes the ZIP to w: manifest.json and activity.json deflated, screenshots
// stored, in that order, screenshots sorted by name. The same input gives the same bytes.
// It returns the manifest as written.
func Write(w io.Writer, m Manifest, activity Activity, shots []Screenshot) (Manifest, error) {
	m.V = Version
	activity = activity.normalized()
	actJSON, err := json.Marshal(activity)
	if err != nil {
		return Manifest{}, fmt.Errorf("encode %s: %w", ActivityName, err)
	}

	shots = slices.Clone(shots)
	for i := range shots {
		if shots[i].Name == "" {
			shots[i].Name = ScreenshotName(i + 1)
		}
		if !isJPEG(shots[i].JPEG) {
			return Manifest{}, fmt.Errorf("write bundle: %s: %w", shots[i].Name, ErrNotJPEG)
		}
	}
	slices.SortStableFunc(shots, func(a, b Screenshot) int { return strings.Compare(a.Name, b.Name) })

	m.Files = make([]FileEntry, 0, 1+len(shots))
	m.Files = append(m.Files, FileEntry{Name: ActivityName, SHA256: sha256Hex(actJSON), Size: int64(len(actJSON)), Type: TypeJSON})
	for _, s := range shots {
		m.Files = append(m.Files, FileEntry{
			Name:    s.Name,
			SHA256:  sha256Hex(s.JPEG),
			Size:    int64(len(s.JPEG)),
			Type:    TypeJPEG,
			TakenAt: s.TakenAt.UTC().Truncate(time.Second),
		})
	}
	if m.Deleted == nil {
		m.Deleted = []Deleted{}
	}
	if m.Skipped == nil {
		m.Skipped = []Skipped{}
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("write bundle: %w", err)
	}
	if err := activity.Validate(m.Start, m.End); err != nil {
		return Manifest{}, fmt.Errorf("write bundle: %w", err)
	}
	manJSON, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, fmt.Errorf("encode %s: %w", ManifestName, err)
	}

	zw := zip.NewWriter(w)
	add := func(name string, method uint16, modified time.Time, data []byte) error {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: modified})
		if err != nil {
			return fmt.Errorf("write bundle entry %s: %w", name, err)
		}
		if _, err := fw.Write(data); err != nil {
			return fmt.Errorf("write bundle entry %s: %w", name, err)
		}
		return nil
	}
	if err := add(ManifestName, zip.Deflate, m.End, manJSON); err != nil {
		return Manifest{}, err
	}
	if err := add(ActivityName, zip.Deflate, m.End, actJSON); err != nil {
		return Manifest{}, err
	}
	for i, s := range shots {
		if err := add(s.Name, zip.Store, m.Files[1+i].TakenAt, s.JPEG); err != nil {
			return Manifest{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("write bundle: %w", err)
	}
	return m, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isJPEG checks the start-of-image marker that every JPEG begins with.
func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }
