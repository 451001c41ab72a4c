// Package sanitize makes text that came from the network (a relay's refusal, a server's
// error message) safe to put into logs, errors and the UI.
package sanitize

import "strings"

// Text replaces invalid UTF-8 with "?" and control characters with spaces, and clips the
// result to at most max bytes, cut on a character boundary and marked with "…".
func Text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
