package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Limits a stored segment must keep (PROTOCOL.md section 2 and sane bounds).
const (
	MaxMemoBytes       = 1000
	MaxSegmentDuration = 24 * time.Hour
	MaxNameBytes       = 200
	MaxReasonBytes     = 1000
)

// IsHex reports whether s is exactly n lowercase hexadecimal characters.
func IsHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks a record before anything is written, so hostile input is refused whole
// with an error wrapping ErrInvalid. Uniqueness (e.g. of minute times) is left to the
// database's constraints, which roll the transaction back.
func (r *SegmentRecord) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case !IsHex(r.Worker, 64):
		return bad("worker %q is not a 64-hex pubkey", r.Worker)
	case !IsHex(r.Session, 32):
		return bad("session %q is not 32 hex", r.Session)
	case r.Index < 0 || r.Index > math.MaxInt32:
		return bad("index %d out of range", r.Index)
	case r.Start.IsZero() || r.End.IsZero() || !r.Start.Before(r.End):
		return bad("start %s not before end %s", r.Start, r.End)
	case r.End.Sub(r.Start) > MaxSegmentDuration:
		return bad("segment lasts %s, more than %s", r.End.Sub(r.Start), MaxSegmentDuration)
	case !IsHex(r.RumorID, 64):
		return bad("rumor id %q is not 64 hex", r.RumorID)
	case !IsHex(r.X, 64):
		return bad("x %q is not 64 hex", r.X)
	case !IsHex(r.OX, 64):
		return bad("ox %q is not 64 hex", r.OX)
	case r.Prev != "" && !IsHex(r.Prev, 64):
		return bad("prev %q is neither empty nor 64 hex", r.Prev)
	case len(r.Memo) > MaxMemoBytes:
		return bad("memo has %d bytes, more than %d", len(r.Memo), MaxMemoBytes)
	case len(r.AppVersion) > MaxNameBytes || len(r.Source) > MaxNameBytes:
		return bad("app version or source too long")
	case r.ActiveSeconds < 0 || time.Duration(r.ActiveSeconds)*time.Second > r.End.Sub(r.Start):
		return bad("active seconds %d outside 0..%s", r.ActiveSeconds, r.End.Sub(r.Start))
	}
	for i, e := range r.Events {
		switch {
		case !e.Bucket.Valid():
			return bad("event %d: unknown bucket %q", i, e.Bucket)
		case e.Timestamp.IsZero():
			return bad("event %d: no timestamp", i)
		case math.IsNaN(e.Duration) || math.IsInf(e.Duration, 0) || e.Duration < 0:
			return bad("event %d: duration %v", i, e.Duration)
		case len(e.Data) > 0 && !json.Valid(e.Data):
			return bad("event %d: data is not JSON", i)
		}
	}
	for i, m := range r.Minutes {
		if m.T.IsZero() || m.Keys < 0 || m.Clicks < 0 || m.Moves < 0 {
			return bad("minute %d: missing time or negative count", i)
		}
	}
	for i, s := range r.Screenshots {
		switch {
		case s.Name == "" || len(s.Name) > MaxNameBytes:
			return bad("screenshot %d: name %q", i, s.Name)
		case len(s.Data) == 0:
			return bad("screenshot %s: no data", s.Name)
		case s.SHA256 != "" && !IsHex(s.SHA256, 64):
			return bad("screenshot %s: sha256 %q is not 64 hex", s.Name, s.SHA256)
		case s.SHA256 != "" && s.SHA256 != HashHex(s.Data):
			return bad("screenshot %s: data does not match sha256 %s", s.Name, s.SHA256)
		}
	}
	for i, d := range r.Deleted {
		if d.Name == "" || len(d.Name) > MaxNameBytes {
			return bad("deleted %d: name %q", i, d.Name)
		}
	}
	for i, s := range r.Skipped {
		if s.At.IsZero() || len(s.Reason) > MaxReasonBytes {
			return bad("skipped %d: no time or reason too long", i)
		}
	}
	if r.Bundle != nil && HashHex(r.Bundle) != r.OX {
		return bad("bundle does not hash to ox %s", r.OX)
	}
	return nil
}

// HashHex is the lowercase hex sha256 of b.
func HashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ChainFor decides a segment's chain status from its own index and prev and from the
// previous segment's ox in the same session (found=false when that one has not arrived).
func ChainFor(index int, prev string, previousOX string, found bool) ChainStatus {
	if index == 0 {
		if prev == "" {
			return ChainVerified
		}
		return ChainBroken
	}
	if !found {
		return ChainGap
	}
	if prev == previousOX {
		return ChainVerified
	}
	return ChainBroken
}
