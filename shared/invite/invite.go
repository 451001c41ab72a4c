// Package invite reads and writes pow.do invite links and computes the pairing fingerprint
// (PROTOCOL.md section 7). A link carries a secret key: never log Link.String().
package invite

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
)

// Limits on hostile links.
const (
	MaxLinkLen  = 8192 // bytes in the whole link
	MaxServers  = 8    // relays, and separately Blossom servers
	MaxNameLen  = 100  // bytes in name
	fingerprint = "powdo-pair-v1"
	// secp256k1's group order n, in the same 64-hex form as a key: a valid secret is in [1, n).
	curveOrder = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
)

// Link is a decoded invite. DVM and Secret are lowercase hex.
type Link struct {
	DVM      string   // the DVM's pubkey
	Relays   []string // ws:// or wss:// URLs, first preferred
	Blossoms []string // http:// or https:// URLs, first preferred
	Secret   string   // the throw-away invite secret key
	Name     string   // optional label for the worker
}

func errf(format string, args ...any) error {
	return fmt.Errorf("invite link: "+format, args...)
}

// Parse reads "powdo://join?<params>" or "https://<host>/join#<params>". Keys may be
// npub/nsec or hex. Unknown parameters are ignored so later versions can add some.
func Parse(s string) (Link, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLinkLen {
		return Link{}, errf("%d bytes, more than %d", len(s), MaxLinkLen)
	}
	if s == "" {
		return Link{}, errf("empty")
	}
	var params string
	scheme, rest, ok := strings.Cut(s, "://")
	switch strings.ToLower(scheme) {
	case "powdo":
		target, q, hasQ := strings.Cut(rest, "?")
		if !ok || !strings.EqualFold(strings.TrimSuffix(target, "/"), "join") {
			return Link{}, errf("want powdo://join?..., got powdo://%s", shorten(target))
		}
		if !hasQ {
			return Link{}, errf("powdo://join carries no parameters")
		}
		params, _, _ = strings.Cut(q, "#")
	case "https":
		before, frag, hasFrag := strings.Cut(rest, "#")
		u, err := url.Parse("https://" + before)
		if err != nil || u.Host == "" {
			return Link{}, errf("malformed https address %q", shorten(before))
		}
		if strings.TrimSuffix(u.Path, "/") != "/join" {
			return Link{}, errf("https form must point at /join, not %q", shorten(u.Path))
		}
		if u.RawQuery != "" {
			return Link{}, errf("https form must carry its parameters after #, never in the query (the web server would see the secret)")
		}
		if !hasFrag || frag == "" {
			return Link{}, errf("https form carries no parameters after #")
		}
		params = frag
	default:
		return Link{}, errf("must start with powdo://join? or https://<host>/join#")
	}

	vals, err := url.ParseQuery(params)
	if err != nil {
		return Link{}, errf("malformed parameters: %v", err)
	}
	one := func(key string, required bool) (string, error) {
		switch v := vals[key]; {
		case len(v) > 1:
			return "", errf("%d %s parameters, want exactly one", len(v), key)
		case len(v) == 0 && required:
			return "", errf("missing %s", key)
		case len(v) == 0:
			return "", nil
		default:
			return v[0], nil
		}
	}
	var l Link
	dvm, err := one("dvm", true)
	if err != nil {
		return Link{}, err
	}
	if l.DVM, err = decodeKey(dvm, "npub"); err != nil {
		return Link{}, errf("dvm: %v", err)
	}
	secret, err := one("secret", true)
	if err != nil {
		return Link{}, err
	}
	if l.Secret, err = decodeKey(secret, "nsec"); err != nil {
		return Link{}, errf("secret: %v", err)
	}
	if l.Name, err = one("name", false); err != nil {
		return Link{}, err
	}
	l.Relays = dedupe(vals["relay"])
	l.Blossoms = dedupe(vals["blossom"])
	if err := l.Validate(); err != nil {
		return Link{}, err
	}
	return l, nil
}

// Validate checks every field: a valid DVM pubkey and secret key, 1..MaxServers relays
// (ws/wss) and Blossom servers (http/https), and a short printable name.
func (l Link) Validate() error {
	if !nostr.IsValidPublicKey(l.DVM) {
		return errf("dvm %q is not a valid public key", shorten(l.DVM))
	}
	if !validSecret(l.Secret) {
		return errf("secret is not a valid secret key")
	}
	if len(l.Relays) == 0 {
		return errf("no relay")
	}
	if len(l.Relays) > MaxServers {
		return errf("%d relays, at most %d", len(l.Relays), MaxServers)
	}
	for _, r := range l.Relays {
		if !serverURL(r, "ws", "wss") {
			return errf("relay %q is not a ws:// or wss:// URL", shorten(r))
		}
	}
	if len(l.Blossoms) == 0 {
		return errf("no blossom server")
	}
	if len(l.Blossoms) > MaxServers {
		return errf("%d blossom servers, at most %d", len(l.Blossoms), MaxServers)
	}
	for _, b := range l.Blossoms {
		if !serverURL(b, "http", "https") {
			return errf("blossom %q is not an http:// or https:// URL", shorten(b))
		}
	}
	if len(l.Name) > MaxNameLen {
		return errf("name is %d bytes, at most %d", len(l.Name), MaxNameLen)
	}
	if !utf8.ValidString(l.Name) || strings.IndexFunc(l.Name, unicode.IsControl) >= 0 {
		return errf("name must be printable UTF-8")
	}
	return nil
}

// InviteKey is the public key of the invite secret: the key the relay allowed.
func (l Link) InviteKey() (string, error) {
	if !validSecret(l.Secret) {
		return "", errf("secret is not a valid secret key")
	}
	return nostr.GetPublicKey(l.Secret)
}

// String renders the powdo:// form. It contains the secret.
func (l Link) String() string { return "powdo://join?" + l.params(false) }

// HTTPS renders the https form for host ("example.com" or "example.com:8443"), everything
// after "#" so that the secret never reaches a web server.
func (l Link) HTTPS(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
	return "https://" + host + "/join#" + l.params(false)
}

// Redacted is the powdo:// form with the secret hidden, for logs and screens.
func (l Link) Redacted() string { return "powdo://join?" + l.params(true) }

// LogValue keeps the secret out of slog output even when a Link is logged whole.
func (l Link) LogValue() slog.Value { return slog.StringValue(l.Redacted()) }

func (l Link) params(redact bool) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + url.QueryEscape(v))
	}
	dvm, err := nip19.EncodePublicKey(l.DVM)
	if err != nil {
		dvm = l.DVM
	}
	add("dvm", dvm)
	for _, r := range l.Relays {
		add("relay", r)
	}
	for _, bl := range l.Blossoms {
		add("blossom", bl)
	}
	secret := "REDACTED"
	if !redact {
		if secret, err = nip19.EncodePrivateKey(l.Secret); err != nil {
			secret = l.Secret
		}
	}
	add("secret", secret)
	if l.Name != "" {
		add("name", l.Name)
	}
	return b.String()
}

// decodeKey accepts bech32 with the given prefix (npub, nsec) or 64 hex characters and
// returns lowercase hex.
func decodeKey(s, prefix string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(strings.ToLower(s), prefix+"1") {
		p, v, err := nip19.Decode(strings.ToLower(s))
		if err != nil || p != prefix {
			return "", fmt.Errorf("not a valid %s", prefix)
		}
		return v.(string), nil
	}
	if len(s) == 64 {
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToLower(s), nil
		}
	}
	if strings.HasPrefix(s, "n") && len(s) > 4 {
		return "", fmt.Errorf("want %s or 64 hex characters, got %s…", prefix, s[:4])
	}
	return "", fmt.Errorf("want %s or 64 hex characters", prefix)
}

func validSecret(sk string) bool {
	if len(sk) != 64 || strings.ToLower(sk) != sk {
		return false
	}
	if _, err := hex.DecodeString(sk); err != nil {
		return false
	}
	// Same width, lowercase: string order is numeric order.
	return sk != strings.Repeat("0", 64) && sk < curveOrder
}

func serverURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Hostname() == "" {
		return false
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// shorten keeps error messages readable when the input is long or hostile.
func shorten(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Fingerprint returns the six words both sides show when pairing (PROTOCOL.md section 7):
// h = sha256("powdo-pair-v1" || dvm pubkey bytes || worker pubkey bytes), words
// Words[h[0]] … Words[h[5]] joined by "-". Keys are hex or npub.
func Fingerprint(dvmPub, workerPub string) (string, error) {
	var keys [2][]byte
	for i, k := range []string{dvmPub, workerPub} {
		h, err := decodeKey(k, "npub")
		if err == nil && !nostr.IsValidPublicKey(h) {
			err = errors.New("not a valid public key")
		}
		if err != nil {
			return "", fmt.Errorf("fingerprint: %s key: %w", [2]string{"dvm", "worker"}[i], err)
		}
		keys[i], _ = hex.DecodeString(h)
	}
	h := sha256.New()
	h.Write([]byte(fingerprint))
	h.Write(keys[0])
	h.Write(keys[1])
	sum := h.Sum(nil)
	words := make([]string, 6)
	for i := range words {
		words[i] = Words[sum[i]]
	}
	return strings.Join(words, "-"), nil
}
