// Package giftwrap seals pow.do rumors into NIP-59 gift wraps and opens them again with
// every check PROTOCOL.md section 1 demands, including those go-nostr's nip59.GiftUnwrap
// leaves out (seal kind, wrap signature, rumor pubkey = seal pubkey, rumor id, recipient).
package giftwrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"
	"github.com/nbd-wtf/go-nostr/nip59"

	"pow.do/shared/proto"
)

// Refusals of Unwrap, one per check, for errors.Is.
var (
	ErrNotWrap        = errors.New("not a gift wrap (kind 1059)")
	ErrBadWrapSig     = errors.New("gift wrap id or signature invalid")
	ErrWrongRecipient = errors.New("not addressed to us")
	ErrDecrypt        = errors.New("cannot decrypt")
	ErrNotSeal        = errors.New("not a seal (kind 13 without tags)")
	ErrBadSealSig     = errors.New("seal id or signature invalid")
	ErrPubkeyMismatch = errors.New("rumor pubkey differs from seal pubkey")
	ErrBadRumor       = errors.New("malformed rumor")
)

// Errors of Wrap.
var (
	ErrTooLarge = fmt.Errorf("rumor larger than %d bytes of JSON", proto.MaxRumorBytes)
	ErrBadKey   = errors.New("invalid key")
)

// maxBackdate is how far into the past a wrap's created_at is randomised (NIP-59).
const maxBackdate = 2 * 24 * 60 * 60

// Wrap seals rumor with the sender's key (kind 13, NIP-44 to the recipient) and wraps the
// seal with a fresh one-time key (kind 1059, created_at up to two days in the past, one p
// tag). The rumor's pubkey is set to the sender's if empty and its id computed if empty;
// a rumor that names another pubkey, has a stale id, or lacks a p tag for the recipient
// is refused, because the recipient would refuse it.
func Wrap(rumor nostr.Event, senderSK string, recipientPub string) (nostr.Event, error) {
	senderPub, err := proto.PublicKey(senderSK)
	if err != nil {
		return nostr.Event{}, fmt.Errorf("wrap: sender %w: %w", err, ErrBadKey)
	}
	if !proto.ValidPubkey(recipientPub) {
		return nostr.Event{}, fmt.Errorf("wrap: recipient %q: %w", clip(recipientPub), ErrBadKey)
	}
	switch rumor.PubKey {
	case "":
		rumor.PubKey = senderPub
	case senderPub:
	default:
		return nostr.Event{}, fmt.Errorf("wrap kind %d: rumor pubkey %q is not the sender %s: %w", rumor.Kind, clip(rumor.PubKey), senderPub, ErrBadRumor)
	}
	rumor.Sig = ""
	if rumor.Tags == nil {
		rumor.Tags = nostr.Tags{}
	}
	if rumor.ID == "" {
		rumor.ID = rumor.GetID()
	} else if !rumor.CheckID() {
		return nostr.Event{}, fmt.Errorf("wrap kind %d: rumor id %q is stale: %w", rumor.Kind, clip(rumor.ID), ErrBadRumor)
	}
	if !namesRecipient(rumor.Tags, recipientPub) {
		return nostr.Event{}, fmt.Errorf("wrap kind %d: rumor has no p tag for %s: %w", rumor.Kind, recipientPub, ErrBadRumor)
	}
	if n := len(rumor.String()); n > proto.MaxRumorBytes {
		return nostr.Event{}, fmt.Errorf("wrap kind %d: rumor of %d bytes: %w", rumor.Kind, n, ErrTooLarge)
	}

	ck, err := nip44.GenerateConversationKey(recipientPub, senderSK)
	if err != nil {
		// go-nostr's message would repeat the secret key.
		return nostr.Event{}, fmt.Errorf("wrap: conversation key: %w", ErrBadKey)
	}
	wrap, err := nip59.GiftWrap(rumor, recipientPub,
		func(plaintext string) (string, error) { return nip44.Encrypt(plaintext, ck) },
		func(seal *nostr.Event) error {
			if err := seal.Sign(senderSK); err != nil {
				return errors.New("sign seal failed") // go-nostr's message would repeat the key
			}
			return nil
		},
		func(wrap *nostr.Event) {
			// nip59 backdates up to 6 hours; PROTOCOL.md (like NIP-59) says up to two days.
			wrap.CreatedAt = nostr.Now() - nostr.Timestamp(rand.Int64N(maxBackdate))
		},
	)
	if err != nil {
		return nostr.Event{}, fmt.Errorf("wrap kind %d rumor %s: %w", rumor.Kind, rumor.ID, err)
	}
	return wrap, nil
}

// Unwrap opens a gift wrap addressed to the holder of recipientSK and returns the rumor
// and its sender (the seal's signer) after every check of PROTOCOL.md section 1 except
// the durable replay set, which is the caller's. Each refusal wraps one of the Err*
// sentinels. It never panics on hostile input.
func Unwrap(wrap nostr.Event, recipientSK string) (rumor nostr.Event, sender string, err error) {
	me, err := proto.PublicKey(recipientSK)
	if err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap: recipient %w: %w", err, ErrBadKey)
	}
	// 1. The wrap itself.
	if wrap.Kind != proto.KindGiftWrap {
		return nostr.Event{}, "", fmt.Errorf("unwrap %q: kind %d: %w", clip(wrap.ID), wrap.Kind, ErrNotWrap)
	}
	if err := checkSigned(wrap); err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %q: %v: %w", clip(wrap.ID), err, ErrBadWrapSig)
	}
	if ps := pValues(wrap.Tags); len(ps) != 1 || ps[0] != me {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: wrap p tags %q: %w", wrap.ID, clipAll(ps), ErrWrongRecipient)
	}

	// 2. The seal.
	ck, err := nip44.GenerateConversationKey(wrap.PubKey, recipientSK)
	if err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: conversation key with wrap key: %w", wrap.ID, ErrDecrypt)
	}
	sealJSON, err := nip44.Decrypt(wrap.Content, ck)
	if err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: seal: %v: %w", wrap.ID, err, ErrDecrypt)
	}
	var seal nostr.Event
	if err := json.Unmarshal([]byte(sealJSON), &seal); err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: seal JSON: %v: %w", wrap.ID, err, ErrNotSeal)
	}
	if seal.Kind != proto.KindSeal || len(seal.Tags) != 0 {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: seal kind %d with %d tags: %w", wrap.ID, seal.Kind, len(seal.Tags), ErrNotSeal)
	}
	if err := checkSigned(seal); err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: seal: %v: %w", wrap.ID, err, ErrBadSealSig)
	}

	// 3. The rumor.
	ck, err = nip44.GenerateConversationKey(seal.PubKey, recipientSK)
	if err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: conversation key with sender: %w", wrap.ID, ErrDecrypt)
	}
	rumorJSON, err := nip44.Decrypt(seal.Content, ck)
	if err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: rumor from %s: %v: %w", wrap.ID, seal.PubKey, err, ErrDecrypt)
	}
	if err := json.Unmarshal([]byte(rumorJSON), &rumor); err != nil {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: rumor JSON from %s: %v: %w", wrap.ID, seal.PubKey, err, ErrBadRumor)
	}
	if rumor.PubKey != seal.PubKey {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: rumor claims %q, sealed by %s: %w", wrap.ID, clip(rumor.PubKey), seal.PubKey, ErrPubkeyMismatch)
	}
	if !rumor.CheckID() {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: rumor id %q from %s is not its hash: %w", wrap.ID, clip(rumor.ID), seal.PubKey, ErrBadRumor)
	}
	if !namesRecipient(rumor.Tags, me) {
		return nostr.Event{}, "", fmt.Errorf("unwrap %s: rumor %s from %s has no p tag for us: %w", wrap.ID, rumor.ID, seal.PubKey, ErrWrongRecipient)
	}
	return rumor, seal.PubKey, nil
}

// checkSigned verifies an event's pubkey form, id and Schnorr signature.
func checkSigned(ev nostr.Event) error {
	if !proto.ValidPubkey(ev.PubKey) {
		return errors.New("pubkey is not a lowercase-hex secp256k1 key")
	}
	if !ev.CheckID() {
		return errors.New("id is not the event hash")
	}
	if ok, _ := ev.CheckSignature(); !ok {
		return errors.New("signature does not verify")
	}
	return nil
}

func pValues(tags nostr.Tags) []string {
	var ps []string
	for _, t := range tags {
		if len(t) >= 1 && t[0] == "p" {
			if len(t) < 2 {
				ps = append(ps, "")
				continue
			}
			ps = append(ps, t[1])
		}
	}
	return ps
}

func namesRecipient(tags nostr.Tags, pub string) bool {
	for _, p := range pValues(tags) {
		if p == pub {
			return true
		}
	}
	return false
}

// clip shortens hostile values before they go into an error message.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "…"
}

func clipAll(ss []string) []string {
	if len(ss) > 4 {
		ss = ss[:4]
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clip(s)
	}
	return out
}
