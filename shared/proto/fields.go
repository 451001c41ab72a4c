package proto

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nbd-wtf/go-nostr"
)

// ErrInvalid is wrapped by every refusal from a parser or Validate, so a receiver can tell
// a malformed or hostile message (drop it, log the reason) from its own failures.
var ErrInvalid = errors.New("invalid pow.do message")

// FieldError names the tag (or "kind", "content", "content.<json field>") that made a
// message invalid.
type FieldError struct {
	Kind    int    // the rumor kind being parsed or built
	Field   string // tag name, "kind", "content" or "content.<json path>"
	Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("pow.do kind %d: %s: %s", e.Kind, e.Field, e.Problem)
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(kind int, field, format string, args ...any) error {
	return &FieldError{Kind: kind, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// tagSet indexes a rumor's tags by name. Unknown tags are ignored (room for additions
// within version 1); known ones are read through one/opt/all, which refuse duplicates
// and tags without a value.
type tagSet struct {
	kind   int
	byName map[string][]nostr.Tag
}

func indexTags(kind int, tags nostr.Tags) tagSet {
	ts := tagSet{kind: kind, byName: make(map[string][]nostr.Tag, len(tags))}
	for _, t := range tags {
		if len(t) == 0 {
			continue
		}
		ts.byName[t[0]] = append(ts.byName[t[0]], t)
	}
	return ts
}

// one returns the value of a required tag that must appear exactly once.
func (ts tagSet) one(name string) (string, error) {
	v, ok, err := ts.opt(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fieldErr(ts.kind, name, "missing")
	}
	return v, nil
}

// opt returns the value of an optional tag that may appear at most once.
func (ts tagSet) opt(name string) (string, bool, error) {
	list := ts.byName[name]
	switch {
	case len(list) == 0:
		return "", false, nil
	case len(list) > 1:
		return "", false, fieldErr(ts.kind, name, "duplicated (%d times)", len(list))
	case len(list[0]) < 2:
		return "", false, fieldErr(ts.kind, name, "has no value")
	}
	return list[0][1], true, nil
}

// all returns the values of a repeatable tag.
func (ts tagSet) all(name string) ([]string, error) {
	var out []string
	for _, t := range ts.byName[name] {
		if len(t) < 2 {
			return nil, fieldErr(ts.kind, name, "has no value")
		}
		out = append(out, t[1])
	}
	return out, nil
}

// header checks the kind and the tags every pow.do rumor carries (p, powdo-v) and returns
// the tag index and the recipient.
func header(ev nostr.Event, kind int) (tagSet, string, error) {
	if ev.Kind != kind {
		return tagSet{}, "", fieldErr(ev.Kind, "kind", "is %d, want %d", ev.Kind, kind)
	}
	if len(ev.Content) > MaxRumorBytes {
		return tagSet{}, "", fieldErr(kind, "content", "%d bytes, more than a rumor can carry (%d)", len(ev.Content), MaxRumorBytes)
	}
	ts := indexTags(kind, ev.Tags)
	to, err := ts.one(TagRecipient)
	if err != nil {
		return ts, "", err
	}
	if err := checkPubkey(kind, TagRecipient, to); err != nil {
		return ts, "", err
	}
	v, err := ts.one(TagVersion)
	if err != nil {
		return ts, "", err
	}
	if v != Version {
		return ts, "", fieldErr(kind, TagVersion, "unknown version %q (this implementation speaks %q)", clip(v), Version)
	}
	return ts, to, nil
}

// newRumor builds an unsigned rumor: p first, then powdo-v, then the message's own tags.
func newRumor(kind int, senderPub, to, content string, tags ...nostr.Tag) nostr.Event {
	all := make(nostr.Tags, 0, 2+len(tags))
	all = append(all, nostr.Tag{TagRecipient, to}, nostr.Tag{TagVersion, Version})
	all = append(all, tags...)
	ev := nostr.Event{
		PubKey:    senderPub,
		CreatedAt: nostr.Now(),
		Kind:      kind,
		Tags:      all,
		Content:   content,
	}
	ev.ID = ev.GetID()
	return ev
}

// clip shortens hostile values before they go into an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkHex(kind int, field, v string, n int) error {
	if !isLowerHex(v, n) {
		return fieldErr(kind, field, "want %d lowercase hex characters, got %q", n, clip(v))
	}
	return nil
}

func checkPubkey(kind int, field, v string) error {
	if err := checkHex(kind, field, v, 64); err != nil {
		return err
	}
	if !nostr.IsValidPublicKey(v) {
		return fieldErr(kind, field, "%s is not a point on secp256k1", v)
	}
	return nil
}

// ValidPubkey reports whether s is a lowercase-hex x-only secp256k1 public key.
func ValidPubkey(s string) bool { return isLowerHex(s, 64) && nostr.IsValidPublicKey(s) }

var curveN, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)

// CheckSecretKey reports whether sk is 64 lowercase hex characters encoding a scalar in
// [1, n-1]. Its error never repeats the key: go-nostr's own errors do, and they must not
// reach a log.
func CheckSecretKey(sk string) error {
	if !isLowerHex(sk, 64) {
		return errors.New("secret key: want 64 lowercase hex characters")
	}
	b, _ := hex.DecodeString(sk)
	k := new(big.Int).SetBytes(b)
	if k.Sign() == 0 || k.Cmp(curveN) >= 0 {
		return errors.New("secret key: out of range for secp256k1")
	}
	return nil
}

// PublicKey derives the public key of a secret key checked by CheckSecretKey.
func PublicKey(sk string) (string, error) {
	if err := CheckSecretKey(sk); err != nil {
		return "", err
	}
	pub, err := nostr.GetPublicKey(sk)
	if err != nil {
		return "", errors.New("secret key: cannot derive public key")
	}
	return pub, nil
}

// parseUint reads a canonical non-negative decimal (digits only, no sign, no leading
// zero) not above max.
func parseUint(kind int, field, v string, max uint64) (uint64, error) {
	if v == "" || len(v) > 20 {
		return 0, fieldErr(kind, field, "want a decimal number, got %q", clip(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fieldErr(kind, field, "want a decimal number, got %q", clip(v))
		}
	}
	if len(v) > 1 && v[0] == '0' {
		return 0, fieldErr(kind, field, "leading zero in %q", v)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, fieldErr(kind, field, "%q is out of range (at most %d)", v, max)
	}
	return n, nil
}

func parseUnix(kind int, field, v string) (time.Time, error) {
	n, err := parseUint(kind, field, v, maxUnix)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(n), 0).UTC(), nil
}

func fmtUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func checkUnixTime(kind int, field string, t time.Time) error {
	if t.IsZero() || t.Unix() < 0 || t.Unix() > maxUnix {
		return fieldErr(kind, field, "time %v is not set or out of range", t)
	}
	return nil
}

// checkText bounds a human-readable string: valid UTF-8, at most max bytes, and
// non-empty when required.
func checkText(kind int, field, v string, max int, required bool) error {
	switch {
	case required && v == "":
		return fieldErr(kind, field, "empty")
	case len(v) > max:
		return fieldErr(kind, field, "%d bytes, at most %d allowed", len(v), max)
	case !utf8.ValidString(v):
		return fieldErr(kind, field, "not valid UTF-8")
	}
	return nil
}

// checkBlobURL accepts an absolute http(s) URL with a host and no credentials.
func checkBlobURL(kind int, field, v string) error {
	if len(v) > MaxURLBytes {
		return fieldErr(kind, field, "URL of %d bytes, at most %d allowed", len(v), MaxURLBytes)
	}
	// URLs are not echoed: a hostile one may carry credentials.
	u, err := url.Parse(v)
	if err != nil {
		return fieldErr(kind, field, "not a URL")
	}
	if u.User != nil {
		return fieldErr(kind, field, "URL must not carry credentials")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fieldErr(kind, field, "URL scheme must be https or http, got %q", clip(u.Scheme))
	}
	if u.Host == "" {
		return fieldErr(kind, field, "URL has no host")
	}
	return nil
}

func checkEmptyContent(kind int, content string) error {
	if content != "" {
		return fieldErr(kind, "content", "must be empty, has %d bytes", len(content))
	}
	return nil
}

// fitsRumor checks that m's rumor stays within MaxRumorBytes once serialised: JSON escaping
// can double a content that is JSON itself, so the content limits alone do not ensure it.
func fitsRumor(kind int, m Message) error {
	const anyPub = "0000000000000000000000000000000000000000000000000000000000000000"
	if n := len(m.Rumor(anyPub).String()); n > MaxRumorBytes {
		return fieldErr(kind, "content", "the rumor would be %d bytes, more than a gift wrap carries (%d)", n, MaxRumorBytes)
	}
	return nil
}
