// Package bundle writes and safely reads the pow.do segment bundle: a ZIP holding
// manifest.json, activity.json and JPEG screenshots (PROTOCOL.md section 2).
// Bundles arrive from the network, so Open treats every byte as hostile.
package bundle

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the manifest format version ("v") this package writes and reads.
const Version = 1

// Entry names and content types fixed by the protocol.
const (
	ManifestName = "manifest.json"
	ActivityName = "activity.json"
	TypeJSON     = "application/json"
	TypeJPEG     = "image/jpeg"
)

// Field bounds.
const (
	MaxMemoBytes       = 1000
	MaxAppVersionBytes = 64
	MaxReasonBytes     = 500
)

// Manifest is manifest.json.
type Manifest struct {
	V          int         `json:"v"`
	Worker     string      `json:"worker"`  // pubkey, 64 hex
	Session    string      `json:"session"` // 32 hex
	Index      int         `json:"index"`
	Start      time.Time   `json:"start"`
	End        time.Time   `json:"end"`
	Project    int64       `json:"project"`
	Activity   int64       `json:"activity"`
	Memo       string      `json:"memo"`
	AppVersion string      `json:"app_version"`
	Policy     Policy      `json:"policy"`
	Prev       string      `json:"prev"` // sha256 of the previous plaintext ZIP; "" for index 0
	Files      []FileEntry `json:"files"`
	Deleted    []Deleted   `json:"deleted"`
	Skipped    []Skipped   `json:"skipped"`
}

// Policy is the capture policy the tracker applied to this segment.
type Policy struct {
	SegmentSeconds int  `json:"segment_seconds"`
	Screenshots    int  `json:"screenshots"`
	Blur           bool `json:"blur"`
	JPEGQuality    int  `json:"jpeg_quality"`
	MaxWidth       int  `json:"max_width"`
}

// FileEntry describes one archive entry other than manifest.json.
type FileEntry struct {
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Type    string    `json:"type"`
	TakenAt time.Time `json:"taken_at,omitzero"` // screenshots only
}

// Deleted records a screenshot the worker removed during the review window.
type Deleted struct {
	Name      string    `json:"name"`
	TakenAt   time.Time `json:"taken_at"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Skipped records a planned screenshot that was not taken.
type Skipped struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

var (
	hex64          = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex32          = regexp.MustCompile(`^[0-9a-f]{32}$`)
	screenshotName = regexp.MustCompile(`^screenshots/[0-9]{3}\.jpg$`)
)

// IsScreenshotName reports whether name is a valid screenshot entry name
// (screenshots/001.jpg … screenshots/999.jpg).
func IsScreenshotName(name string) bool {
	return screenshotName.MatchString(name) && name != "screenshots/000.jpg"
}

// ScreenshotName returns the entry name of the n-th screenshot (n from 1).
func ScreenshotName(n int) string { return fmt.Sprintf("screenshots/%03d.jpg", n) }

// isUTC reports whether t is a non-zero instant written with a zero UTC offset.
func isUTC(t time.Time) bool {
	_, off := t.Zone()
	return !t.IsZero() && off == 0
}

// isUTCSecond is isUTC plus whole seconds (the wire form has no fraction).
func isUTCSecond(t time.Time) bool { return isUTC(t) && t.Nanosecond() == 0 }

func within(t, start, end time.Time) bool { return !t.Before(start) && !t.After(end) }

// Validate checks every field rule of PROTOCOL.md section 2. It does not look at any
// file content; Open does that.
func (m *Manifest) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if m.V != Version {
		bad("v is %d, want %d", m.V, Version)
	}
	if !hex64.MatchString(m.Worker) {
		bad("worker is not 64 lowercase hex chars")
	}
	if !hex32.MatchString(m.Session) {
		bad("session is not 32 lowercase hex chars")
	}
	if m.Index < 0 {
		bad("index %d is negative", m.Index)
	}
	if !isUTCSecond(m.Start) {
		bad("start %s is not a UTC time with second precision", m.Start)
	}
	if !isUTCSecond(m.End) {
		bad("end %s is not a UTC time with second precision", m.End)
	}
	if !m.Start.Before(m.End) {
		bad("start %s is not before end %s", m.Start, m.End)
	}
	if m.Project <= 0 {
		bad("project %d is not a positive id", m.Project)
	}
	if m.Activity <= 0 {
		bad("activity %d is not a positive id", m.Activity)
	}
	if len(m.Memo) > MaxMemoBytes {
		bad("memo is %d bytes, at most %d allowed", len(m.Memo), MaxMemoBytes)
	}
	if !utf8.ValidString(m.Memo) {
		bad("memo is not valid UTF-8")
	}
	if m.AppVersion == "" || len(m.AppVersion) > MaxAppVersionBytes || !printable(m.AppVersion) {
		bad("app_version %q is empty, longer than %d bytes or not printable ASCII", m.AppVersion, MaxAppVersionBytes)
	}
	if err := m.Policy.validate(); err != nil {
		bad("policy: %v", err)
	}
	switch {
	case m.Index == 0 && m.Prev != "":
		bad("prev must be empty for index 0")
	case m.Index > 0 && !hex64.MatchString(m.Prev):
		bad("prev is not 64 lowercase hex chars")
	}

	seen := make(map[string]bool, len(m.Files))
	activity := 0
	for i, f := range m.Files {
		if seen[f.Name] {
			bad("files[%d]: %q listed twice", i, f.Name)
		}
		seen[f.Name] = true
		if !hex64.MatchString(f.SHA256) {
			bad("files[%d]: sha256 is not 64 lowercase hex chars", i)
		}
		if f.Size < 0 {
			bad("files[%d]: negative size", i)
		}
		switch {
		case f.Name == ActivityName:
			activity++
			if f.Type != TypeJSON {
				bad("files[%d]: type of %s is %q, want %q", i, f.Name, f.Type, TypeJSON)
			}
			if !f.TakenAt.IsZero() {
				bad("files[%d]: %s has taken_at", i, f.Name)
			}
		case IsScreenshotName(f.Name):
			if f.Type != TypeJPEG {
				bad("files[%d]: type of %s is %q, want %q", i, f.Name, f.Type, TypeJPEG)
			}
			if !isUTCSecond(f.TakenAt) || !within(f.TakenAt, m.Start, m.End) {
				bad("files[%d]: taken_at %s of %s is not a UTC second inside the segment", i, f.TakenAt, f.Name)
			}
		default:
			bad("files[%d]: name %q is neither %s nor screenshots/NNN.jpg", i, f.Name, ActivityName)
		}
	}
	if activity == 0 {
		bad("files does not list %s", ActivityName)
	}

	for i, d := range m.Deleted {
		if !IsScreenshotName(d.Name) {
			bad("deleted[%d]: name %q is not screenshots/NNN.jpg", i, d.Name)
		}
		if seen[d.Name] {
			bad("deleted[%d]: %q is also in files", i, d.Name)
		}
		seen[d.Name] = true
		if !isUTCSecond(d.TakenAt) || !within(d.TakenAt, m.Start, m.End) {
			bad("deleted[%d]: taken_at %s is not a UTC second inside the segment", i, d.TakenAt)
		}
		if !isUTCSecond(d.DeletedAt) || d.DeletedAt.Before(d.TakenAt) {
			bad("deleted[%d]: deleted_at %s is not a UTC second at or after taken_at", i, d.DeletedAt)
		}
	}
	for i, s := range m.Skipped {
		if !isUTCSecond(s.At) || !within(s.At, m.Start, m.End) {
			bad("skipped[%d]: at %s is not a UTC second inside the segment", i, s.At)
		}
		if s.Reason == "" || len(s.Reason) > MaxReasonBytes || !utf8.ValidString(s.Reason) {
			bad("skipped[%d]: reason is empty, longer than %d bytes or not UTF-8", i, MaxReasonBytes)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidManifest, strings.Join(errs, "; "))
	}
	return nil
}

// validate applies the catalogue's policy bounds (PROTOCOL.md section 6).
func (p Policy) validate() error {
	switch {
	case p.SegmentSeconds < 10 || p.SegmentSeconds > 3600:
		return fmt.Errorf("segment_seconds %d outside 10..3600", p.SegmentSeconds)
	case p.Screenshots < 0 || p.Screenshots > 10:
		return fmt.Errorf("screenshots %d outside 0..10", p.Screenshots)
	case p.JPEGQuality < 1 || p.JPEGQuality > 100:
		return fmt.Errorf("jpeg_quality %d outside 1..100", p.JPEGQuality)
	case p.MaxWidth < 0:
		return fmt.Errorf("max_width %d is negative", p.MaxWidth)
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
