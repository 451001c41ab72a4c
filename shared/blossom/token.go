package blossom

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// KindAuth is the BUD-11 authorization event kind.
const KindAuth = 24242

// Token limits a server enforces (PROTOCOL.md section 8).
const (
	// MaxTokenLifetime is how far ahead of now a token's expiration may lie.
	MaxTokenLifetime = 10 * time.Minute
	// ClockSkew is the slack allowed between the signer's clock and the verifier's.
	ClockSkew = time.Minute
	// maxAuthHeader bounds the header before decoding: a token is a few hundred bytes.
	maxAuthHeader = 16 << 10
)

// ErrInvalidToken is wrapped by every ParseAuthHeader and VerifyToken refusal, so a server
// can answer 401 with errors.Is and still show the precise reason.
var ErrInvalidToken = errors.New("invalid authorization token")

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

// ParseAuthHeader decodes an Authorization header value "Nostr <base64 event JSON>". It
// accepts unpadded base64url (BUD-11) and padded standard base64 (older clients), and the
// two other combinations for good measure. It does not verify the event: see VerifyToken.
func ParseAuthHeader(h string) (nostr.Event, error) {
	if len(h) > maxAuthHeader {
		return nostr.Event{}, fmt.Errorf("%w: header is %d bytes, more than %d", ErrInvalidToken, len(h), maxAuthHeader)
	}
	scheme, payload, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Nostr") {
		return nostr.Event{}, fmt.Errorf("%w: scheme is not \"Nostr\"", ErrInvalidToken)
	}
	payload = strings.TrimSpace(payload)
	if payload == "" {
		return nostr.Event{}, fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(payload); err == nil {
			break
		}
	}
	if err != nil {
		return nostr.Event{}, fmt.Errorf("%w: not base64: %v", ErrInvalidToken, err)
	}
	var ev nostr.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nostr.Event{}, fmt.Errorf("%w: not an event: %v", ErrInvalidToken, err)
	}
	return ev, nil
}

// VerifyToken checks a BUD-11 token for a request made at now: kind 24242, a valid id and
// signature, created_at not in the future, an expiration in the future but at most
// MaxTokenLifetime ahead, exactly one "t" tag equal to verb, an "x" tag equal to x when x is
// not empty, and a "server" tag equal to server (case-insensitive) when server is not empty.
// Every refusal wraps ErrInvalidToken.
func VerifyToken(ev nostr.Event, verb, x, server string, now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
	}
	if ev.Kind != KindAuth {
		return bad("kind %d, want %d", ev.Kind, KindAuth)
	}
	if !ev.CheckID() {
		return bad("id does not match the event")
	}
	if ok, err := ev.CheckSignature(); err != nil || !ok {
		return bad("bad signature")
	}
	if created := ev.CreatedAt.Time(); created.After(now.Add(ClockSkew)) {
		return bad("created_at %d is in the future", ev.CreatedAt)
	}
	var exps, verbs []string
	var hasX, hasServer, serverOK bool
	for _, tag := range ev.Tags {
		if len(tag) < 2 {
			continue
		}
		switch tag[0] {
		case "expiration":
			exps = append(exps, tag[1])
		case "t":
			verbs = append(verbs, tag[1])
		case "x":
			hasX = hasX || tag[1] == x
		case "server":
			hasServer = true
			serverOK = serverOK || strings.EqualFold(tag[1], server)
		}
	}
	if len(exps) != 1 {
		return bad("want exactly one expiration tag, got %d", len(exps))
	}
	exp, err := strconv.ParseInt(exps[0], 10, 64)
	if err != nil {
		return bad("expiration %q is not a unix time", exps[0])
	}
	if exp <= now.Unix() {
		return bad("expired at %s", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	if exp > now.Add(MaxTokenLifetime+ClockSkew).Unix() {
		return bad("expiration %s is more than %s ahead", time.Unix(exp, 0).UTC().Format(time.RFC3339), MaxTokenLifetime)
	}
	if len(verbs) != 1 || verbs[0] != verb {
		return bad("t tags %q, want exactly [%q]", verbs, verb)
	}
	if x != "" && !hasX {
		return bad("no x tag for %s", x)
	}
	if server != "" && !serverOK {
		if !hasServer {
			return bad("no server tag, want %q", server)
		}
		return bad("server tag does not name %q", server)
	}
	return nil
}
