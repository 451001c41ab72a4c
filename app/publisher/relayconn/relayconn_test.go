package relayconn

import (
	"errors"
	"fmt"
	"testing"
)

func TestRefusalPrefix(t *testing.T) {
	cases := []struct {
		reason     string
		prefix     string
		notAllowed bool
	}{
		{"restricted: your key is not on this relay's whitelist", "restricted", true},
		{"blocked: your key is banned from this relay", "blocked", true},
		{"auth-required: publishing requires NIP-42 authentication", "auth-required", false},
		{"rate-limited: slow down", "rate-limited", false},
		{"no prefix here", "", false},
		{"two words: not a prefix", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		r := refusal("EVENT", c.reason)
		if r.Prefix != c.prefix || r.NotAllowed() != c.notAllowed {
			t.Fatalf("%q: prefix %q notAllowed %v", c.reason, r.Prefix, r.NotAllowed())
		}
		wrapped := fmt.Errorf("publish: %w", r)
		if IsNotAllowed(wrapped) != c.notAllowed {
			t.Fatalf("%q: IsNotAllowed through wrapping", c.reason)
		}
	}
	if IsNotAllowed(errors.New("restricted: plain error")) {
		t.Fatal("a plain error is not a refusal")
	}
}
