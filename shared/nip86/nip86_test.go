package nip86

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fiatjaf/khatru"
	"github.com/nbd-wtf/go-nostr"
	gonip86 "github.com/nbd-wtf/go-nostr/nip86"
)

type key struct{ sk, pk string }

func newKey() key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return key{sk, pk}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// khatruRelay serves khatru's own NIP-86 handler (an independent implementation that
// checks the NIP-98 event's signature, u and payload tags) with an in-memory whitelist
// that only admin may change.
func khatruRelay(t *testing.T, admin string) string {
	t.Helper()
	rl := khatru.NewRelay()
	rl.Log = log.New(io.Discard, "", 0)
	var mu sync.Mutex
	allowed := map[string]string{}
	rl.ManagementAPI.RejectAPICall = append(rl.ManagementAPI.RejectAPICall, func(ctx context.Context, _ gonip86.MethodParams) (bool, string) {
		if khatru.GetAuthed(ctx) != admin {
			return true, "restricted: admins only"
		}
		return false, ""
	})
	rl.ManagementAPI.AllowPubKey = func(_ context.Context, pk, reason string) error {
		mu.Lock()
		defer mu.Unlock()
		allowed[pk] = reason
		return nil
	}
	rl.ManagementAPI.ListAllowedPubKeys = func(context.Context) ([]gonip86.PubKeyReason, error) {
		mu.Lock()
		defer mu.Unlock()
		var out []gonip86.PubKeyReason
		for pk, r := range allowed {
			out = append(out, gonip86.PubKeyReason{PubKey: pk, Reason: r})
		}
		return out, nil
	}
	srv := httptest.NewServer(rl)
	t.Cleanup(srv.Close)
	return "ws://" + srv.Listener.Addr().String()
}

func TestAgainstKhatru(t *testing.T) {
	ctx := testCtx(t)
	admin, worker, stranger := newKey(), newKey(), newKey()
	relay := khatruRelay(t, admin.pk)
	c := &Client{SecretKey: admin.sk}
	if err := c.AllowPubkey(ctx, relay, worker.pk, "pow.do worker Alice"); err != nil {
		t.Fatal(err)
	}
	// The same call again within the second is a distinct, valid request.
	if err := c.AllowPubkey(ctx, relay, worker.pk, "pow.do worker Alice"); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListAllowed(ctx, relay)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Pubkey != worker.pk || list[0].Reason != "pow.do worker Alice" {
		t.Fatalf("whitelist %+v", list)
	}

	_, err = Call(ctx, nil, relay, stranger.sk, "allowpubkey", stranger.pk, "me")
	var re *RPCError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "admins only") || re.Method != "allowpubkey" || re.Relay != relay {
		t.Fatalf("call by a non-admin: %v", err)
	}
	if list, _ := c.ListAllowed(ctx, relay); len(list) != 1 {
		t.Fatalf("a refused call changed the whitelist: %+v", list)
	}
}

// recorder is an HTTP server that checks each request's NIP-98 event the way
// powdo-relay does and records the calls.
type recorder struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	calls  []recorded
	answer func(w http.ResponseWriter) // nil: {"result": true}
}

type recorded struct {
	authID, signer string
	Method         string `json:"method"`
	Params         []any  `json:"params"`
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{t: t}
	srv := httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fail := func(msg string) { http.Error(w, msg, http.StatusUnauthorized) }
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/nostr+json+rpc" {
		fail("not a NIP-86 request")
		return
	}
	b64, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Nostr ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	var ev nostr.Event
	if !ok || err != nil || json.Unmarshal(raw, &ev) != nil {
		fail("bad Authorization")
		return
	}
	sum := sha256.Sum256(body)
	if good, _ := ev.CheckSignature(); !good || ev.Kind != 27235 ||
		ev.Tags.FindWithValue("u", "http://"+r.Host+r.URL.Path) == nil && ev.Tags.FindWithValue("u", "http://"+r.Host) == nil ||
		ev.Tags.FindWithValue("method", "POST") == nil ||
		ev.Tags.FindWithValue("payload", hex.EncodeToString(sum[:])) == nil {
		fail("bad NIP-98 event")
		return
	}
	c := recorded{authID: ev.ID, signer: ev.PubKey}
	if err := json.Unmarshal(body, &c); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.calls = append(rec.calls, c)
	answer := rec.answer
	rec.mu.Unlock()
	if answer == nil {
		w.Write([]byte(`{"result":true}`))
		return
	}
	answer(w)
}

func (rec *recorder) recorded() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.calls)
}

func (rec *recorder) setAnswer(f func(w http.ResponseWriter)) {
	rec.mu.Lock()
	rec.answer = f
	rec.mu.Unlock()
}

// The typed helpers send the methods and params of PROTOCOL.md section 9.1, each under a
// fresh NIP-98 event even when identical calls follow each other within a second.
func TestHelpersSendProtocolCalls(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	k, other := newKey(), newKey()
	c := &Client{SecretKey: k.sk}
	exp := time.Unix(1_900_000_000, 0)
	steps := []func() error{
		func() error { return c.AllowPubkey(ctx, rec.url, other.pk, "why") },
		func() error { return c.UnallowPubkey(ctx, rec.url, other.pk) },
		func() error { return c.AllowInvite(ctx, rec.url, other.pk, exp) },
		func() error { return c.ClaimInvite(ctx, rec.url, other.pk) },
		func() error { return c.ClaimInvite(ctx, rec.url, other.pk) },
		func() error { return c.SetInviteQuota(ctx, rec.url, other.pk, 3) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []struct {
		method string
		params string
	}{
		{"allowpubkey", `["` + other.pk + `","why"]`},
		{"unallowpubkey", `["` + other.pk + `"]`},
		{"allowinvite", `["` + other.pk + `",1900000000]`},
		{"claiminvite", `["` + other.pk + `"]`},
		{"claiminvite", `["` + other.pk + `"]`},
		{"setinvitequota", `["` + other.pk + `",3]`},
	}
	got := rec.recorded()
	if len(got) != len(want) {
		t.Fatalf("%d calls recorded, want %d", len(got), len(want))
	}
	ids := map[string]bool{}
	for i, w := range want {
		p, _ := json.Marshal(got[i].Params)
		if got[i].Method != w.method || string(p) != w.params || got[i].signer != k.pk {
			t.Fatalf("call %d: %s %s by %s, want %s %s", i, got[i].Method, p, got[i].signer, w.method, w.params)
		}
		if ids[got[i].authID] {
			t.Fatalf("call %d reuses a NIP-98 event id", i)
		}
		ids[got[i].authID] = true
	}
	// No params at all is sent as an empty list, not null.
	if _, err := c.Call(ctx, rec.url, "supportedmethods"); err != nil {
		t.Fatal(err)
	}
	if last := rec.recorded()[len(want)]; last.Params == nil || len(last.Params) != 0 {
		t.Fatalf("params %#v", last.Params)
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	k := newKey()
	c := &Client{SecretKey: k.sk}
	cases := []struct {
		name      string
		answer    func(w http.ResponseWriter)
		status    int
		msg       string
		temporary bool
	}{
		{"conflict", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"invite already claimed"}`))
		}, http.StatusConflict, "invite already claimed", false},
		{"reason header only", func(w http.ResponseWriter) {
			w.Header().Set("X-Reason", "overloaded")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, http.StatusServiceUnavailable, "overloaded", true},
		{"status text", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) },
			http.StatusTooManyRequests, "Too Many Requests", true},
		{"error with 200", func(w http.ResponseWriter) { w.Write([]byte(`{"error":"restricted: no"}`)) },
			http.StatusOK, "restricted: no", false},
		{"not JSON", func(w http.ResponseWriter) { w.Write([]byte(`<html>hello</html>`)) },
			http.StatusOK, "answer is not NIP-86 JSON", false},
		{"too large", func(w http.ResponseWriter) {
			w.Write([]byte(`{"result":"` + strings.Repeat("a", MaxAnswer) + `"}`))
		}, http.StatusOK, "answer too large", false},
		{"hostile text", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"\u001b[31mno\n` + strings.Repeat("é", 400) + `"}`))
		}, http.StatusForbidden, "", false},
	}
	for _, tc := range cases {
		rec.setAnswer(tc.answer)
		_, err := c.Call(ctx, rec.url, "claiminvite", k.pk)
		var re *RPCError
		if !errors.As(err, &re) || re.Status != tc.status || !IsStatus(err, tc.status) || re.Temporary() != tc.temporary {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.msg != "" && re.Msg != tc.msg {
			t.Fatalf("%s: message %q, want %q", tc.name, re.Msg, tc.msg)
		}
		if !utf8.ValidString(re.Msg) || strings.ContainsAny(re.Msg, "\x1b\n") || len(re.Msg) > 310 {
			t.Fatalf("%s: message not cleaned: %q", tc.name, re.Msg)
		}
		if !strings.Contains(err.Error(), "claiminvite") || !strings.Contains(err.Error(), rec.url) {
			t.Fatalf("%s: error does not say what failed: %v", tc.name, err)
		}
	}

	// Nobody listening: status 0, temporary, the transport error underneath.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + l.Addr().String()
	l.Close()
	_, err = c.Call(ctx, dead, "claiminvite", k.pk)
	var re *RPCError
	if !errors.As(err, &re) || re.Status != 0 || !re.Temporary() || re.Err == nil {
		t.Fatalf("unreachable relay: %v", err)
	}

	// A bad key or URL fails before anything is sent, and the key never shows.
	n := len(rec.recorded())
	bad := strings.Repeat("zz", 32)
	if _, err := Call(ctx, nil, rec.url, bad, "claiminvite"); err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := Call(ctx, nil, "ftp://example.com", k.sk, "claiminvite"); err == nil {
		t.Fatal("ftp URL accepted")
	}
	if len(rec.recorded()) != n {
		t.Fatal("a call that should fail early reached the server")
	}
}

func TestHTTPURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:3334":       "http://127.0.0.1:3334",
		"wss://relay.example.com/":  "https://relay.example.com/",
		"wss://relay.example.com/x": "https://relay.example.com/x",
		"https://relay.example.com": "https://relay.example.com",
	} {
		if got, err := HTTPURL(in); err != nil || got != want {
			t.Fatalf("HTTPURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "ws://", "::"} {
		if _, err := HTTPURL(bad); err == nil {
			t.Fatalf("HTTPURL(%q) accepted", bad)
		}
	}
}
