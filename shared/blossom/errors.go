package blossom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Sentinels for the statuses a caller acts on; compare with errors.Is.
var (
	ErrUnauthorized   = errors.New("blossom: unauthorized (401)")
	ErrForbidden      = errors.New("blossom: forbidden (403)")
	ErrNotFound       = errors.New("blossom: not found (404)")
	ErrConflict       = errors.New("blossom: conflict (409)")
	ErrLengthRequired = errors.New("blossom: length required (411)")
	ErrTooLarge       = errors.New("blossom: too large (413)")
	ErrRateLimited    = errors.New("blossom: rate limited (429)")
	// ErrHashMismatch: the bytes received (or sent) do not hash to the expected sha256.
	ErrHashMismatch = errors.New("blossom: sha256 mismatch")
)

var statusSentinel = map[int]error{
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrForbidden,
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusLengthRequired:        ErrLengthRequired,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusTooManyRequests:       ErrRateLimited,
}

// Error is a failed exchange with a Blossom server: either an HTTP status other than
// success (Status, Reason from X-Reason, RetryAfter) or no response at all (Status 0, Err).
type Error struct {
	Op         string        // method and path, e.g. "PUT /upload"
	Status     int           // HTTP status; 0 when no response arrived
	Reason     string        // the server's X-Reason, sanitised; may be empty
	RetryAfter time.Duration // from Retry-After on 429 and 503; 0 when absent
	Err        error         // the transport error when Status is 0
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("blossom %s: %v", e.Op, e.Err)
	}
	msg := fmt.Sprintf("blossom %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and friends work for the matching status.
func (e *Error) Is(target error) bool {
	s, ok := statusSentinel[e.Status]
	return ok && s == target
}

// Temporary reports whether the same request may succeed later: server errors (5xx), 408,
// 429 and transport failures other than the caller's own cancellation.
func (e *Error) Temporary() bool {
	switch {
	case e.Status == 0:
		return e.Err != nil && !errors.Is(e.Err, context.Canceled)
	case e.Status >= 500, e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		return true
	}
	return false
}

// IsTemporary reports whether err carries a *Error that is Temporary.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary()
}

// maxReason bounds what a (possibly hostile) server can put into our errors and logs.
const maxReason = 300

// sanitizeReason keeps a server-supplied reason printable and short.
func sanitizeReason(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// parseRetryAfter reads delay-seconds or an HTTP date; unparsable or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxWait = 24 * time.Hour
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxWait/time.Second) {
			return maxWait
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, maxWait)
	}
	return 0
}
