package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/blossom"
)

// parseNostrAuth decodes "Authorization: Nostr <base64 event JSON>" as BUD-11 and NIP-98
// use it (unpadded base64url or padded standard base64) and verifies the event's id and
// signature.
func parseNostrAuth(header string) (*nostr.Event, error) {
	if header == "" {
		return nil, fmt.Errorf("missing Authorization header")
	}
	ev, err := blossom.ParseAuthHeader(header)
	if err != nil {
		return nil, err
	}
	if !ev.CheckID() {
		return nil, fmt.Errorf("Authorization event id is wrong")
	}
	if ok, _ := ev.CheckSignature(); !ok {
		return nil, fmt.Errorf("Authorization event signature is invalid")
	}
	return &ev, nil
}

// authError is a refusal with its HTTP status.
type authError struct {
	status int
	reason string
}

func (e *authError) Error() string { return e.reason }

func unauthorized(format string, a ...any) *authError {
	return &authError{http.StatusUnauthorized, fmt.Sprintf(format, a...)}
}

func forbidden(format string, a ...any) *authError {
	return &authError{http.StatusForbidden, fmt.Sprintf(format, a...)}
}

// clockSlack tolerates clients whose clocks run a little fast.
const clockSlack = 60 * time.Second

// verifyBlossomToken checks a BUD-11 kind-24242 token for verb. When hash is not empty the
// token must cover it: upload and delete tokens always carry x tags; a get token may carry
// none (it then covers any blob). A present server tag must name this server.
func (s *Server) verifyBlossomToken(r *http.Request, verb, hash string) (*nostr.Event, *authError) {
	ev, err := parseNostrAuth(r.Header.Get("Authorization"))
	if err != nil {
		return nil, unauthorized("%s requires a BUD-11 token: %v", verb, err)
	}
	if ev.Kind != 24242 {
		return nil, unauthorized("token kind is %d, want 24242", ev.Kind)
	}
	now := s.now()
	if ev.CreatedAt.Time().After(now.Add(clockSlack)) {
		return nil, unauthorized("token created_at is in the future")
	}
	exp := ev.Tags.Find("expiration")
	if exp == nil {
		return nil, unauthorized("token has no expiration tag")
	}
	expAt, err := strconv.ParseInt(exp[1], 10, 64)
	if err != nil {
		return nil, unauthorized("token expiration %q is not a unix time", exp[1])
	}
	if expAt <= now.Unix() {
		return nil, unauthorized("token expired at %d", expAt)
	}
	if ev.Tags.FindWithValue("t", verb) == nil {
		return nil, forbidden("token is not for %s (its t tag)", verb)
	}
	servers := 0
	matched := false
	for _, t := range ev.Tags {
		if len(t) >= 2 && t[0] == "server" {
			servers++
			matched = matched || s.hostMatches(r, t[1])
		}
	}
	if servers > 0 && !matched {
		return nil, forbidden("token is bound to another server")
	}
	if hash != "" {
		xs := 0
		for _, t := range ev.Tags {
			if len(t) >= 2 && t[0] == "x" {
				xs++
			}
		}
		if (xs > 0 || verb != "get") && ev.Tags.FindWithValue("x", hash) == nil {
			return nil, forbidden("token does not cover blob %s", hash)
		}
	}
	return ev, nil
}

// tokenCovers reports whether an upload token names hash in an x tag.
func tokenCovers(ev *nostr.Event, hash string) bool { return ev.Tags.FindWithValue("x", hash) != nil }

// nip98 verifies NIP-98 HTTP auth for a management call: kind 27235, fresh, u = this
// relay's URL, method = POST, payload = sha256(body), and never seen before (replay).
func (s *Server) verifyNIP98(r *http.Request, body []byte) (string, error) {
	ev, err := parseNostrAuth(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if ev.Kind != 27235 {
		return "", fmt.Errorf("auth event kind is %d, want 27235 (NIP-98)", ev.Kind)
	}
	now := s.now()
	if d := now.Sub(ev.CreatedAt.Time()); d > clockSlack || d < -clockSlack {
		return "", fmt.Errorf("auth event created_at is more than %s away from the server's clock", clockSlack)
	}
	u := ev.Tags.Find("u")
	if u == nil {
		return "", fmt.Errorf("auth event has no u tag")
	}
	want := s.baseURL(r) + r.URL.Path
	if nostr.NormalizeURL(u[1]) != nostr.NormalizeURL(want) {
		return "", fmt.Errorf("auth event u tag %q does not name this relay (%s)", u[1], want)
	}
	if m := ev.Tags.Find("method"); m == nil || !strings.EqualFold(m[1], r.Method) {
		return "", fmt.Errorf("auth event method tag must be %s", r.Method)
	}
	sum := sha256.Sum256(body)
	if ev.Tags.FindWithValue("payload", hex.EncodeToString(sum[:])) == nil {
		return "", fmt.Errorf("auth event payload tag does not match the body's sha256")
	}
	if !s.replay.first(ev.ID, now) {
		return "", fmt.Errorf("auth event was already used")
	}
	return ev.PubKey, nil
}

// replayGuard remembers NIP-98 event ids for twice the accepted clock window.
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (g *replayGuard) first(id string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	for k, at := range g.seen {
		if now.Sub(at) > 2*clockSlack+time.Minute {
			delete(g.seen, k)
		}
	}
	if _, dup := g.seen[id]; dup {
		return false
	}
	g.seen[id] = now
	return true
}
