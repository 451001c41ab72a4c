package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip42"
	"github.com/nbd-wtf/go-nostr/nip44"
	"github.com/nbd-wtf/go-nostr/nip59"

	"pow.do/shared/blossom"
	"pow.do/shared/clocktest"
)

type key struct{ sk, pk string }

func newKey(t testing.TB) key {
	t.Helper()
	sk := nostr.GeneratePrivateKey()
	pk, err := nostr.GetPublicKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return key{sk, pk}
}

// testLog shows warnings and errors in the test output only.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type fakeClock = clocktest.Clock

// start runs a real server on 127.0.0.1:0 with dataDir (a fresh one when empty).
func start(t testing.TB, dataDir string, mod func(*Config)) *Server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: dataDir, Logger: testLog(t), SweepInterval: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func (s *Server) wsURL() string { return "ws://" + s.Addr() }

// client is a go-nostr websocket connection driven step by step. (go-nostr's Relay type
// races with itself when a connection closes, which -race reports; its Connection and
// envelopes do not.)
type client struct {
	t         testing.TB
	conn      *nostr.Connection
	url       string
	in        chan nostr.Envelope
	pending   []nostr.Envelope
	challenge string
	subs      int
}

const wait = 10 * time.Second

// dial connects; the server sends its NIP-42 challenge first. With k it AUTHs as k.
func dial(t testing.TB, s *Server, k *key) *client {
	t.Helper()
	c, err := tryDial(t, s.wsURL())
	if err != nil {
		t.Fatal(err)
	}
	if k != nil {
		if msg := c.auth(*k); msg != "" {
			t.Fatalf("AUTH as %s: %s", k.pk[:8], msg)
		}
	}
	return c
}

func tryDial(t testing.TB, url string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := nostr.NewConnection(ctx, url, nil, nil)
	if err != nil {
		return nil, err
	}
	c := &client{t: t, conn: conn, url: url, in: make(chan nostr.Envelope, 4096)}
	go func() {
		defer close(c.in)
		for {
			var buf bytes.Buffer
			if err := conn.ReadMessage(context.Background(), &buf); err != nil {
				return
			}
			if env := nostr.ParseMessage(buf.String()); env != nil {
				c.in <- env
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	env := c.next(func(e nostr.Envelope) bool { _, ok := e.(*nostr.AuthEnvelope); return ok })
	c.challenge = *env.(*nostr.AuthEnvelope).Challenge
	return c, nil
}

// next returns the first message (pending ones first) that match accepts; others wait.
func (c *client) next(match func(nostr.Envelope) bool) nostr.Envelope {
	c.t.Helper()
	for i, e := range c.pending {
		if match(e) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return e
		}
	}
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-c.in:
			if !ok {
				c.t.Fatal("connection closed while waiting for an answer")
			}
			if match(e) {
				return e
			}
			c.pending = append(c.pending, e)
		case <-timeout:
			c.t.Fatal("no answer within 10 s")
		}
	}
}

func (c *client) send(env nostr.Envelope) {
	c.t.Helper()
	b, err := env.MarshalJSON()
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.WriteMessage(ctx, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) okFor(id string) string {
	c.t.Helper()
	e := c.next(func(e nostr.Envelope) bool { ok, is := e.(*nostr.OKEnvelope); return is && ok.EventID == id })
	ok := e.(*nostr.OKEnvelope)
	if ok.OK {
		return ""
	}
	if ok.Reason == "" {
		return "refused without reason"
	}
	return ok.Reason
}

// auth answers the challenge as k; "" when accepted.
func (c *client) auth(k key) string {
	c.t.Helper()
	ev := nip42.CreateUnsignedAuthEvent(c.challenge, k.pk, c.url)
	if err := ev.Sign(k.sk); err != nil {
		c.t.Fatal(err)
	}
	c.send(&nostr.AuthEnvelope{Event: ev})
	return c.okFor(ev.ID)
}

// publish returns "" when the relay accepted ev, else its OK reason.
func (c *client) publish(ev nostr.Event) string {
	c.t.Helper()
	c.send(&nostr.EventEnvelope{Event: ev})
	return c.okFor(ev.ID)
}

// subscribe sends a REQ and returns its id.
func (c *client) subscribe(f nostr.Filter) string {
	c.subs++
	id := "s" + strconv.Itoa(c.subs)
	c.send(&nostr.ReqEnvelope{SubscriptionID: id, Filters: nostr.Filters{f}})
	return id
}

// query runs one REQ to EOSE or CLOSED and returns the stored events and the CLOSED reason.
func (c *client) query(f nostr.Filter) ([]*nostr.Event, string) {
	c.t.Helper()
	id := c.subscribe(f)
	closeEnv := nostr.CloseEnvelope(id)
	defer c.send(&closeEnv)
	var evs []*nostr.Event
	for {
		e := c.next(func(e nostr.Envelope) bool {
			switch e := e.(type) {
			case *nostr.EventEnvelope:
				return e.SubscriptionID != nil && *e.SubscriptionID == id
			case *nostr.EOSEEnvelope:
				return string(*e) == id
			case *nostr.ClosedEnvelope:
				return e.SubscriptionID == id
			}
			return false
		})
		switch e := e.(type) {
		case *nostr.EventEnvelope:
			ev := e.Event
			evs = append(evs, &ev)
		case *nostr.EOSEEnvelope:
			return evs, ""
		case *nostr.ClosedEnvelope:
			return evs, e.Reason
		}
	}
}

// subscribeLive sends a REQ, waits for its EOSE (failing on CLOSED) and returns its id;
// stored events before EOSE are dropped.
func (c *client) subscribeLive(f nostr.Filter) string {
	c.t.Helper()
	id := c.subscribe(f)
	for {
		e := c.next(func(e nostr.Envelope) bool {
			switch e := e.(type) {
			case *nostr.EventEnvelope:
				return e.SubscriptionID != nil && *e.SubscriptionID == id
			case *nostr.EOSEEnvelope:
				return string(*e) == id
			case *nostr.ClosedEnvelope:
				return e.SubscriptionID == id
			}
			return false
		})
		switch e := e.(type) {
		case *nostr.EOSEEnvelope:
			return id
		case *nostr.ClosedEnvelope:
			c.t.Fatalf("subscription refused: %s", e.Reason)
		}
	}
}

// live waits for the next EVENT of subscription id (or its CLOSED, returned as reason).
func (c *client) live(id string) (*nostr.Event, string) {
	c.t.Helper()
	e := c.next(func(e nostr.Envelope) bool {
		switch e := e.(type) {
		case *nostr.EventEnvelope:
			return e.SubscriptionID != nil && *e.SubscriptionID == id
		case *nostr.ClosedEnvelope:
			return e.SubscriptionID == id
		}
		return false
	})
	if ev, ok := e.(*nostr.EventEnvelope); ok {
		return &ev.Event, ""
	}
	return nil, e.(*nostr.ClosedEnvelope).Reason
}

// giftWrap makes a real NIP-59 wrap of a small rumor from sender to recipient.
func giftWrap(t testing.TB, sender key, recipient string) nostr.Event {
	t.Helper()
	rumor := nostr.Event{Kind: 7704, PubKey: sender.pk, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", recipient}, {"powdo-v", "1"}}}
	rumor.ID = rumor.GetID()
	ck, err := nip44.GenerateConversationKey(recipient, sender.sk)
	if err != nil {
		t.Fatal(err)
	}
	w, err := nip59.GiftWrap(rumor, recipient,
		func(s string) (string, error) { return nip44.Encrypt(s, ck) },
		func(e *nostr.Event) error { return e.Sign(sender.sk) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// token is a BUD-11 Authorization header (pow.do/shared/blossom encodes it).
func token(t testing.TB, k key, verb string, hashes ...string) string {
	t.Helper()
	ev, err := blossom.NewToken(k.sk, verb, hashes, 5*time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	return blossom.AuthHeader(ev)
}

type answer struct {
	status int
	reason string
	body   []byte
	header http.Header
}

func do(t testing.TB, method, url, auth string, body []byte, hdr map[string]string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("X-Reason"), b, resp.Header}
}

// upload PUTs data as k (no token when k is nil) and returns the answer.
func upload(t testing.TB, s *Server, k *key, data []byte) answer {
	t.Helper()
	auth := ""
	if k != nil {
		auth = token(t, *k, "upload", sha(data))
	}
	return do(t, http.MethodPut, s.URL()+"/upload", auth, data, map[string]string{"X-SHA-256": sha(data), "Content-Type": "application/octet-stream"})
}

// manage makes a NIP-86 call signed with NIP-98 by k (unsigned when k is nil).
func manage(t testing.TB, s *Server, k *key, method string, params ...any) (int, nostr.Event, string, any) {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/nostr+json+rpc")
	var ev nostr.Event
	if k != nil {
		ev = nip98(t, *k, s.URL()+"/", body)
		js, _ := json.Marshal(ev)
		req.Header.Set("Authorization", "Nostr "+base64.StdEncoding.EncodeToString(js))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result any    `json:"result"`
		Error  string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", method, err)
	}
	return resp.StatusCode, ev, out.Error, out.Result
}

func nip98(t testing.TB, k key, url string, body []byte) nostr.Event {
	t.Helper()
	ev := nostr.Event{Kind: 27235, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"u", url}, {"method", "POST"}, {"payload", sha(body)}}}
	if err := ev.Sign(k.sk); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (a answer) String() string {
	return fmt.Sprintf("%d %q", a.status, a.reason)
}
