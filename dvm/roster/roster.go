// Package roster keeps the DVM's workers and invites: it creates invites (registered on
// the relays through NIP-86 allowinvite), verifies join requests (PROTOCOL.md section 7)
// and adds, maps and removes workers, keeping the relays' whitelists in step.
package roster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/inbox"
	"pow.do/dvm/store"
	"pow.do/shared/invite"
	"pow.do/shared/nip86"
	"pow.do/shared/proto"
)

// Manager does roster work against the store and every relay.
type Manager struct {
	Store     store.Roster
	Admin     *nip86.Client // nil: one signing with SecretKey
	Relays    []string      // ws(s):// URLs, first preferred
	Blossoms  []string      // http(s):// URLs for invite links; empty: the relays' own
	SecretKey string        // the DVM's, hex
	Log       *slog.Logger
	Now       func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

func (m *Manager) admin() *nip86.Client {
	if m.Admin != nil {
		return m.Admin
	}
	return &nip86.Client{SecretKey: m.SecretKey}
}

// InviteRequest describes a new invite.
type InviteRequest struct {
	Name        string
	KimaiUserID int64         // 0: map later with `workers map`
	Quota       int           // invites the new worker may issue on the relays
	Expires     time.Duration // how long the invite stays valid
}

// Created is a new invite and its link. The link holds the invite's secret key: show it
// to the operator, never log it (Link.Redacted is safe).
type Created struct {
	Invite store.Invite
	Link   invite.Link
}

// CreateInvite makes a throw-away key, registers it on every relay (allowinvite) and then
// stores it, so that a stored invite is always one the relays know.
func (m *Manager) CreateInvite(ctx context.Context, req InviteRequest) (Created, error) {
	if req.Expires <= 0 {
		return Created{}, errors.New("invite: expiry must be positive")
	}
	if req.Quota < 0 || req.KimaiUserID < 0 {
		return Created{}, errors.New("invite: quota and Kimai user must not be negative")
	}
	if len(req.Name) > invite.MaxNameLen {
		return Created{}, fmt.Errorf("invite: name longer than %d bytes", invite.MaxNameLen)
	}
	if len(m.Relays) == 0 {
		return Created{}, errors.New("invite: no relay configured")
	}
	dvmPub, err := proto.PublicKey(m.SecretKey)
	if err != nil {
		return Created{}, fmt.Errorf("invite: DVM key: %w", err)
	}
	sk := nostr.GeneratePrivateKey()
	pub, err := nostr.GetPublicKey(sk)
	if err != nil {
		return Created{}, errors.New("invite: derive invite key failed")
	}
	now := m.now()
	exp := now.Add(req.Expires).Truncate(time.Second)
	for _, r := range m.Relays {
		if err := m.admin().AllowInvite(ctx, r, pub, exp); err != nil {
			return Created{}, fmt.Errorf("invite: register on the relay: %w", err)
		}
	}
	inv := store.Invite{Pubkey: pub, Name: req.Name, KimaiUserID: req.KimaiUserID, Quota: req.Quota, CreatedAt: now, ExpiresAt: exp}
	if err := m.Store.AddInvite(ctx, inv); err != nil {
		return Created{}, fmt.Errorf("invite: store: %w", err)
	}
	blossoms := m.Blossoms
	if len(blossoms) == 0 {
		for _, r := range m.Relays {
			u, err := nip86.HTTPURL(r) // powdo-relay serves Blossom on the relay's port
			if err != nil {
				return Created{}, fmt.Errorf("invite: %w", err)
			}
			blossoms = append(blossoms, strings.TrimRight(u, "/"))
		}
	}
	link := invite.Link{DVM: dvmPub, Relays: m.Relays, Blossoms: blossoms, Secret: sk, Name: req.Name}
	if err := link.Validate(); err != nil {
		return Created{}, fmt.Errorf("invite: %w", err)
	}
	m.log().Info("invite created", "invite", pub, "name", req.Name, "expires", exp.UTC().Format(time.RFC3339))
	return Created{Invite: inv, Link: link}, nil
}

// JoinError is a join request refused for good (Permanent) or failing for now.
type JoinError struct {
	Perm bool
	Err  error
}

func (e *JoinError) Error() string   { return "join: " + e.Err.Error() }
func (e *JoinError) Unwrap() error   { return e.Err }
func (e *JoinError) Permanent() bool { return e.Perm }

func refuse(format string, a ...any) error {
	return &JoinError{Perm: true, Err: fmt.Errorf(format, a...)}
}

// Join handles a kind-7705 join request: the invite proof must verify, name the sender
// and come from an invite this DVM issued and nobody else used; then the invite is
// consumed and the worker added (one transaction), the relays asked to allow the worker
// (they already do if the tracker claimed the invite; asking again is harmless) and its
// invite quota set. Repeating a join that got halfway (a crash, a relay down) finishes it.
func (m *Manager) Join(ctx context.Context, op inbox.Opened) (store.Worker, error) {
	dvmPub, err := proto.PublicKey(m.SecretKey)
	if err != nil {
		return store.Worker{}, fmt.Errorf("join: DVM key: %w", err)
	}
	j, err := proto.ParseJoinRequest(op.Rumor)
	if err != nil {
		return store.Worker{}, refuse("%w", err)
	}
	if err := proto.VerifyInviteProof(j.Proof, dvmPub, op.Sender, op.Rumor.CreatedAt.Time()); err != nil {
		return store.Worker{}, refuse("%w", err)
	}
	key := j.Proof.PubKey
	inv, err := m.Store.Invite(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Worker{}, refuse("invite key %s was not issued by this DVM", key)
	case err != nil:
		return store.Worker{}, fmt.Errorf("join: look up invite: %w", err)
	}
	var w store.Worker
	switch {
	case !inv.ConsumedAt.IsZero() && inv.ConsumedBy == op.Sender:
		// A repeat of a join that was recorded: finish the relay steps.
		if w, err = m.Store.Worker(ctx, op.Sender); err != nil {
			return store.Worker{}, fmt.Errorf("join: read worker: %w", err)
		}
	case !inv.ConsumedAt.IsZero():
		return store.Worker{}, refuse("invite %s was already used by %s", key, inv.ConsumedBy)
	default:
		w, err = m.Store.ConsumeInvite(ctx, key, op.Sender)
		switch {
		case errors.Is(err, store.ErrInviteConsumed), errors.Is(err, store.ErrInviteExpired),
			errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExists), errors.Is(err, store.ErrInvalid):
			return store.Worker{}, refuse("%w", err)
		case err != nil:
			return store.Worker{}, fmt.Errorf("join: consume invite: %w", err)
		}
	}
	for _, r := range m.Relays {
		if err := m.admin().AllowPubkey(ctx, r, op.Sender, "pow.do worker "+w.Name); err != nil {
			return store.Worker{}, fmt.Errorf("join: %w", err)
		}
		if inv.Quota > 0 {
			if err := m.admin().SetInviteQuota(ctx, r, op.Sender, inv.Quota); err != nil {
				return store.Worker{}, fmt.Errorf("join: %w", err)
			}
		}
	}
	fp, _ := invite.Fingerprint(dvmPub, op.Sender)
	m.log().Info("join accepted", "worker", op.Sender, "name", w.Name, "host", j.Host, "app_version", j.AppVersion, "fingerprint", fp)
	return w, nil
}

// Removed is what `workers remove` did.
type Removed struct {
	Worker store.Worker
	// Chain lists roster workers removed with it because the relay removed them as its
	// invitees.
	Chain []string
	// RelayErrors are relays that could not be updated (the roster is updated anyway).
	RelayErrors []error
}

// Remove takes a worker off the roster and the relays; the relays also drop everyone the
// worker invited (recursively), and those workers leave the roster too.
func (m *Manager) Remove(ctx context.Context, pubkey string) (Removed, error) {
	w, err := m.Store.Worker(ctx, pubkey)
	if err != nil {
		return Removed{}, fmt.Errorf("remove %s: %w", pubkey, err)
	}
	if !w.RemovedAt.IsZero() {
		return Removed{}, fmt.Errorf("remove %s: already removed on %s", pubkey, w.RemovedAt.UTC().Format(time.RFC3339))
	}
	if err := m.Store.RemoveWorker(ctx, pubkey); err != nil {
		return Removed{}, fmt.Errorf("remove %s: %w", pubkey, err)
	}
	out := Removed{Worker: w}
	chain := map[string]bool{}
	for _, r := range m.Relays {
		before, err := m.allowed(ctx, r)
		if err != nil {
			out.RelayErrors = append(out.RelayErrors, err)
			continue
		}
		if err := m.admin().UnallowPubkey(ctx, r, pubkey); err != nil && !nip86.IsStatus(err, http.StatusNotFound) {
			out.RelayErrors = append(out.RelayErrors, err)
			continue
		}
		after, err := m.allowed(ctx, r)
		if err != nil {
			out.RelayErrors = append(out.RelayErrors, err)
			continue
		}
		for pk := range before {
			if !after[pk] && pk != pubkey {
				chain[pk] = true
			}
		}
	}
	for pk := range chain {
		cw, err := m.Store.Worker(ctx, pk)
		if err != nil || !cw.RemovedAt.IsZero() {
			continue // not one of our workers
		}
		if err := m.Store.RemoveWorker(ctx, pk); err != nil {
			return out, fmt.Errorf("remove %s (invited by %s): %w", pk, pubkey, err)
		}
		out.Chain = append(out.Chain, pk)
	}
	m.log().Info("worker removed", "worker", pubkey, "chain", out.Chain, "relay_errors", len(out.RelayErrors))
	return out, nil
}

func (m *Manager) allowed(ctx context.Context, relay string) (map[string]bool, error) {
	list, err := m.admin().ListAllowed(ctx, relay)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(list))
	for _, e := range list {
		set[strings.ToLower(e.Pubkey)] = true
	}
	return set, nil
}
