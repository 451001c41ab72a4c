package giftwrap

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/shared/proto"
)

type keypair struct{ sk, pub string }

func newKey(t testing.TB) keypair {
	t.Helper()
	sk := nostr.GeneratePrivateKey()
	pub, err := proto.PublicKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return keypair{sk, pub}
}

func fixedKey(t testing.TB, sk string) keypair {
	t.Helper()
	pub, err := proto.PublicKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return keypair{sk, pub}
}

// sampleSegment is a kind-15 message of realistic size: two mirrors, real-looking hashes.
func sampleSegment(t testing.TB, to string) proto.SegmentFile {
	t.Helper()
	s := proto.SegmentFile{
		To:        to,
		Fallbacks: []string{"https://mirror-one.example.org", "https://mirror-two.example.net"},
		Size:      2_418_733,
		Index:     17,
		Start:     time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		End:       time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC),
	}
	rand.Read(s.Key[:])
	rand.Read(s.Nonce[:])
	var sess [16]byte
	rand.Read(sess[:])
	s.Session = hex.EncodeToString(sess[:])
	x, ox := sha256.Sum256(s.Key[:]), sha256.Sum256(s.Nonce[:])
	s.X, s.OX = hex.EncodeToString(x[:]), hex.EncodeToString(ox[:])
	s.URL = "https://blossom.pow.example/" + s.X
	for i := range s.Fallbacks {
		s.Fallbacks[i] += "/" + s.X
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// sealOf builds a seal by hand: content is plaintext encrypted from sealSK to recipient.
// sign=false leaves it for the caller to sign or forge.
func sealOf(t testing.TB, plaintext string, sealSK, recipientPub string, kind int, tags nostr.Tags) nostr.Event {
	t.Helper()
	ck, err := nip44.GenerateConversationKey(recipientPub, sealSK)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := nip44.Encrypt(plaintext, ck)
	if err != nil {
		t.Fatal(err)
	}
	seal := nostr.Event{Kind: kind, CreatedAt: nostr.Now(), Tags: tags, Content: ct}
	if err := seal.Sign(sealSK); err != nil {
		t.Fatal(err)
	}
	return seal
}

// wrapOf wraps any plaintext (normally a seal's JSON) for recipient with a fresh key.
func wrapOf(t testing.TB, plaintext string, recipientPub string, tags nostr.Tags) nostr.Event {
	t.Helper()
	one := nostr.GeneratePrivateKey()
	ck, err := nip44.GenerateConversationKey(recipientPub, one)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := nip44.Encrypt(plaintext, ck)
	if err != nil {
		t.Fatal(err)
	}
	if tags == nil {
		tags = nostr.Tags{{"p", recipientPub}}
	}
	w := nostr.Event{Kind: 1059, CreatedAt: nostr.Now(), Tags: tags, Content: ct}
	if err := w.Sign(one); err != nil {
		t.Fatal(err)
	}
	return w
}
