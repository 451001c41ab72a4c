package sanitize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain reason", "plain reason"},
		{"", ""},
		{"a\nb\tc\x1b[31m\x7f\u0085d", "a b c [31m  d"},
		{"bad \xff\xfe utf8", "bad ? utf8"},
		{"héllo wörld", "héllo wörld"},
	}
	for _, c := range cases {
		if got := Text(c.in, 100); got != c.want {
			t.Fatalf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Clipping never splits a character and says that it clipped.
	long := strings.Repeat("é", 200) // 400 bytes
	for _, max := range []int{1, 2, 3, 199, 200, 201} {
		got := Text(long, max)
		body, ok := strings.CutSuffix(got, "…")
		if !ok || !utf8.ValidString(got) || len(body) > max || len(body) < max-1 {
			t.Fatalf("max %d: %d bytes %q", max, len(got), got)
		}
	}
	if got := Text("exactly", 7); got != "exactly" {
		t.Fatalf("text of max bytes clipped: %q", got)
	}
}
