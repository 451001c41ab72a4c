package invite_test

import (
	"bytes"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/shared/invite"
)

func newLink(t *testing.T) invite.Link {
	t.Helper()
	dvmSK := nostr.GeneratePrivateKey()
	dvm, _ := nostr.GetPublicKey(dvmSK)
	return invite.Link{
		DVM:      dvm,
		Relays:   []string{"wss://relay.example.com", "ws://127.0.0.1:7447/path"},
		Blossoms: []string{"https://cdn.example.com", "http://127.0.0.1:7447"},
		Secret:   nostr.GeneratePrivateKey(),
		Name:     "Alice & Bob = #1 ✓",
	}
}

func TestRoundTrip(t *testing.T) {
	l := newLink(t)
	s := l.String()
	if !strings.HasPrefix(s, "powdo://join?dvm=npub1") || !strings.Contains(s, "secret=nsec1") {
		t.Fatalf("powdo form %q", s)
	}
	got, err := invite.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, l)
	}

	h := l.HTTPS("pow.example.com:8443")
	if !strings.HasPrefix(h, "https://pow.example.com:8443/join#dvm=npub1") || strings.Contains(h, "?") {
		t.Fatalf("https form %q", h)
	}
	got, err = invite.Parse(h)
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("https round trip: %+v %v", got, err)
	}
	if again := invite.Link.HTTPS(l, "https://pow.example.com:8443/"); again != h {
		t.Fatalf("HTTPS with a scheme and slash: %q", again)
	}

	// Hex keys are accepted too, and a missing name stays empty.
	l.Name = ""
	hexLink := "powdo://join?dvm=" + l.DVM + "&relay=wss%3A%2F%2Frelay.example.com&relay=ws%3A%2F%2F127.0.0.1%3A7447%2Fpath" +
		"&blossom=https%3A%2F%2Fcdn.example.com&blossom=http%3A%2F%2F127.0.0.1%3A7447&secret=" + strings.ToUpper(l.Secret) + "&future=1"
	got, err = invite.Parse("  " + hexLink + "\n")
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("hex link: %+v %v", got, err)
	}

	inv, err := l.InviteKey()
	want, _ := nostr.GetPublicKey(l.Secret)
	if err != nil || inv != want {
		t.Fatalf("invite key %q %v", inv, err)
	}
}

func TestSecretStaysOutOfLogs(t *testing.T) {
	l := newLink(t)
	nsec, _ := nip19.EncodePrivateKey(l.Secret)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("joined", "link", l)
	if strings.Contains(buf.String(), nsec) || strings.Contains(buf.String(), l.Secret) || !strings.Contains(buf.String(), "REDACTED") {
		t.Fatalf("log line %q", buf.String())
	}
	if strings.Contains(l.Redacted(), nsec) {
		t.Fatal("Redacted shows the secret")
	}
}

func TestMalformed(t *testing.T) {
	l := newLink(t)
	npub, _ := nip19.EncodePublicKey(l.DVM)
	nsec, _ := nip19.EncodePrivateKey(l.Secret)
	base := "dvm=" + npub + "&relay=wss://r.example&blossom=https://b.example&secret=" + nsec
	notOnCurve := strings.Repeat("f", 64) // x ≥ p: not a valid x-only key
	cases := []struct{ link, want string }{
		{"", "empty"},
		{"ftp://join?" + base, "must start with"},
		{"powdo://leave?" + base, "want powdo://join"},
		{"powdo://join", "no parameters"},
		{"https://pow.example.com/join", "no parameters after #"},
		{"https://pow.example.com/other#" + base, "/join"},
		{"https://pow.example.com/join?" + base, "never in the query"},
		{"powdo://join?" + strings.Replace(base, "dvm="+npub+"&", "", 1), "missing dvm"},
		{"powdo://join?" + base + "&dvm=" + npub, "2 dvm parameters"},
		{"powdo://join?" + strings.Replace(base, npub, nsec, 1), "dvm: want npub"},
		{"powdo://join?" + strings.Replace(base, npub, notOnCurve, 1), "not a valid public key"},
		{"powdo://join?" + strings.Replace(base, npub, npub[:len(npub)-1]+"x", 1), "not a valid npub"},
		{"powdo://join?" + strings.Replace(base, "&secret="+nsec, "", 1), "missing secret"},
		{"powdo://join?" + strings.Replace(base, nsec, npub, 1), "secret: want nsec"},
		{"powdo://join?" + strings.Replace(base, nsec, strings.Repeat("0", 64), 1), "not a valid secret key"},
		{"powdo://join?" + strings.Replace(base, nsec, strings.Repeat("f", 64), 1), "not a valid secret key"},
		{"powdo://join?" + strings.Replace(base, "relay=wss://r.example&", "", 1), "no relay"},
		{"powdo://join?" + strings.Replace(base, "wss://r.example", "ftp://x", 1), `relay "ftp://x" is not a ws:// or wss:// URL`},
		{"powdo://join?" + strings.Replace(base, "wss://r.example", "https://r.example", 1), "is not a ws:// or wss:// URL"},
		{"powdo://join?" + strings.Replace(base, "wss://r.example", "wss://", 1), "is not a ws:// or wss:// URL"},
		{"powdo://join?" + strings.Replace(base, "wss://r.example", "wss://u:p@r.example", 1), "is not a ws:// or wss:// URL"},
		{"powdo://join?" + strings.Replace(base, "&blossom=https://b.example", "", 1), "no blossom"},
		{"powdo://join?" + strings.Replace(base, "https://b.example", "wss://b.example", 1), "is not an http:// or https:// URL"},
		{"powdo://join?" + base + strings.Repeat("&relay=wss://r.example/x", 1) + "&relay=wss://a&relay=wss://b&relay=wss://c&relay=wss://d&relay=wss://e&relay=wss://f&relay=wss://g&relay=wss://h", "at most 8"},
		{"powdo://join?" + base + "&name=%zz", "malformed parameters"},
		{"powdo://join?" + base + "&name=a&name=b", "2 name parameters"},
		{"powdo://join?" + base + "&name=" + strings.Repeat("n", 101), "at most 100"},
		{"powdo://join?" + base + "&name=a%0Ab", "printable"},
		{"powdo://join?" + base + "&name=%ff", "printable"},
		{"powdo://join?" + base + strings.Repeat("&x=1", 3000), "more than 8192"},
	}
	for _, c := range cases {
		_, err := invite.Parse(c.link)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "invite link: ") {
			t.Errorf("Parse(%.60q): err %v, want one mentioning %q", c.link, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), nsec) || strings.Contains(err.Error(), l.Secret)) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	// The base itself is valid: every failure above comes from its one change.
	if _, err := invite.Parse("powdo://join?" + base); err != nil {
		t.Fatalf("base link: %v", err)
	}
}

func TestWords(t *testing.T) {
	seen := map[string]bool{}
	ok := regexp.MustCompile(`^[a-z]{3,8}$`)
	for i, w := range invite.Words {
		if !ok.MatchString(w) {
			t.Errorf("word %d %q is not 3-8 lowercase letters", i, w)
		}
		if seen[w] {
			t.Errorf("word %q repeated", w)
		}
		seen[w] = true
	}
	if len(seen) != 256 {
		t.Fatalf("%d distinct words, want 256", len(seen))
	}
}

func TestFingerprint(t *testing.T) {
	// Secret keys 1 and 2: their x-only pubkeys are fixed forever.
	g1 := "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	g2 := "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
	// Computed independently (Python hashlib over the same word list) to pin the formula
	// and the list's order.
	const want12 = "robot-tractor-shell-rocket-river-giant"
	const want21 = "toast-farm-yogurt-salmon-clown-ruby"
	for i := 0; i < 2; i++ {
		got, err := invite.Fingerprint(g1, g2)
		if err != nil || got != want12 {
			t.Fatalf("Fingerprint(g1, g2) = %q, %v; want %q", got, err, want12)
		}
	}
	if got, _ := invite.Fingerprint(g2, g1); got != want21 {
		t.Fatalf("swapped roles: %q, want %q", got, want21)
	}
	npub1, _ := nip19.EncodePublicKey(g1)
	if got, _ := invite.Fingerprint(npub1, g2); got != want12 {
		t.Fatalf("npub input: %q", got)
	}

	other, _ := nostr.GetPublicKey(nostr.GeneratePrivateKey())
	a, _ := invite.Fingerprint(g1, other)
	b, _ := invite.Fingerprint(other, g2)
	if a == want12 || b == want12 {
		t.Fatal("fingerprint did not change with a key")
	}
	if n := len(strings.Split(a, "-")); n != 6 {
		t.Fatalf("%q has %d words", a, n)
	}

	for _, bad := range []string{"", "abc", strings.Repeat("f", 64), "nsec1xyz"} {
		if _, err := invite.Fingerprint(bad, g2); err == nil || !strings.Contains(err.Error(), "dvm key") {
			t.Errorf("dvm %q: %v", bad, err)
		}
		if _, err := invite.Fingerprint(g1, bad); err == nil || !strings.Contains(err.Error(), "worker key") {
			t.Errorf("worker %q: %v", bad, err)
		}
	}
}
