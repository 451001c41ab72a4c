// Package inbox receives the DVM's gift wraps: one connect → AUTH → subscribe loop per
// relay with a durable cursor and processed-wrap set (so restarts, reconnects and wraps
// backdated by up to two days neither lose nor repeat anything), and the Opener that
// unwraps a wrap with every check of PROTOCOL.md section 1 and refuses senders who are not
// on the roster.
package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/dvm/store"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
)

// Refused is a wrap the DVM will never accept: it is marked processed (outcome rejected)
// and logged with Reason; no receipt goes out, because its sender cannot be trusted.
type Refused struct {
	Label string // short metric label, e.g. "not_on_roster"
	Err   error
}

func (r *Refused) Error() string { return "refused (" + r.Label + "): " + r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// Refusal labels.
const (
	RefusedBadWrap        = "bad_wrap"
	RefusedWrongRecipient = "wrong_recipient"
	RefusedDecrypt        = "decrypt"
	RefusedBadSeal        = "bad_seal"
	RefusedPubkeyMismatch = "pubkey_mismatch"
	RefusedBadRumor       = "bad_rumor"
	RefusedNotOnRoster    = "not_on_roster"
	RefusedRemoved        = "worker_removed"
	RefusedUnknownKind    = "unknown_kind"
)

// Opened is a wrap that passed every check.
type Opened struct {
	Wrap   nostr.Event
	Rumor  nostr.Event
	Sender string // the seal's signer, equal to Rumor.PubKey
	Seal   []byte // the signed seal's JSON, kept as evidence (the rumor itself is unsigned)
	// Worker is the sender's roster entry; zero for a join request from a newcomer.
	Worker store.Worker
	Known  bool
}

// Opener unwraps wraps addressed to the DVM.
type Opener struct {
	SecretKey string // the DVM's, hex
	Roster    interface {
		Worker(ctx context.Context, pubkey string) (store.Worker, error)
	}
}

// Open unwraps w and checks its sender against the roster. A join request (kind 7705) from
// a sender not on the roster passes with Known=false: its invite proof is the join
// handler's to verify. Refusals are *Refused; any other error is trouble on our side
// (the store) and worth a retry.
func (o *Opener) Open(ctx context.Context, w nostr.Event) (Opened, error) {
	rumor, sender, err := giftwrap.Unwrap(w, o.SecretKey)
	if err != nil {
		return Opened{}, &Refused{Label: unwrapLabel(err), Err: err}
	}
	op := Opened{Wrap: w, Rumor: rumor, Sender: sender}
	switch rumor.Kind {
	case proto.KindSegmentFile, proto.KindSessionStart, proto.KindSessionStop,
		proto.KindCatalogueRequest, proto.KindJoinRequest:
	default:
		return Opened{}, &Refused{Label: RefusedUnknownKind,
			Err: fmt.Errorf("wrap %s from %s: rumor kind %d is not one a DVM accepts", w.ID, sender, rumor.Kind)}
	}
	wk, err := o.Roster.Worker(ctx, sender)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if rumor.Kind != proto.KindJoinRequest {
			return Opened{}, &Refused{Label: RefusedNotOnRoster,
				Err: fmt.Errorf("wrap %s: sender %s is not on the roster (kind %d)", w.ID, sender, rumor.Kind)}
		}
	case err != nil:
		return Opened{}, fmt.Errorf("open wrap %s: roster lookup %s: %w", w.ID, sender, err)
	case !wk.RemovedAt.IsZero() && rumor.Kind != proto.KindJoinRequest:
		return Opened{}, &Refused{Label: RefusedRemoved,
			Err: fmt.Errorf("wrap %s: sender %s was removed from the roster at %s", w.ID, sender, wk.RemovedAt.UTC().Format("2006-01-02T15:04:05Z"))}
	default:
		op.Worker, op.Known = wk, wk.RemovedAt.IsZero()
	}
	op.Seal = sealJSON(w, o.SecretKey)
	return op, nil
}

// sealJSON decrypts the wrap again to keep the signed seal as evidence. Unwrap has just
// done the same successfully, so a failure here can only mean nil evidence.
func sealJSON(w nostr.Event, sk string) []byte {
	ck, err := nip44.GenerateConversationKey(w.PubKey, sk)
	if err != nil {
		return nil
	}
	s, err := nip44.Decrypt(w.Content, ck)
	if err != nil || !json.Valid([]byte(s)) {
		return nil
	}
	return []byte(s)
}

func unwrapLabel(err error) string {
	switch {
	case errors.Is(err, giftwrap.ErrNotWrap), errors.Is(err, giftwrap.ErrBadWrapSig):
		return RefusedBadWrap
	case errors.Is(err, giftwrap.ErrWrongRecipient):
		return RefusedWrongRecipient
	case errors.Is(err, giftwrap.ErrDecrypt):
		return RefusedDecrypt
	case errors.Is(err, giftwrap.ErrNotSeal), errors.Is(err, giftwrap.ErrBadSealSig):
		return RefusedBadSeal
	case errors.Is(err, giftwrap.ErrPubkeyMismatch):
		return RefusedPubkeyMismatch
	default:
		return RefusedBadRumor
	}
}
