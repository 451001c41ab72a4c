package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// JoinRequest (kind 7705) is a new worker's first message to the DVM, proving with a
// signed invite proof that it holds an invite the DVM issued (PROTOCOL.md section 7).
type JoinRequest struct {
	To         string      // DVM pubkey
	Proof      nostr.Event // signed kind-7706 event by the invite key
	AppVersion string
	Host       string // the worker's machine name, for the employer's eyes
}

type joinJSON struct {
	V          int          `json:"v"`
	Proof      *nostr.Event `json:"proof"`
	AppVersion string       `json:"app_version"`
	Host       string       `json:"host"`
}

func (j JoinRequest) content() []byte {
	p := j.Proof
	b, _ := json.Marshal(joinJSON{V: 1, Proof: &p, AppVersion: j.AppVersion, Host: j.Host})
	return b
}

// Validate checks the fields and the proof's shape (kind, signature, p tag); whether the
// proof names the sender and is fresh is VerifyInviteProof's job, which needs both.
func (j JoinRequest) Validate() error {
	const k = KindJoinRequest
	if err := checkPubkey(k, TagRecipient, j.To); err != nil {
		return err
	}
	if err := checkText(k, "content.app_version", j.AppVersion, MaxAppVersionBytes, true); err != nil {
		return err
	}
	if err := checkText(k, "content.host", j.Host, MaxHostBytes, false); err != nil {
		return err
	}
	if err := checkProof(j.Proof, j.To); err != nil {
		return fieldErr(k, "content.proof", "%v", err)
	}
	if n := len(j.content()); n > MaxJoinBytes {
		return fieldErr(k, "content", "%d bytes, at most %d allowed", n, MaxJoinBytes)
	}
	return fitsRumor(k, j)
}

// Rumor builds the unsigned kind-7705 rumor from senderPub (the new worker).
func (j JoinRequest) Rumor(senderPub string) nostr.Event {
	return newRumor(KindJoinRequest, senderPub, j.To, string(j.content()))
}

// ParseJoinRequest reads a kind-7705 rumor and checks that its invite proof is a validly
// signed kind-7706 event addressed to the same DVM and naming the rumor's sender. Freshness
// and whether the DVM issued the invite key are the DVM's to check (VerifyInviteProof).
func ParseJoinRequest(ev nostr.Event) (JoinRequest, error) {
	const k = KindJoinRequest
	_, to, err := header(ev, k)
	if err != nil {
		return JoinRequest{}, err
	}
	if len(ev.Content) > MaxJoinBytes {
		return JoinRequest{}, fieldErr(k, "content", "%d bytes, at most %d allowed", len(ev.Content), MaxJoinBytes)
	}
	var jj joinJSON
	dec := json.NewDecoder(bytes.NewReader([]byte(ev.Content)))
	if err := dec.Decode(&jj); err != nil {
		return JoinRequest{}, fieldErr(k, "content", "not a join request JSON object: %v", err)
	}
	if dec.More() {
		return JoinRequest{}, fieldErr(k, "content", "trailing data after the JSON object")
	}
	if jj.V != 1 {
		return JoinRequest{}, fieldErr(k, "content.v", "unknown join request version %d", jj.V)
	}
	if jj.Proof == nil {
		return JoinRequest{}, fieldErr(k, "content.proof", "missing")
	}
	j := JoinRequest{To: to, Proof: *jj.Proof, AppVersion: jj.AppVersion, Host: jj.Host}
	if err := j.Validate(); err != nil {
		return JoinRequest{}, err
	}
	if j.Proof.Content != ev.PubKey {
		return JoinRequest{}, fieldErr(k, "content.proof", "names worker %q, but the join request comes from %q", clip(j.Proof.Content), clip(ev.PubKey))
	}
	return j, nil
}

// NewInviteProof signs the kind-7706 proof that the holder of the invite key sends
// workerPub to the DVM dvmPub.
func NewInviteProof(inviteSK, dvmPub, workerPub string) (nostr.Event, error) {
	if err := CheckSecretKey(inviteSK); err != nil {
		return nostr.Event{}, fmt.Errorf("invite proof: invite %w", err)
	}
	if !ValidPubkey(dvmPub) {
		return nostr.Event{}, fmt.Errorf("invite proof: DVM pubkey %q is not a valid public key", clip(dvmPub))
	}
	if !ValidPubkey(workerPub) {
		return nostr.Event{}, fmt.Errorf("invite proof: worker pubkey %q is not a valid public key", clip(workerPub))
	}
	ev := nostr.Event{
		Kind:      KindInviteProof,
		CreatedAt: nostr.Now(),
		Tags:      nostr.Tags{{TagRecipient, dvmPub}},
		Content:   workerPub,
	}
	if err := ev.Sign(inviteSK); err != nil {
		return nostr.Event{}, errors.New("invite proof: signing failed")
	}
	return ev, nil
}

// VerifyInviteProof checks an invite proof completely: kind 7706, valid id and signature,
// exactly one p tag naming dvmPub, content workerPub, and created_at within
// InviteProofMaxSkew of at (the join request's time). The invite key is proof.PubKey;
// whether the DVM issued it and it is unused is the DVM's to check.
func VerifyInviteProof(proof nostr.Event, dvmPub, workerPub string, at time.Time) error {
	if err := checkProof(proof, dvmPub); err != nil {
		return err
	}
	if proof.Content != workerPub {
		return fmt.Errorf("invite proof names worker %q, want %q: %w", clip(proof.Content), clip(workerPub), ErrInvalid)
	}
	skew := proof.CreatedAt.Time().Sub(at)
	if skew < -InviteProofMaxSkew || skew > InviteProofMaxSkew {
		return fmt.Errorf("invite proof made at %s, %s away from %s (at most %s): %w",
			proof.CreatedAt.Time().UTC().Format(time.RFC3339), skew.Abs(), at.UTC().Format(time.RFC3339), InviteProofMaxSkew, ErrInvalid)
	}
	return nil
}

// checkProof verifies everything about a proof that does not depend on the worker or the
// clock.
func checkProof(proof nostr.Event, dvmPub string) error {
	if proof.Kind != KindInviteProof {
		return fmt.Errorf("invite proof is kind %d, want %d: %w", proof.Kind, KindInviteProof, ErrInvalid)
	}
	if !ValidPubkey(proof.PubKey) {
		return fmt.Errorf("invite proof pubkey is not a valid public key: %w", ErrInvalid)
	}
	if !proof.CheckID() {
		return fmt.Errorf("invite proof id does not match its content: %w", ErrInvalid)
	}
	if ok, _ := proof.CheckSignature(); !ok {
		return fmt.Errorf("invite proof signature is invalid: %w", ErrInvalid)
	}
	var ps []string
	for _, t := range proof.Tags {
		if len(t) >= 1 && t[0] == TagRecipient {
			if len(t) < 2 {
				return fmt.Errorf("invite proof p tag has no value: %w", ErrInvalid)
			}
			ps = append(ps, t[1])
		}
	}
	if len(ps) != 1 || ps[0] != dvmPub {
		return fmt.Errorf("invite proof must name exactly DVM %q in one p tag, has %q: %w", clip(dvmPub), ps, ErrInvalid)
	}
	if !ValidPubkey(proof.Content) {
		return fmt.Errorf("invite proof content is not a worker public key: %w", ErrInvalid)
	}
	return nil
}
