package blossom

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// KindAuth is the BUD-11 authorization event kind.
const KindAuth = 24242

// NewToken signs a BUD-11 token for verb ("upload", "get", "delete", "list") covering the
// given blob hashes, valid for ttl, bound to server (host name; empty to omit).
func NewToken(sk, verb string, hashes []string, ttl time.Duration, server string) (nostr.Event, error) {
	ev := nostr.Event{
		Kind:      KindAuth,
		CreatedAt: nostr.Now(),
		Content:   verbLabel(verb, hashes),
		Tags: nostr.Tags{
			{"t", verb},
			{"expiration", strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)},
		},
	}
	for _, h := range hashes {
		ev.Tags = append(ev.Tags, nostr.Tag{"x", h})
	}
	if server != "" {
		ev.Tags = append(ev.Tags, nostr.Tag{"server", server})
	}
	if err := ev.Sign(sk); err != nil {
		return nostr.Event{}, fmt.Errorf("sign %s token: %w", verb, err)
	}
	return ev, nil
}

func verbLabel(verb string, hashes []string) string {
	label := map[string]string{"upload": "Upload", "get": "Get", "delete": "Delete", "list": "List"}[verb]
	if label == "" {
		label = verb
	}
	if len(hashes) > 0 {
		return label + " " + hashes[0]
	}
	return label + " blobs"
}

// AuthHeader renders a token as the value of an Authorization header: "Nostr " followed by
// the event JSON in unpadded base64url, as BUD-11 specifies.
func AuthHeader(ev nostr.Event) string {
	b, _ := json.Marshal(ev)
	return "Nostr " + base64.RawURLEncoding.EncodeToString(b)
}
