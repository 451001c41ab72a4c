// Package nip86 calls a relay's NIP-86 management API (PROTOCOL.md section 9.1): an HTTP
// POST of {"method", "params"} signed with a NIP-98 event. The tracker uses it to claim
// an invite; the DVM to register invites and keep the relay's whitelist in step.
package nip86

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
	"net/url"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/sanitize"
)

// MaxAnswer bounds what a management answer may make us read.
const MaxAnswer = 4 << 20

// maxMsg bounds the bytes of a relay's error text kept in an RPCError.
const maxMsg = 300

// DefaultTimeout bounds a call made with a nil *http.Client.
const DefaultTimeout = 30 * time.Second

var defaultClient = &http.Client{Timeout: DefaultTimeout}

// RPCError is a call the relay refused, or could not be reached for (Status 0).
type RPCError struct {
	Relay  string
	Method string
	Status int    // HTTP status; 0 when no answer arrived
	Msg    string // the relay's error text (cleaned), or the transport error
	Err    error  // the underlying error, if any
}

func (e *RPCError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("NIP-86 %s on %s: no answer: %s", e.Method, e.Relay, e.Msg)
	}
	return fmt.Sprintf("NIP-86 %s on %s: HTTP %d: %s", e.Method, e.Relay, e.Status, e.Msg)
}

func (e *RPCError) Unwrap() error { return e.Err }

// Temporary reports whether the call may succeed later (no answer, 5xx, 429).
func (e *RPCError) Temporary() bool {
	return e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// IsStatus reports whether err is an RPCError with that HTTP status.
func IsStatus(err error, status int) bool {
	var re *RPCError
	return errors.As(err, &re) && re.Status == status
}

// HTTPURL turns a relay's ws(s):// URL into the http(s):// URL its management API
// answers on (an http(s):// URL is taken as it is).
func HTTPURL(relay string) (string, error) {
	u, err := url.Parse(relay)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("relay URL %q is not a URL with a host", relay)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("relay URL %q: scheme must be ws or wss", relay)
	}
	u.Fragment = ""
	return u.String(), nil
}

// Call makes the management call method on relay (ws(s) or http(s) URL), NIP-98-signed
// by sk (hex; kept out of every error), and returns the result JSON. hc nil: a client
// with DefaultTimeout.
func Call(ctx context.Context, hc *http.Client, relay, sk, method string, params ...any) (json.RawMessage, error) {
	if hc == nil {
		hc = defaultClient
	}
	endpoint, err := HTTPURL(relay)
	if err != nil {
		return nil, fmt.Errorf("NIP-86 %s: %w", method, err)
	}
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("NIP-86 %s: encode: %w", method, err)
	}
	sum := sha256.Sum256(body)
	// The relay refuses a NIP-98 event id it has seen (replay guard). Two identical calls
	// within one second would share an id, so a random tag keeps each one unique.
	var nonce [8]byte
	rand.Read(nonce[:])
	auth := nostr.Event{
		Kind:      27235,
		CreatedAt: nostr.Now(),
		Tags: nostr.Tags{
			{"u", endpoint},
			{"method", http.MethodPost},
			{"payload", hex.EncodeToString(sum[:])},
			{"nonce", hex.EncodeToString(nonce[:])},
		},
	}
	if err := auth.Sign(sk); err != nil {
		return nil, fmt.Errorf("NIP-86 %s: cannot sign with the given key", method) // go-nostr's message may repeat the key
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("NIP-86 %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/nostr+json+rpc")
	req.Header.Set("Authorization", "Nostr "+base64.StdEncoding.EncodeToString([]byte(auth.String())))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &RPCError{Relay: relay, Method: method, Msg: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, &RPCError{Relay: relay, Method: method, Status: resp.StatusCode, Msg: "reading the answer: " + err.Error(), Err: err}
	}
	if len(raw) > MaxAnswer {
		return nil, &RPCError{Relay: relay, Method: method, Status: resp.StatusCode, Msg: "answer too large"}
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	decErr := json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK || out.Error != "" {
		msg := out.Error
		if msg == "" {
			msg = strings.TrimSpace(resp.Header.Get("X-Reason"))
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &RPCError{Relay: relay, Method: method, Status: resp.StatusCode, Msg: sanitize.Text(msg, maxMsg)}
	}
	if decErr != nil {
		return nil, &RPCError{Relay: relay, Method: method, Status: resp.StatusCode, Msg: "answer is not NIP-86 JSON", Err: decErr}
	}
	return out.Result, nil
}

// Client makes calls signed by one key, with typed helpers for the methods pow.do uses.
type Client struct {
	SecretKey string       // hex
	HTTP      *http.Client // nil: a client with DefaultTimeout
}

// Call is Call with the client's key and HTTP client.
func (c *Client) Call(ctx context.Context, relay, method string, params ...any) (json.RawMessage, error) {
	return Call(ctx, c.HTTP, relay, c.SecretKey, method, params...)
}

// AllowPubkey puts pubkey on the relay's whitelist (admin only).
func (c *Client) AllowPubkey(ctx context.Context, relay, pubkey, reason string) error {
	_, err := c.Call(ctx, relay, "allowpubkey", pubkey, reason)
	return err
}

// UnallowPubkey takes pubkey (and everyone it invited) off the whitelist.
func (c *Client) UnallowPubkey(ctx context.Context, relay, pubkey string) error {
	_, err := c.Call(ctx, relay, "unallowpubkey", pubkey)
	return err
}

// AllowInvite registers a pending invite key that expires at expires.
func (c *Client) AllowInvite(ctx context.Context, relay, invitePubkey string, expires time.Time) error {
	_, err := c.Call(ctx, relay, "allowinvite", invitePubkey, expires.Unix())
	return err
}

// ClaimInvite, signed by the invite key, allows pubkey and retires the invite.
func (c *Client) ClaimInvite(ctx context.Context, relay, pubkey string) error {
	_, err := c.Call(ctx, relay, "claiminvite", pubkey)
	return err
}

// SetInviteQuota sets how many invites pubkey may issue (admin only).
func (c *Client) SetInviteQuota(ctx context.Context, relay, pubkey string, n int) error {
	_, err := c.Call(ctx, relay, "setinvitequota", pubkey, n)
	return err
}

// Allowed is one entry of the relay's whitelist.
type Allowed struct {
	Pubkey string `json:"pubkey"`
	Reason string `json:"reason"`
}

// ListAllowed lists the relay's whitelist (admin only).
func (c *Client) ListAllowed(ctx context.Context, relay string) ([]Allowed, error) {
	raw, err := c.Call(ctx, relay, "listallowedpubkeys")
	if err != nil {
		return nil, err
	}
	var list []Allowed
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("NIP-86 listallowedpubkeys on %s: %w", relay, err)
	}
	return list, nil
}
