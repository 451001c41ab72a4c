package giftwrap

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"
	"github.com/nbd-wtf/go-nostr/nip59"

	"pow.do/shared/proto"
)

func TestWrapUnwrapRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	seg := sampleSegment(t, dvm.pub)
	rumor := seg.Rumor(worker.pub)

	wrap, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		t.Fatal(err)
	}
	// The wrap as PROTOCOL.md section 1 describes it.
	if wrap.Kind != 1059 {
		t.Fatalf("wrap kind %d", wrap.Kind)
	}
	if !reflect.DeepEqual(wrap.Tags, nostr.Tags{{"p", dvm.pub}}) {
		t.Fatalf("wrap tags %v, want exactly one p tag", wrap.Tags)
	}
	if wrap.PubKey == worker.pub || wrap.PubKey == dvm.pub {
		t.Fatal("wrap signed by a real key instead of a one-time key")
	}
	if ok, _ := wrap.CheckSignature(); !ok || !wrap.CheckID() {
		t.Fatal("wrap signature or id invalid")
	}
	if strings.Contains(wrap.String(), seg.X) || strings.Contains(wrap.String(), worker.pub) {
		t.Fatal("wrap leaks rumor content or the sender")
	}
	// The seal inside: kind 13, no tags, signed by the worker.
	ck, _ := nip44.GenerateConversationKey(wrap.PubKey, dvm.sk)
	sealJSON, err := nip44.Decrypt(wrap.Content, ck)
	if err != nil {
		t.Fatal(err)
	}
	var seal nostr.Event
	if err := json.Unmarshal([]byte(sealJSON), &seal); err != nil {
		t.Fatal(err)
	}
	if seal.Kind != 13 || len(seal.Tags) != 0 || seal.PubKey != worker.pub {
		t.Fatalf("seal kind %d tags %v pubkey %s", seal.Kind, seal.Tags, seal.PubKey)
	}
	if ok, _ := seal.CheckSignature(); !ok {
		t.Fatal("seal signature invalid")
	}

	got, sender, err := Unwrap(wrap, dvm.sk)
	if err != nil {
		t.Fatal(err)
	}
	if sender != worker.pub {
		t.Fatalf("sender %s, want %s", sender, worker.pub)
	}
	if !reflect.DeepEqual(got, rumor) {
		t.Fatalf("rumor changed in transit\n got %v\nwant %v", got, rumor)
	}
	parsed, err := proto.ParseSegmentFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed, seg) {
		t.Fatalf("parsed %+v, want %+v", parsed, seg)
	}
	// Only the recipient can open it.
	if _, _, err := Unwrap(wrap, worker.sk); !errors.Is(err, ErrWrongRecipient) {
		t.Fatalf("the sender opened the wrap: %v", err)
	}
}

func TestWrapFillsPubkeyAndID(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	rumor := nostr.Event{Kind: proto.KindCatalogueRequest, CreatedAt: nostr.Now(),
		Tags: nostr.Tags{{"p", dvm.pub}, {"powdo-v", "1"}}}
	wrap, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		t.Fatal(err)
	}
	got, sender, err := Unwrap(wrap, dvm.sk)
	if err != nil {
		t.Fatal(err)
	}
	if sender != worker.pub || got.PubKey != worker.pub || !got.CheckID() {
		t.Fatalf("rumor %v from %s", got, sender)
	}
}

// Wraps are backdated up to two days (NIP-59), not nip59.GiftWrap's six hours.
func TestWrapCreatedAtRandomisedOverTwoDays(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	rumor := proto.CatalogueRequest{To: dvm.pub}.Rumor(worker.pub)
	const n = 40
	var older6h int
	seen := map[nostr.Timestamp]bool{}
	for range n {
		before := nostr.Now()
		w, err := Wrap(rumor, worker.sk, dvm.pub)
		if err != nil {
			t.Fatal(err)
		}
		age := before - w.CreatedAt
		if age < 0-1 || age > 2*24*3600 {
			t.Fatalf("created_at %d is %d s before now, outside 0..2 days", w.CreatedAt, age)
		}
		if age > 6*3600 {
			older6h++
		}
		seen[w.CreatedAt] = true
	}
	// With a uniform draw over 48 h, all 40 landing in the last 6 h has probability 8^-40.
	if older6h == 0 {
		t.Fatal("no wrap backdated more than 6 hours: the two-day randomisation is not applied")
	}
	if len(seen) < n/2 {
		t.Fatalf("only %d distinct created_at values in %d wraps", len(seen), n)
	}
}

var sentinels = []error{ErrNotWrap, ErrBadWrapSig, ErrWrongRecipient, ErrDecrypt, ErrNotSeal, ErrBadSealSig, ErrPubkeyMismatch, ErrBadRumor, ErrBadKey, ErrTooLarge}

func TestUnwrapRefusals(t *testing.T) {
	worker, dvm, mallory, other := newKey(t), newKey(t), newKey(t), newKey(t)
	seg := sampleSegment(t, dvm.pub)
	rumor := seg.Rumor(worker.pub)
	good, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		t.Fatal(err)
	}
	// resign re-signs a modified wrap with a fresh one-time key, keeping its content: the
	// outer check then passes and the inner one is what is tested.
	resign := func(w nostr.Event) nostr.Event {
		if err := w.Sign(nostr.GeneratePrivateKey()); err != nil {
			t.Fatal(err)
		}
		return w
	}
	rumorJSON := rumor.String()

	cases := []struct {
		name string
		wrap nostr.Event
		sk   string
		want error
	}{
		{"not a wrap", func() nostr.Event { w := good; w.Kind = 1; return w }(), dvm.sk, ErrNotWrap},
		{"wrap signature flipped", func() nostr.Event {
			w := good
			w.Sig = flip(w.Sig)
			return w
		}(), dvm.sk, ErrBadWrapSig},
		{"wrap content changed", func() nostr.Event { w := good; w.Content = flip(w.Content); return w }(), dvm.sk, ErrBadWrapSig},
		{"wrap created_at changed", func() nostr.Event { w := good; w.CreatedAt--; return w }(), dvm.sk, ErrBadWrapSig},
		{"wrap p retargeted without re-signing", func() nostr.Event {
			w := good
			w.Tags = nostr.Tags{{"p", other.pub}}
			return w
		}(), dvm.sk, ErrBadWrapSig},
		{"wrap pubkey uppercase", func() nostr.Event { w := good; w.PubKey = strings.ToUpper(w.PubKey); return w }(), dvm.sk, ErrBadWrapSig},
		{"wrap for someone else", func() nostr.Event {
			w, err := Wrap(proto.CatalogueRequest{To: other.pub}.Rumor(worker.pub), worker.sk, other.pub)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}(), dvm.sk, ErrWrongRecipient},
		{"wrap with two p tags", func() nostr.Event {
			w := good
			w.Tags = nostr.Tags{{"p", dvm.pub}, {"p", other.pub}}
			return resign(w)
		}(), dvm.sk, ErrWrongRecipient},
		{"wrap without p", func() nostr.Event { w := good; w.Tags = nostr.Tags{}; return resign(w) }(), dvm.sk, ErrWrongRecipient},
		{"rumor addressed to someone else", func() nostr.Event {
			r := proto.CatalogueRequest{To: other.pub}.Rumor(worker.pub)
			seal := sealOf(t, r.String(), worker.sk, dvm.pub, 13, nostr.Tags{})
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrWrongRecipient},
		{"wrap content garbage", func() nostr.Event {
			w := good
			w.Content = strings.Repeat("A", 200)
			return resign(w)
		}(), dvm.sk, ErrDecrypt},
		{"wrap encrypted to another key", func() nostr.Event {
			w := wrapOf(t, "{}", other.pub, nostr.Tags{{"p", dvm.pub}})
			return w
		}(), dvm.sk, ErrDecrypt},
		{"seal not JSON", wrapOf(t, "hello", dvm.pub, nil), dvm.sk, ErrNotSeal},
		{"seal of kind 14", wrapOf(t, sealOf(t, rumorJSON, worker.sk, dvm.pub, 14, nostr.Tags{}).String(), dvm.pub, nil), dvm.sk, ErrNotSeal},
		{"seal of kind 1059", wrapOf(t, sealOf(t, rumorJSON, worker.sk, dvm.pub, 1059, nostr.Tags{}).String(), dvm.pub, nil), dvm.sk, ErrNotSeal},
		{"seal with tags", wrapOf(t, sealOf(t, rumorJSON, worker.sk, dvm.pub, 13, nostr.Tags{{"p", dvm.pub}}).String(), dvm.pub, nil), dvm.sk, ErrNotSeal},
		{"forged seal claiming the worker", func() nostr.Event {
			// Mallory seals her own rumor but claims the worker's pubkey in the seal.
			r := seg.Rumor(worker.pub)
			seal := sealOf(t, r.String(), mallory.sk, dvm.pub, 13, nostr.Tags{})
			seal.PubKey = worker.pub
			seal.ID = seal.GetID()
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrBadSealSig},
		{"seal signature zeroed", func() nostr.Event {
			seal := sealOf(t, rumorJSON, worker.sk, dvm.pub, 13, nostr.Tags{})
			seal.Sig = strings.Repeat("0", 128)
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrBadSealSig},
		{"seal content garbage", func() nostr.Event {
			seal := nostr.Event{Kind: 13, CreatedAt: nostr.Now(), Tags: nostr.Tags{}, Content: strings.Repeat("B", 200)}
			if err := seal.Sign(worker.sk); err != nil {
				t.Fatal(err)
			}
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrDecrypt},
		{"mismatched pubkeys: mallory seals a rumor in the worker's name", func() nostr.Event {
			r := seg.Rumor(worker.pub) // pubkey = worker, id valid
			seal := sealOf(t, r.String(), mallory.sk, dvm.pub, 13, nostr.Tags{})
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrPubkeyMismatch},
		{"rumor without pubkey", func() nostr.Event {
			r := seg.Rumor("")
			seal := sealOf(t, r.String(), worker.sk, dvm.pub, 13, nostr.Tags{})
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrPubkeyMismatch},
		{"tampered rumor id", func() nostr.Event {
			r := seg.Rumor(worker.pub)
			r.ID = flip(r.ID)
			seal := sealOf(t, r.String(), worker.sk, dvm.pub, 13, nostr.Tags{})
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrBadRumor},
		{"rumor edited after hashing", func() nostr.Event {
			r := seg.Rumor(worker.pub)
			r.Content = "https://evil.example/" + seg.X
			seal := sealOf(t, r.String(), worker.sk, dvm.pub, 13, nostr.Tags{})
			return wrapOf(t, seal.String(), dvm.pub, nil)
		}(), dvm.sk, ErrBadRumor},
		{"rumor not JSON", wrapOf(t, sealOf(t, "[1,2", worker.sk, dvm.pub, 13, nostr.Tags{}).String(), dvm.pub, nil), dvm.sk, ErrBadRumor},
		{"bad recipient key", good, "zz", ErrBadKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, sender, err := Unwrap(c.wrap, c.sk)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			for _, s := range sentinels {
				if s != c.want && errors.Is(err, s) {
					t.Fatalf("err %v also matches %v: the sentinels are not distinct", err, s)
				}
			}
			if sender != "" || r.ID != "" {
				t.Fatalf("a refused wrap still returned rumor %q from %q", r.ID, sender)
			}
			if strings.Contains(err.Error(), dvm.sk) {
				t.Fatal("error repeats the recipient's secret key")
			}
		})
	}
	// The fixture itself is fine, so the refusals come from the mutations.
	if _, _, err := Unwrap(good, dvm.sk); err != nil {
		t.Fatal(err)
	}
}

// The gap this package closes: go-nostr's GiftUnwrap does not check the wrap's signature nor
// the seal's kind; Unwrap refuses such a wrap.
func TestUnwrapCatchesWhatGiftUnwrapMisses(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	rumor := proto.CatalogueRequest{To: dvm.pub}.Rumor(worker.pub)
	w := wrapOf(t, sealOf(t, rumor.String(), worker.sk, dvm.pub, 14, nostr.Tags{}).String(), dvm.pub, nil)
	w.Sig = strings.Repeat("0", 128)
	decrypt := func(pub, ct string) (string, error) {
		ck, err := nip44.GenerateConversationKey(pub, dvm.sk)
		if err != nil {
			return "", err
		}
		return nip44.Decrypt(ct, ck)
	}
	if _, err := nip59.GiftUnwrap(w, decrypt); err != nil {
		t.Logf("go-nostr now refuses this wrap (%v); the extra checks here may be redundant", err)
	}
	if _, _, err := Unwrap(w, dvm.sk); !errors.Is(err, ErrBadWrapSig) {
		t.Fatalf("Unwrap: %v", err)
	}
}

func TestWrapRefusals(t *testing.T) {
	worker, dvm, other := newKey(t), newKey(t), newKey(t)
	rumor := proto.CatalogueRequest{To: dvm.pub}.Rumor(worker.pub)
	for _, c := range []struct {
		name      string
		rumor     nostr.Event
		sk, to    string
		want      error
		notInText string
	}{
		{"sender key malformed", rumor, worker.sk[:63] + "g", dvm.pub, ErrBadKey, worker.sk[:63]},
		{"sender key above curve order", rumor, strings.Repeat("f", 64), dvm.pub, ErrBadKey, strings.Repeat("f", 64)},
		{"recipient not a key", rumor, worker.sk, "dvm", ErrBadKey, worker.sk},
		{"rumor of another pubkey", rumor, other.sk, dvm.pub, ErrBadRumor, other.sk},
		{"stale rumor id", func() nostr.Event { r := rumor; r.Content = "changed"; return r }(), worker.sk, dvm.pub, ErrBadRumor, worker.sk},
		{"rumor not for the recipient", rumor, worker.sk, other.pub, ErrBadRumor, worker.sk},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := Wrap(c.rumor, c.sk, c.to)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if w.ID != "" {
				t.Fatal("a refused wrap was still returned")
			}
			if strings.Contains(err.Error(), c.notInText) {
				t.Fatalf("error repeats secret material: %v", err)
			}
		})
	}
}

// MaxRumorBytes is exactly the largest rumor a wrap can carry: one byte more and the seal
// no longer fits NIP-44's 65535-byte plaintext.
func TestRumorSizeLimit(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	sized := func(n int) nostr.Event {
		r := nostr.Event{PubKey: worker.pub, Kind: proto.KindSegmentFile, CreatedAt: nostr.Now(),
			Tags: nostr.Tags{{"p", dvm.pub}}}
		base := len(r.String()) + len(`,"id":""`) + 64
		r.Content = strings.Repeat("a", n-base)
		r.ID = r.GetID()
		if got := len(r.String()); got != n {
			t.Fatalf("test bug: rumor of %d bytes, want %d", got, n)
		}
		return r
	}
	atLimit := sized(proto.MaxRumorBytes)
	w, err := Wrap(atLimit, worker.sk, dvm.pub)
	if err != nil {
		t.Fatalf("a rumor of exactly MaxRumorBytes: %v", err)
	}
	if got, _, err := Unwrap(w, dvm.sk); err != nil || got.Content != atLimit.Content {
		t.Fatalf("unwrap at the limit: %v", err)
	}
	over := sized(proto.MaxRumorBytes + 1)
	if _, err := Wrap(over, worker.sk, dvm.pub); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: %v, want ErrTooLarge", err)
	}
	// Without our check go-nostr fails too, so the limit is NIP-44's, not a guess.
	ck, _ := nip44.GenerateConversationKey(dvm.pub, worker.sk)
	_, err = nip59.GiftWrap(over, dvm.pub,
		func(s string) (string, error) { return nip44.Encrypt(s, ck) },
		func(e *nostr.Event) error { return e.Sign(worker.sk) }, nil)
	if err == nil {
		t.Fatal("nip59.GiftWrap wrapped a rumor over MaxRumorBytes: the limit is too strict")
	}
}

// Every pow.do message type survives a wrap, each parsed back by its own parser.
func TestEveryMessageKindThroughAWrap(t *testing.T) {
	worker, dvm, invite := newKey(t), newKey(t), newKey(t)
	proof, err := proto.NewInviteProof(invite.sk, dvm.pub, worker.pub)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	type msg struct {
		m        proto.Message
		from, to keypair
	}
	msgs := []msg{
		{sampleSegment(t, dvm.pub), worker, dvm},
		{proto.SessionStart{To: dvm.pub, Session: strings.Repeat("ab", 16), Project: 12, Activity: 5, Start: start, Memo: "Fixing \"login\"\n🦄"}, worker, dvm},
		{proto.SessionStop{To: dvm.pub, Session: strings.Repeat("ab", 16), End: start.Add(time.Hour), Segments: 6}, worker, dvm},
		{proto.Receipt{To: worker.pub, Answers: strings.Repeat("c", 64), Session: strings.Repeat("ab", 16), Index: 4, Status: proto.StatusRejected, Reason: "x mismatch", Permanent: true}, dvm, worker},
		{proto.Catalogue{To: worker.pub, UpdatedAt: start, WorkerName: "Alice", Projects: []proto.Project{{ID: 1, Name: "Web", Customer: "ACME"}}, Policy: proto.DefaultPolicy()}, dvm, worker},
		{proto.CatalogueRequest{To: dvm.pub}, worker, dvm},
		{proto.JoinRequest{To: dvm.pub, Proof: proof, AppVersion: "0.1.0", Host: "laptop"}, worker, dvm},
	}
	for _, c := range msgs {
		if err := c.m.Validate(); err != nil {
			t.Fatalf("%T: %v", c.m, err)
		}
		w, err := Wrap(c.m.Rumor(c.from.pub), c.from.sk, c.to.pub)
		if err != nil {
			t.Fatalf("%T: %v", c.m, err)
		}
		r, sender, err := Unwrap(w, c.to.sk)
		if err != nil || sender != c.from.pub {
			t.Fatalf("%T: unwrap %v from %s", c.m, err, sender)
		}
		got, err := proto.Parse(r)
		if err != nil {
			t.Fatalf("%T: %v", c.m, err)
		}
		if !reflect.DeepEqual(got, c.m) {
			t.Fatalf("%T changed:\n got %+v\nwant %+v", c.m, got, c.m)
		}
	}
}

// flip changes the first character of a hex or base64 string to another valid one.
func flip(s string) string {
	b := []byte(s)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	return string(b)
}
