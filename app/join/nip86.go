package join

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

	"github.com/nbd-wtf/go-nostr"
)

// maxRPCResponse bounds what a management answer may make us read.
const maxRPCResponse = 1 << 20

// RPCError is a NIP-86 call the relay refused (or could not be reached for: Status 0).
type RPCError struct {
	Method string
	Status int    // HTTP status; 0 when no answer arrived
	Msg    string // the relay's error text, or the transport error
	Err    error  // transport error when Status is 0
}

func (e *RPCError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("NIP-86 %s: no answer: %s", e.Method, e.Msg)
	}
	return fmt.Sprintf("NIP-86 %s: HTTP %d: %s", e.Method, e.Status, e.Msg)
}

func (e *RPCError) Unwrap() error { return e.Err }

// HTTPURL turns a relay's ws(s):// URL into the http(s):// URL its management API
// answers on.
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

// Call makes a NIP-86 management call on relay (ws(s) or http(s) URL), NIP-98-signed by
// sk (hex; kept out of every error and log), and returns the result JSON.
func Call(ctx context.Context, hc *http.Client, relay, sk, method string, params ...any) (json.RawMessage, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	endpoint, err := HTTPURL(relay)
	if err != nil {
		return nil, err
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
	nonce := make([]byte, 8)
	rand.Read(nonce)
	auth := nostr.Event{
		Kind:      27235,
		CreatedAt: nostr.Now(),
		Tags: nostr.Tags{
			{"u", endpoint},
			{"method", http.MethodPost},
			{"payload", hex.EncodeToString(sum[:])},
			{"nonce", hex.EncodeToString(nonce)},
		},
	}
	if err := auth.Sign(sk); err != nil {
		return nil, fmt.Errorf("NIP-86 %s: cannot sign with the given key", method)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("NIP-86 %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/nostr+json+rpc")
	req.Header.Set("Authorization", "Nostr "+base64.StdEncoding.EncodeToString([]byte(auth.String())))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &RPCError{Method: method, Msg: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCResponse+1))
	if err != nil {
		return nil, &RPCError{Method: method, Status: resp.StatusCode, Msg: "reading the answer: " + err.Error(), Err: err}
	}
	if len(raw) > maxRPCResponse {
		return nil, &RPCError{Method: method, Status: resp.StatusCode, Msg: "answer too large"}
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
		return nil, &RPCError{Method: method, Status: resp.StatusCode, Msg: sanitize(msg)}
	}
	if decErr != nil {
		return nil, &RPCError{Method: method, Status: resp.StatusCode, Msg: "answer is not NIP-86 JSON", Err: errors.New("bad json")}
	}
	return out.Result, nil
}

// sanitize keeps a server's message printable and short.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
