package roster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// Admin calls a relay's NIP-86 management API, each request signed with NIP-98 by the
// DVM key (which the relay must list as an admin).
type Admin struct {
	SecretKey string       // the DVM's, hex
	HTTP      *http.Client // nil: a client with a 30 s timeout
}

// RPCError is a refused or failed management call.
type RPCError struct {
	Relay  string
	Method string
	Status int    // HTTP status; 0 when no answer arrived
	Msg    string // the relay's error, or the transport error
}

func (e *RPCError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("relay %s %s: %s", e.Relay, e.Method, e.Msg)
	}
	return fmt.Sprintf("relay %s %s: %d: %s", e.Relay, e.Method, e.Status, e.Msg)
}

// Temporary reports whether the call may succeed later (no answer, 5xx, 429).
func (e *RPCError) Temporary() bool {
	return e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// HTTPURL turns a relay's ws(s):// URL into the http(s):// URL its management API and
// Blossom store answer on.
func HTTPURL(relayURL string) string {
	u := strings.TrimRight(relayURL, "/")
	switch {
	case strings.HasPrefix(u, "wss://"):
		return "https://" + strings.TrimPrefix(u, "wss://")
	case strings.HasPrefix(u, "ws://"):
		return "http://" + strings.TrimPrefix(u, "ws://")
	}
	return u
}

const maxRPCAnswer = 4 << 20

// Call runs one method on the relay and returns its result.
func (a *Admin) Call(ctx context.Context, relayURL, method string, params ...any) (json.RawMessage, error) {
	endpoint := HTTPURL(relayURL) + "/"
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("relay %s %s: encode: %w", relayURL, method, err)
	}
	sum := sha256.Sum256(body)
	// Relays refuse a NIP-98 event seen before; two equal calls in one second would give
	// the same event, so a random nonce tag keeps each one unique.
	var nonce [8]byte
	rand.Read(nonce[:])
	auth := nostr.Event{
		Kind:      27235,
		CreatedAt: nostr.Now(),
		Tags: nostr.Tags{{"u", endpoint}, {"method", http.MethodPost}, {"payload", hex.EncodeToString(sum[:])},
			{"nonce", hex.EncodeToString(nonce[:])}},
	}
	if err := auth.Sign(a.SecretKey); err != nil {
		return nil, fmt.Errorf("relay %s %s: sign NIP-98 event failed", relayURL, method)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("relay %s %s: %w", relayURL, method, err)
	}
	req.Header.Set("Content-Type", "application/nostr+json+rpc")
	req.Header.Set("Authorization", "Nostr "+base64.StdEncoding.EncodeToString([]byte(auth.String())))
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &RPCError{Relay: relayURL, Method: method, Msg: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCAnswer))
	if err != nil {
		return nil, &RPCError{Relay: relayURL, Method: method, Msg: "read answer: " + err.Error()}
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	jerr := json.Unmarshal(raw, &ans)
	if resp.StatusCode != http.StatusOK || ans.Error != "" || jerr != nil {
		msg := ans.Error
		if msg == "" {
			msg = resp.Header.Get("X-Reason")
		}
		if msg == "" && jerr != nil {
			msg = "answer is not NIP-86 JSON"
		}
		return nil, &RPCError{Relay: relayURL, Method: method, Status: resp.StatusCode, Msg: clip(msg)}
	}
	return ans.Result, nil
}

// IsStatus reports whether err is an RPCError with that HTTP status.
func IsStatus(err error, status int) bool {
	var re *RPCError
	return errors.As(err, &re) && re.Status == status
}

func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
