// Package segment turns one finished segment — its screenshots, the activity recorded
// during it, and what the worker deleted or the tracker skipped — into a sealed bundle
// (PROTOCOL.md sections 2 and 3): a ZIP built by shared/bundle, encrypted by shared/seal.
//
// The segments of a session form a hash chain: each manifest's prev is the ox (sha256 of
// the plaintext ZIP) of the previous segment, so the DVM can show gaps and tampering.
package segment

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"pow.do/app/activitywatch"
	"pow.do/shared/bundle"
	"pow.do/shared/seal"
)

// Shot is one screenshot still in the segment.
type Shot struct {
	Name    string // screenshots/NNN.jpg, numbered when taken
	TakenAt time.Time
	JPEG    []byte
}

// Input is everything one segment's bundle is made of.
type Input struct {
	Worker     string // worker pubkey, 64 hex
	Session    string // 32 hex
	Index      int
	Start, End time.Time // truncated to whole UTC seconds here
	Project    int64
	Activity   int64
	Memo       string
	AppVersion string
	Policy     bundle.Policy
	Prev       string // ox of the previous segment; "" for index 0

	Recorded activitywatch.Activity // clipped to [Start, End] here
	Shots    []Shot
	Deleted  []bundle.Deleted
	Skipped  []bundle.Skipped
}

// Sealed is a segment bundle ready for the outbox.
type Sealed struct {
	Manifest   bundle.Manifest
	OX         string // sha256 of the plaintext ZIP: the kind-15 ox and the next segment's prev
	PlainSize  int
	Ciphertext []byte
	X          string // sha256 of Ciphertext
	Key        [seal.KeySize]byte
	Nonce      [seal.NonceSize]byte
}

// Build writes the plaintext bundle. Times are normalised to whole UTC seconds and the
// activity is clipped to the segment, so a caller cannot produce a bundle the DVM refuses
// for a rounding slip; everything else that breaks PROTOCOL.md is an error.
func Build(in Input) (bundle.Built, error) {
	start, end := second(in.Start), second(in.End)
	if !start.Before(end) {
		return bundle.Built{}, fmt.Errorf("build segment %d: start %s is not before end %s", in.Index, start, end)
	}
	m := bundle.Manifest{
		Worker: in.Worker, Session: in.Session, Index: in.Index,
		Start: start, End: end,
		Project: in.Project, Activity: in.Activity,
		Memo: in.Memo, AppVersion: in.AppVersion, Policy: in.Policy, Prev: in.Prev,
		Deleted: make([]bundle.Deleted, 0, len(in.Deleted)),
		Skipped: make([]bundle.Skipped, 0, len(in.Skipped)),
	}
	for _, d := range in.Deleted {
		d.TakenAt, d.DeletedAt = second(d.TakenAt), second(d.DeletedAt)
		m.Deleted = append(m.Deleted, d)
	}
	slices.SortFunc(m.Deleted, func(a, b bundle.Deleted) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range in.Skipped {
		s.At = second(s.At)
		s.Reason = Reason(s.Reason)
		m.Skipped = append(m.Skipped, s)
	}
	slices.SortStableFunc(m.Skipped, func(a, b bundle.Skipped) int { return a.At.Compare(b.At) })
	shots := make([]bundle.Screenshot, 0, len(in.Shots))
	for _, s := range in.Shots {
		shots = append(shots, bundle.Screenshot{Name: s.Name, TakenAt: second(s.TakenAt), JPEG: s.JPEG})
	}
	act := ToBundle(Clip(in.Recorded, start, end))
	built, err := bundle.Build(m, act, shots)
	if err != nil {
		return bundle.Built{}, fmt.Errorf("build segment %s/%d: %w", in.Session, in.Index, err)
	}
	return built, nil
}

// Seal builds the bundle and encrypts it under a fresh key and nonce.
func Seal(in Input) (Sealed, error) {
	built, err := Build(in)
	if err != nil {
		return Sealed{}, err
	}
	s, err := seal.Seal(built.ZIP)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal segment %s/%d: %w", in.Session, in.Index, err)
	}
	return Sealed{
		Manifest: built.Manifest, OX: built.OX, PlainSize: len(built.ZIP),
		Ciphertext: s.Ciphertext, X: s.X, Key: s.Key, Nonce: s.Nonce,
	}, nil
}

// Clip keeps the part of a recorded activity inside [start, end]: events trimmed to the
// segment, minutes from floor(start) up to end, and active time recomputed the way
// ActivityWatch computes it. It is used when a segment ends earlier than planned
// (pause, stop, discarded idle time, a crash).
func Clip(a activitywatch.Activity, start, end time.Time) activitywatch.Activity {
	start, end = start.UTC(), end.UTC()
	out := activitywatch.Activity{V: 1, Source: a.Source}
	if out.Source == "" {
		out.Source = activitywatch.SourceBuiltin
	}
	out.Window = activitywatch.Clip(a.Window, start, end)
	out.AFK = activitywatch.Clip(a.AFK, start, end)
	out.Web = activitywatch.Clip(a.Web, start, end)
	out.Input = activitywatch.Clip(a.Input, start, end)
	first := start.Truncate(time.Minute)
	out.Minutes = make([]activitywatch.Minute, 0, len(a.Minutes))
	for _, m := range a.Minutes {
		m.T = m.T.UTC()
		if !m.T.Before(first) && m.T.Before(end) && m.T.Truncate(time.Minute).Equal(m.T) {
			out.Minutes = append(out.Minutes, m)
		}
	}
	slices.SortFunc(out.Minutes, func(x, y activitywatch.Minute) int { return x.T.Compare(y.T) })
	out.Minutes = slices.CompactFunc(out.Minutes, func(x, y activitywatch.Minute) bool { return x.T.Equal(y.T) })
	active := min(activitywatch.ActiveTime(out.Window, out.AFK, activitywatch.DefaultPulsetime), end.Sub(start))
	// Rounded down so it never exceeds a segment of whole seconds.
	out.ActiveSeconds = max(int64(active/time.Second), 0)
	return out
}

// Seal returns the encryption half as shared/seal describes it, for the outbox.
func (s Sealed) Seal() seal.Sealed {
	return seal.Sealed{Ciphertext: s.Ciphertext, Key: s.Key, Nonce: s.Nonce, X: s.X, OX: s.OX}
}

// ToBundle converts the tracker's activity record to activity.json's shape.
func ToBundle(a activitywatch.Activity) bundle.Activity {
	conv := func(in []activitywatch.Event) []bundle.Event {
		out := make([]bundle.Event, 0, len(in))
		for _, e := range in {
			out = append(out, bundle.Event{Timestamp: e.Timestamp.UTC(), Duration: e.Duration, Data: e.Data})
		}
		return out
	}
	minutes := make([]bundle.Minute, 0, len(a.Minutes))
	for _, m := range a.Minutes {
		minutes = append(minutes, bundle.Minute{T: m.T.UTC(), Keys: m.Keys, Clicks: m.Clicks, Moves: m.Moves, Active: m.Active})
	}
	source := a.Source
	if source == "" {
		source = bundle.SourceBuiltin
	}
	return bundle.Activity{
		V: bundle.Version, Source: source,
		Window: conv(a.Window), AFK: conv(a.AFK), Web: conv(a.Web), Input: conv(a.Input),
		Minutes: minutes, ActiveSeconds: float64(a.ActiveSeconds),
	}
}

// Reason makes a skip reason fit the manifest: valid UTF-8, 1 to 500 bytes.
func Reason(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "?")
	if s == "" {
		return "unknown"
	}
	if len(s) <= bundle.MaxReasonBytes {
		return s
	}
	cut := bundle.MaxReasonBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func second(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
