package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip13"
	"github.com/nbd-wtf/go-nostr/nip42"
)

func allow(t *testing.T, s *Server, keys ...key) {
	t.Helper()
	for _, k := range keys {
		if err := s.Access().Allow("test", k.pk, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// Live broadcast goes only to the wrap's recipient. Ordering makes this deterministic:
// khatru notifies listeners before it answers OK, so if the first wrap (to the DVM) had
// been sent to the worker it would arrive before the second (to the worker).
func TestLiveWrapsReachOnlyTheirRecipient(t *testing.T) {
	s := start(t, "", nil)
	dvm, worker, sender := newKey(t), newKey(t), newKey(t)
	allow(t, s, dvm, worker, sender)
	dc, wc, sc := dial(t, s, &dvm), dial(t, s, &worker), dial(t, s, &sender)

	dSub := dc.subscribeLive(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}})
	wSub := wc.subscribeLive(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {worker.pk}}})
	toDVM, toWorker := giftWrap(t, sender, dvm.pk), giftWrap(t, sender, worker.pk)
	if msg := sc.publish(toDVM); msg != "" {
		t.Fatal(msg)
	}
	if msg := sc.publish(toWorker); msg != "" {
		t.Fatal(msg)
	}
	if ev, reason := dc.live(dSub); ev == nil || ev.ID != toDVM.ID {
		t.Fatalf("DVM got %v (%s), want its wrap", ev, reason)
	}
	if ev, reason := wc.live(wSub); ev == nil || ev.ID != toWorker.ID {
		t.Fatalf("worker's first live event is %v (%s), want its own wrap (not the DVM's)", ev, reason)
	}
}

// A wrap stored while a REQ's stored-events query runs must still reach the subscriber:
// the live listener is registered before the query (relay/third_party/khatru PATCHES.md 3).
// The hook holds the query after it has read the store until the wrap is published.
func TestWrapStoredDuringQueryIsDelivered(t *testing.T) {
	queried, published := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := start(t, "", func(c *Config) {
		c.afterQuery = func(f nostr.Filter) {
			if len(f.Kinds) == 1 && f.Kinds[0] == 1059 {
				once.Do(func() { close(queried); <-published })
			}
		}
	})
	worker, dvm := newKey(t), newKey(t)
	allow(t, s, worker, dvm)
	wc, dc := dial(t, s, &worker), dial(t, s, &dvm)

	id := wc.subscribe(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {worker.pk}}})
	<-queried
	receipt := giftWrap(t, dvm, worker.pk)
	msg := dc.publish(receipt)
	close(published)
	if msg != "" {
		t.Fatal(msg)
	}
	if ev, reason := wc.live(id); ev == nil || ev.ID != receipt.ID {
		t.Fatalf("subscriber got %v (%s), want the wrap stored during its query", ev, reason)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRelayRefusals(t *testing.T) {
	s := start(t, "", func(c *Config) { c.MinPoW = 0 })
	dvm, worker := newKey(t), newKey(t)
	allow(t, s, dvm, worker)
	wc := dial(t, s, &worker)

	note := nostr.Event{Kind: 1, CreatedAt: nostr.Now(), Content: "hello"}
	note.Sign(worker.sk)
	if msg := wc.publish(note); !strings.HasPrefix(msg, "blocked: kind 1") {
		t.Errorf("kind 1: %q", msg)
	}
	two := giftWrap(t, worker, dvm.pk)
	two.Tags = append(two.Tags, nostr.Tag{"p", worker.pk})
	two.Sign(nostr.GeneratePrivateKey())
	if msg := wc.publish(two); !strings.HasPrefix(msg, "invalid: a gift wrap must carry exactly one p") {
		t.Errorf("two p tags: %q", msg)
	}
	old := giftWrap(t, worker, dvm.pk)
	old.CreatedAt = nostr.Now() - 20*86400
	old.Sign(nostr.GeneratePrivateKey())
	if msg := wc.publish(old); !strings.HasPrefix(msg, "invalid: created_at is older") {
		t.Errorf("20-day-old wrap: %q", msg)
	}
	future := giftWrap(t, worker, dvm.pk)
	future.CreatedAt = nostr.Now() + 3600
	future.Sign(nostr.GeneratePrivateKey())
	if msg := wc.publish(future); !strings.HasPrefix(msg, "invalid: created_at is in the future") {
		t.Errorf("future wrap: %q", msg)
	}
	big := giftWrap(t, worker, dvm.pk)
	big.Content = strings.Repeat("A", s.cfg.MaxEventBytes)
	big.Sign(nostr.GeneratePrivateKey())
	if msg := wc.publish(big); !strings.HasPrefix(msg, "invalid: too big") {
		t.Errorf("oversized wrap: %q", msg)
	}
	// A REQ with limit 0 must not slip past the filter checks to the live listeners.
	for _, c := range []struct {
		cl   *client
		want string
	}{{dial(t, s, nil), "auth-required:"}, {wc, "restricted:"}} {
		_, reason := c.cl.query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}, LimitZero: true})
		if !strings.HasPrefix(reason, c.want) {
			t.Errorf("limit-0 REQ: CLOSED %q, want %s", reason, c.want)
		}
	}
	if _, reason := wc.query(nostr.Filter{Kinds: []int{1059}}); !strings.HasPrefix(reason, "restricted:") {
		t.Errorf("REQ for all wraps: %q", reason)
	}
	if _, reason := wc.query(nostr.Filter{Authors: []string{worker.pk}}); !strings.HasPrefix(reason, "restricted: name the kinds") {
		t.Errorf("REQ without kinds: %q", reason)
	}
	// Still serving.
	if msg := wc.publish(giftWrap(t, worker, dvm.pk)); msg != "" {
		t.Fatalf("a good wrap after the refusals: %q", msg)
	}
}

func TestProofOfWorkAndRateLimitAndConnLimit(t *testing.T) {
	s := start(t, "", func(c *Config) {
		c.MinPoW = 6
		c.EventsPerMinutePubkey = 3
		c.MaxConnsPerIP = 3
	})
	dvm, worker := newKey(t), newKey(t)
	allow(t, s, dvm, worker)
	wc := dial(t, s, &worker)
	plain := giftWrap(t, worker, dvm.pk)
	if nip13.Difficulty(plain.ID) >= 6 {
		t.Skip("the random wrap id happens to carry the proof of work") // 1 in 64
	}
	if msg := wc.publish(plain); !strings.HasPrefix(msg, "pow: difficulty") {
		t.Errorf("wrap without PoW: %q", msg)
	}
	mined := func() nostr.Event {
		w := giftWrap(t, worker, dvm.pk)
		// Re-sign under a one-time key known before mining: the id covers the pubkey.
		otk := newKey(t)
		w.PubKey = otk.pk
		tag, err := nip13.DoWork(t.Context(), w, 6)
		if err != nil {
			t.Fatal(err)
		}
		w.Tags = append(w.Tags, tag)
		if err := w.Sign(otk.sk); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if msg := wc.publish(mined()); msg != "" {
		t.Errorf("wrap with PoW 6: %q", msg)
	}
	if msg := wc.publish(mined()); msg != "" {
		t.Errorf("third event in the minute: %q", msg)
	}
	// The budget of 3 per minute is spent (the refused wrap counted too).
	if msg := wc.publish(mined()); !strings.HasPrefix(msg, "rate-limited:") {
		t.Errorf("over the rate: %q", msg)
	}
	// Connections: wc is open and the limit is 3: two more are fine, then 429.
	dial(t, s, nil)
	dial(t, s, nil)
	if _, err := tryDial(t, s.wsURL()); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("4th connection from one IP: %v, want a 429 refusal", err)
	}
	// Closing one frees a slot.
	wc.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.conns.count() >= 3 {
		if time.Now().After(deadline) {
			t.Fatal("closed connection not released")
		}
		time.Sleep(10 * time.Millisecond) // polling a real condition with a deadline
	}
	dial(t, s, nil)
}

func TestRecipientDeletesWrapsAndVanishes(t *testing.T) {
	s := start(t, "", nil)
	dvm, worker := newKey(t), newKey(t)
	allow(t, s, dvm, worker)
	dc, wc := dial(t, s, &dvm), dial(t, s, &worker)
	w1, w2, w3 := giftWrap(t, worker, dvm.pk), giftWrap(t, worker, dvm.pk), giftWrap(t, worker, dvm.pk)
	for _, w := range []nostr.Event{w1, w2, w3} {
		if msg := wc.publish(w); msg != "" {
			t.Fatal(msg)
		}
	}
	del := func(by key, ids ...string) nostr.Event {
		ev := nostr.Event{Kind: 5, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"k", "1059"}}}
		for _, id := range ids {
			ev.Tags = append(ev.Tags, nostr.Tag{"e", id})
		}
		ev.Sign(by.sk)
		return ev
	}
	if evs, _ := dc.query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}, Limit: 2}); len(evs) != 2 {
		t.Fatalf("limit 2 returned %d wraps", len(evs))
	}
	// The sender (AUTHed worker) is not the wrap's author (a one-time key) nor its recipient.
	if msg := wc.publish(del(worker, w1.ID)); !strings.Contains(msg, "restricted: you may delete only wraps addressed to you") {
		t.Errorf("worker deleting the DVM's wrap: %q", msg)
	}
	// A deletion signed by the DVM but sent over the worker's connection is refused too.
	if msg := wc.publish(del(dvm, w1.ID)); !strings.Contains(msg, "must be signed by the authenticated key") {
		t.Errorf("DVM's deletion relayed by the worker: %q", msg)
	}
	// Anonymous deletion.
	if msg := dial(t, s, nil).publish(del(dvm, w1.ID)); !strings.Contains(msg, "auth-required") {
		t.Errorf("anonymous deletion: %q", msg)
	}
	if msg := dc.publish(del(dvm, w1.ID)); msg != "" {
		t.Fatalf("recipient deleting its wrap: %q", msg)
	}
	evs, _ := dc.query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}})
	if len(evs) != 2 {
		t.Fatalf("%d wraps left after deleting one of 3", len(evs))
	}
	for _, ev := range evs {
		if ev.ID == w1.ID {
			t.Fatal("the deleted wrap is still served")
		}
	}
	if msg := wc.publish(w1); !strings.HasPrefix(msg, "blocked: this wrap was deleted") {
		t.Errorf("republishing a deleted wrap: %q", msg)
	}
	// The DVM can read its own deletion request; the worker cannot.
	if evs, _ := dc.query(nostr.Filter{Kinds: []int{5}, Authors: []string{dvm.pk}}); len(evs) != 1 {
		t.Errorf("DVM reads %d of its deletion requests", len(evs))
	}
	if _, reason := wc.query(nostr.Filter{Kinds: []int{5}, Authors: []string{dvm.pk}}); !strings.HasPrefix(reason, "restricted:") {
		t.Errorf("worker reading the DVM's deletions: %q", reason)
	}
	// NIP-62: vanish removes every remaining wrap addressed to the DVM.
	vanish := nostr.Event{Kind: 62, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"relay", s.wsURL()}}}
	vanish.Sign(dvm.sk)
	if msg := dc.publish(vanish); msg != "" {
		t.Fatalf("vanish: %q", msg)
	}
	if evs, _ := dc.query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}}); len(evs) != 0 {
		t.Fatalf("%d wraps left after vanish", len(evs))
	}
	elsewhere := nostr.Event{Kind: 62, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"relay", "wss://other.example"}}}
	elsewhere.Sign(dvm.sk)
	if msg := dc.publish(elsewhere); !strings.HasPrefix(msg, "invalid: a request to vanish") {
		t.Errorf("vanish for another relay: %q", msg)
	}
}

func TestServiceURLAndNIP11(t *testing.T) {
	s := start(t, "", func(c *Config) { c.PublicURL = "https://relay.example.com"; c.Name = "test relay" })
	k := newKey(t)
	allow(t, s, k)
	c := dial(t, s, nil)
	// AUTH naming the local address fails: the relay is reached through its public URL.
	if msg := c.auth(k); msg == "" {
		t.Fatal("AUTH with the local URL accepted although a public URL is configured")
	}
	ev := nip42.CreateUnsignedAuthEvent(c.challenge, k.pk, "wss://relay.example.com")
	ev.Sign(k.sk)
	c.send(&nostr.AuthEnvelope{Event: ev})
	if msg := c.okFor(ev.ID); msg != "" {
		t.Fatalf("AUTH with the public URL: %s", msg)
	}
	a := do(t, http.MethodGet, s.URL()+"/", "", nil, map[string]string{"Accept": "application/nostr+json"})
	var info struct {
		Name          string `json:"name"`
		SupportedNIPs []int  `json:"supported_nips"`
		Limitation    struct {
			AuthRequired     bool `json:"auth_required"`
			RestrictedWrites bool `json:"restricted_writes"`
			MaxMessageLength int  `json:"max_message_length"`
		} `json:"limitation"`
	}
	if err := json.Unmarshal(a.body, &info); err != nil || a.status != 200 {
		t.Fatalf("NIP-11: %v %s", err, a.body)
	}
	has := func(n int) bool {
		for _, x := range info.SupportedNIPs {
			if x == n {
				return true
			}
		}
		return false
	}
	if info.Name != "test relay" || !info.Limitation.AuthRequired || !info.Limitation.RestrictedWrites ||
		info.Limitation.MaxMessageLength != s.cfg.MaxEventBytes || !has(42) || !has(59) || !has(86) {
		t.Fatalf("NIP-11 document: %+v", info)
	}
	if a.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("NIP-11 without CORS")
	}
	// Blob descriptors use the public URL too.
	data := randomBytes(t, 100)
	up := do(t, http.MethodPut, s.URL()+"/upload", token(t, k, "upload", sha(data)), data, map[string]string{"X-SHA-256": sha(data)})
	var d descriptor
	json.Unmarshal(up.body, &d)
	if up.status != 201 || d.URL != "https://relay.example.com/"+sha(data) {
		t.Fatalf("descriptor with a public URL: %v %s", up, up.body)
	}
}
