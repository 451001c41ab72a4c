package relayconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nbd-wtf/go-nostr"
)

func TestRefusalPrefix(t *testing.T) {
	cases := []struct {
		reason     string
		prefix     string
		notAllowed bool
	}{
		{"restricted: your key is not on this relay's whitelist", "restricted", true},
		{"blocked: your key is banned from this relay", "blocked", true},
		{"auth-required: publishing requires NIP-42 authentication", "auth-required", false},
		{"rate-limited: slow down", "rate-limited", false},
		{"no prefix here", "", false},
		{"two words: not a prefix", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		r := refusal("EVENT", c.reason)
		if r.Prefix != c.prefix || r.NotAllowed() != c.notAllowed {
			t.Fatalf("%q: prefix %q notAllowed %v", c.reason, r.Prefix, r.NotAllowed())
		}
		wrapped := fmt.Errorf("publish: %w", r)
		if IsNotAllowed(wrapped) != c.notAllowed {
			t.Fatalf("%q: IsNotAllowed through wrapping", c.reason)
		}
	}
	if IsNotAllowed(errors.New("restricted: plain error")) {
		t.Fatal("a plain error is not a refusal")
	}
}

// A hostile relay's reason reaches logs and the UI only cleaned and clipped.
func TestRefusalReasonCleaned(t *testing.T) {
	r := refusal("EVENT", "blocked: \x1b[31mred\x1b[0m\n\xff"+strings.Repeat("é", 300))
	if !utf8.ValidString(r.Reason) || strings.ContainsAny(r.Reason, "\x1b\n") {
		t.Fatalf("reason not cleaned: %q", r.Reason)
	}
	if len(r.Reason) > 210 || !strings.HasSuffix(r.Reason, "…") {
		t.Fatalf("reason not clipped: %d bytes", len(r.Reason))
	}
	if r.Prefix != "blocked" {
		t.Fatalf("prefix %q", r.Prefix)
	}
}

// An allowed key AUTHs, publishes (a duplicate counts as success), lists stored events up
// to EOSE and then gets live ones.
func TestAuthPublishSubscribe(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newKey(), newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk, bob.pk}})
	c := dial(t, ctx, relay.URL, alice.sk, Options{})
	if !c.Authed() {
		t.Fatal("not authenticated after Dial")
	}
	if ch, err := c.Challenge(ctx); err != nil || ch == "" {
		t.Fatalf("challenge %q, %v", ch, err)
	}
	stored := []nostr.Event{note(t, alice, "one"), note(t, alice, "two")}
	for _, ev := range stored {
		if err := c.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, stored[0]); err != nil {
		t.Fatalf("republishing: %v", err)
	}
	if relay.duplicates() != 1 {
		t.Fatalf("relay saw %d duplicates, want 1", relay.duplicates())
	}

	sub, err := c.Subscribe(ctx, "notes", nostr.Filter{Kinds: []int{1}, Authors: []string{alice.pk}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sub.ID, "notes:") {
		t.Fatalf("subscription id %q", sub.ID)
	}
	got := map[string]bool{}
	for {
		ev, eose := next(t, ctx, sub)
		if eose {
			break
		}
		got[ev.ID] = true
	}
	if len(got) != 2 || !got[stored[0].ID] || !got[stored[1].ID] {
		t.Fatalf("stored events listed: %v", got)
	}

	// A live event published by someone else arrives after EOSE.
	other := dial(t, ctx, relay.URL, bob.sk, Options{})
	live := note(t, alice, "three")
	if err := other.Publish(ctx, live); err != nil {
		t.Fatal(err)
	}
	if ev, eose := next(t, ctx, sub); eose || ev.ID != live.ID || !ev.CheckID() {
		t.Fatalf("live: eose %v event %+v", eose, ev)
	}

	// After Close the subscription says so and the connection stays usable.
	sub.Close()
	if _, _, err := sub.Next(ctx); !errors.Is(err, ErrUnsubscribed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := c.Publish(ctx, note(t, alice, "four")); err != nil {
		t.Fatalf("publish after closing a subscription: %v", err)
	}
}

// A key the relay does not allow gets Refusals that say so, on EVENT and on REQ; a relay
// closing a REQ for another reason is a Refusal too, but not "not allowed".
func TestRefusals(t *testing.T) {
	ctx := testCtx(t)
	alice, mallory := newKey(), newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk}})
	c := dial(t, ctx, relay.URL, mallory.sk, Options{})

	err := c.Publish(ctx, note(t, mallory, "hi"))
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Op != "EVENT" || rf.Prefix != "restricted" || !IsNotAllowed(err) {
		t.Fatalf("publish by a key not allowed: %v", err)
	}
	if !strings.Contains(err.Error(), relay.URL) {
		t.Fatalf("error does not name the relay: %v", err)
	}

	sub, err := c.Subscribe(ctx, "x", nostr.Filter{Kinds: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = sub.Next(ctx)
	if !errors.As(err, &rf) || rf.Op != "REQ" || !IsNotAllowed(err) {
		t.Fatalf("REQ by a key not allowed: %v", err)
	}

	good := dial(t, ctx, relay.URL, alice.sk, Options{})
	sub, err = good.Subscribe(ctx, "dm", nostr.Filter{Kinds: []int{4}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = sub.Next(ctx)
	if !errors.As(err, &rf) || rf.Op != "REQ" || rf.Prefix != "blocked" || !strings.Contains(rf.Reason, "kind 4") {
		t.Fatalf("CLOSED: %v", err)
	}
	// The connection outlives a closed subscription.
	if err := good.Publish(ctx, note(t, alice, "still here")); err != nil {
		t.Fatal(err)
	}
}

// Without a key, Dial only connects; the relay's refusal asks for AUTH.
func TestNoKey(t *testing.T) {
	ctx := testCtx(t)
	alice := newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk}})
	c := dial(t, ctx, relay.URL, "", Options{})
	if c.Authed() {
		t.Fatal("authenticated without a key")
	}
	err := c.Publish(ctx, note(t, alice, "hi"))
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Prefix != "auth-required" || rf.NotAllowed() {
		t.Fatalf("publish without AUTH: %v", err)
	}
	if err := c.Auth(ctx); err == nil {
		t.Fatal("Auth without a key succeeded")
	}
	if _, err := Dial(ctx, relay.URL, "not a key", Options{}); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("bad key: %v", err)
	}
}

// A relay that sends no challenge: RequireAuth fails, otherwise Dial goes on.
func TestNoChallenge(t *testing.T) {
	ctx := testCtx(t)
	alice := newKey()
	relay := startRelay(t, relayConfig{})
	if _, err := Dial(ctx, relay.URL, alice.sk, Options{RequireAuth: true, AuthWait: 200 * time.Millisecond, Logger: quiet()}); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("RequireAuth without a challenge: %v", err)
	}
	c := dial(t, ctx, relay.URL, alice.sk, Options{AuthWait: 200 * time.Millisecond})
	if c.Authed() {
		t.Fatal("authenticated without a challenge")
	}
	if err := c.Publish(ctx, note(t, alice, "open relay")); err != nil {
		t.Fatal(err)
	}
}

// Events pile up in a subscription nobody reads, yet OKs still arrive: the reader never
// waits for a consumer. Then every event is there, once.
func TestSlowConsumerDoesNotBlockOK(t *testing.T) {
	ctx := testCtx(t)
	alice := newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk}})
	c := dial(t, ctx, relay.URL, alice.sk, Options{OKWait: 5 * time.Second})
	sub, err := c.Subscribe(ctx, "live", nostr.Filter{Kinds: []int{1}, Authors: []string{alice.pk}})
	if err != nil {
		t.Fatal(err)
	}
	if _, eose := next(t, ctx, sub); !eose {
		t.Fatal("want EOSE first on an empty relay")
	}
	const writers, each = 4, 50
	batches := make([][]nostr.Event, writers)
	for w := range batches {
		for i := range each {
			batches[w] = append(batches[w], note(t, alice, fmt.Sprintf("w%d-%d", w, i)))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for _, batch := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range batch {
				if err := c.Publish(ctx, ev); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish while the subscription is unread: %v", err)
	}
	seen := map[string]bool{}
	for range writers * each {
		ev, eose := next(t, ctx, sub)
		if eose || seen[ev.ID] {
			t.Fatalf("eose %v or repeated event", eose)
		}
		seen[ev.ID] = true
	}
}

// A consumer more than MaxQueue behind loses the connection, and learns why after
// reading what was queued.
func TestQueueOverflowEndsConnection(t *testing.T) {
	ctx := testCtx(t)
	alice := newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk}})
	const max = 5
	c := dial(t, ctx, relay.URL, alice.sk, Options{MaxQueue: max})
	sub, err := c.Subscribe(ctx, "live", nostr.Filter{Kinds: []int{1}, Authors: []string{alice.pk}, Since: ptr(nostr.Now())})
	if err != nil {
		t.Fatal(err)
	}
	pub := dial(t, ctx, relay.URL, alice.sk, Options{})
	for i := range max + 1 {
		if err := pub.Publish(ctx, note(t, alice, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection survived an overflowing subscription")
	}
	if !errors.Is(c.Err(), ErrFellBehind) {
		t.Fatalf("connection ended with %v", c.Err())
	}
	n := 0
	for {
		ev, eose, err := sub.Next(ctx)
		if err != nil {
			if !errors.Is(err, ErrFellBehind) {
				t.Fatalf("subscription ended with %v", err)
			}
			break
		}
		if !eose && ev != nil {
			n++
		}
	}
	if n != max {
		t.Fatalf("read %d queued events, want %d", n, max)
	}
	if err := c.Publish(ctx, note(t, alice, "late")); err == nil {
		t.Fatal("publish on an ended connection succeeded")
	}
	if _, err := c.Subscribe(ctx, "late", nostr.Filter{}); err == nil {
		t.Fatal("subscribe on an ended connection succeeded")
	}
}

// When the relay goes away, subscriptions end with the connection's error (not a
// Refusal) and Done closes.
func TestRelayGoesAway(t *testing.T) {
	ctx := testCtx(t)
	alice := newKey()
	relay := startRelay(t, relayConfig{challenge: true, allow: []string{alice.pk}})
	c := dial(t, ctx, relay.URL, alice.sk, Options{})
	sub, err := c.Subscribe(ctx, "x", nostr.Filter{Kinds: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, eose := next(t, ctx, sub); !eose {
		t.Fatal("want EOSE")
	}
	relay.conns.killAll()
	_, _, err = sub.Next(ctx)
	var rf *Refusal
	if err == nil || errors.As(err, &rf) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("subscription end: %v", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	if c.Err() == nil || errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err %v, want the read failure", c.Err())
	}
}

func ptr[T any](v T) *T { return &v }
