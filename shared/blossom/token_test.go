package blossom_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/blossom"
)

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const someHash = "b1674191a88ec5cdd733e4240a81803105dc412d6c6708d53ab94fc248f4f553"

func TestParseAuthHeaderEncodings(t *testing.T) {
	sk := nostr.GeneratePrivateKey()
	ev, err := blossom.NewToken(sk, "upload", []string{someHash}, 5*time.Minute, "blossom.example.com")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	headers := map[string]string{
		"AuthHeader (base64url, unpadded)": blossom.AuthHeader(ev),
		"standard base64, padded":          "Nostr " + base64.StdEncoding.EncodeToString(raw),
		"lower-case scheme":                "nostr " + base64.RawURLEncoding.EncodeToString(raw),
	}
	if !strings.HasSuffix(headers["standard base64, padded"], "=") && len(raw)%3 != 0 {
		t.Fatal("padded form has no padding")
	}
	if strings.ContainsAny(strings.TrimPrefix(headers["AuthHeader (base64url, unpadded)"], "Nostr "), "+/=") {
		t.Fatal("AuthHeader is not unpadded base64url")
	}
	for name, h := range headers {
		got, err := blossom.ParseAuthHeader(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != ev.ID || got.Sig != ev.Sig {
			t.Fatalf("%s: decoded a different event", name)
		}
		if err := blossom.VerifyToken(got, "upload", someHash, "blossom.example.com", time.Now()); err != nil {
			t.Fatalf("%s: verify: %v", name, err)
		}
	}

	for name, h := range map[string]string{
		"no scheme":     base64.RawURLEncoding.EncodeToString(raw),
		"bearer":        "Bearer " + base64.RawURLEncoding.EncodeToString(raw),
		"empty":         "Nostr ",
		"not base64":    "Nostr %%%",
		"not JSON":      "Nostr " + base64.RawURLEncoding.EncodeToString([]byte("hello")),
		"huge":          "Nostr " + strings.Repeat("A", 20000),
		"scheme only":   "Nostr",
		"JSON not obj":  "Nostr " + base64.RawURLEncoding.EncodeToString([]byte("[1,2]")),
		"truncated b64": blossom.AuthHeader(ev)[:40],
	} {
		if _, err := blossom.ParseAuthHeader(h); !errors.Is(err, blossom.ErrInvalidToken) {
			t.Errorf("%s: err %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestVerifyToken(t *testing.T) {
	sk := nostr.GeneratePrivateKey()
	now := time.Now()
	mk := func(mut func(*nostr.Event)) nostr.Event {
		ev := nostr.Event{
			Kind:      blossom.KindAuth,
			CreatedAt: nostr.Timestamp(now.Add(-time.Second).Unix()),
			Content:   "Upload " + someHash,
			Tags: nostr.Tags{
				{"t", "upload"},
				{"x", someHash},
				{"expiration", strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10)},
				{"server", "cdn.example.com"},
			},
		}
		if mut != nil {
			mut(&ev)
		}
		if err := ev.Sign(sk); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	setTag := func(name, value string) func(*nostr.Event) {
		return func(ev *nostr.Event) {
			for _, tag := range ev.Tags {
				if tag[0] == name {
					tag[1] = value
				}
			}
		}
	}
	if err := blossom.VerifyToken(mk(nil), "upload", someHash, "CDN.example.com", now); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	tampered := mk(nil)
	tampered.Content = "Delete " + someHash

	cases := []struct {
		name   string
		ev     nostr.Event
		verb   string
		x      string
		server string
		want   string
	}{
		{"expired", mk(setTag("expiration", strconv.FormatInt(now.Add(-time.Second).Unix(), 10))), "upload", someHash, "cdn.example.com", "expired"},
		{"expiration too far", mk(setTag("expiration", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), "upload", someHash, "cdn.example.com", "ahead"},
		{"x mismatch", mk(nil), "upload", strings.Repeat("0", 64), "cdn.example.com", "no x tag"},
		{"verb mismatch", mk(nil), "delete", someHash, "cdn.example.com", "t tags"},
		{"server mismatch", mk(nil), "upload", someHash, "other.example.com", "server tag"},
		{"no server tag", mk(func(ev *nostr.Event) { ev.Tags = ev.Tags[:3] }), "upload", someHash, "cdn.example.com", "no server tag"},
		{"no expiration", mk(func(ev *nostr.Event) { ev.Tags = nostr.Tags{{"t", "upload"}, {"x", someHash}} }), "upload", someHash, "", "expiration"},
		{"bad expiration", mk(setTag("expiration", "soon")), "upload", someHash, "", "not a unix time"},
		{"created in future", mk(func(ev *nostr.Event) { ev.CreatedAt = nostr.Timestamp(now.Add(time.Hour).Unix()) }), "upload", someHash, "", "future"},
		{"wrong kind", mk(func(ev *nostr.Event) { ev.Kind = 1 }), "upload", someHash, "", "kind"},
		{"tampered", tampered, "upload", someHash, "", "id does not match"},
		{"two verbs", mk(func(ev *nostr.Event) { ev.Tags = append(ev.Tags, nostr.Tag{"t", "delete"}) }), "upload", someHash, "", "t tags"},
	}
	for _, c := range cases {
		err := blossom.VerifyToken(c.ev, c.verb, c.x, c.server, now)
		if !errors.Is(err, blossom.ErrInvalidToken) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrInvalidToken mentioning %q", c.name, err, c.want)
		}
	}

	// A forged signature over a correct id.
	forged := mk(nil)
	other := mk(func(ev *nostr.Event) { ev.Content = "x" })
	forged.Sig = other.Sig
	if err := blossom.VerifyToken(forged, "upload", someHash, "", now); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("forged signature: %v", err)
	}
}

func TestNewTokenShape(t *testing.T) {
	sk := nostr.GeneratePrivateKey()
	ev, err := blossom.NewToken(sk, "delete", []string{someHash}, time.Minute, "h.example")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Content != "Delete "+someHash || ev.Tags.GetFirst([]string{"x", someHash}) == nil || ev.Tags.GetFirst([]string{"server", "h.example"}) == nil {
		t.Fatalf("token %+v", ev)
	}
	if err := blossom.VerifyToken(ev, "delete", someHash, "h.example", time.Now().Add(2*time.Minute)); err == nil {
		t.Fatal("token still valid after its ttl")
	}
}
