// Package access keeps the relay's whitelist: allowed and banned pubkeys, invite keys, invite
// quotas and who invited whom. It persists everything to one JSON file, written atomically
// after every change, so a restart loses nothing and a crash never leaves half a file.
package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// Errors callers map to protocol answers; every returned error wraps one of these.
var (
	ErrInvalid       = errors.New("invalid")
	ErrForbidden     = errors.New("forbidden")
	ErrNotFound      = errors.New("not found")
	ErrBanned        = errors.New("banned")
	ErrInviteUsed    = errors.New("invite already used")
	ErrInviteExpired = errors.New("invite expired")
)

// Entry is one allowed or banned pubkey.
type Entry struct {
	PubKey string `json:"pubkey"`
	By     string `json:"by,omitempty"` // who allowed it (inviter); empty for bans
	Reason string `json:"reason,omitempty"`
	At     int64  `json:"at"`
}

// Invite is an invite key an admin or a quota holder registered.
type Invite struct {
	Key       string `json:"key"`
	By        string `json:"by"`
	Created   int64  `json:"created"`
	Expires   int64  `json:"expires"`
	ClaimedBy string `json:"claimed_by,omitempty"`
	ClaimedAt int64  `json:"claimed_at,omitempty"`
}

type state struct {
	V       int               `json:"v"`
	Allowed map[string]Entry  `json:"allowed"`
	Banned  map[string]Entry  `json:"banned"`
	Quotas  map[string]int    `json:"quotas"`
	Invites map[string]Invite `json:"invites"`
}

func newState() state {
	return state{V: 1, Allowed: map[string]Entry{}, Banned: map[string]Entry{}, Quotas: map[string]int{}, Invites: map[string]Invite{}}
}

func (s state) clone() state {
	c := newState()
	for k, v := range s.Allowed {
		c.Allowed[k] = v
	}
	for k, v := range s.Banned {
		c.Banned[k] = v
	}
	for k, v := range s.Quotas {
		c.Quotas[k] = v
	}
	for k, v := range s.Invites {
		c.Invites[k] = v
	}
	return c
}

// Store is safe for concurrent use.
type Store struct {
	path   string
	now    func() time.Time
	admins map[string]bool
	static map[string]bool
	maxTTL time.Duration

	mu sync.RWMutex
	st state
}

// Options configure a Store.
type Options struct {
	Admins       []string         // hex pubkeys with every right; not removable
	Static       []string         // hex pubkeys always allowed (from configuration)
	MaxInviteTTL time.Duration    // longest invite lifetime; default 30 days
	Now          func() time.Time // nil for the wall clock
}

// Open loads path (a missing file is an empty whitelist).
func Open(path string, o Options) (*Store, error) {
	s := &Store{path: path, now: o.Now, admins: map[string]bool{}, static: map[string]bool{}, maxTTL: o.MaxInviteTTL, st: newState()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxTTL <= 0 {
		s.maxTTL = 30 * 24 * time.Hour
	}
	for _, pk := range o.Admins {
		if !nostr.IsValidPublicKey(pk) {
			return nil, fmt.Errorf("admin pubkey %q: %w: not 64 lowercase hex characters", pk, ErrInvalid)
		}
		s.admins[pk] = true
	}
	for _, pk := range o.Static {
		if !nostr.IsValidPublicKey(pk) {
			return nil, fmt.Errorf("allowed pubkey %q: %w: not 64 lowercase hex characters", pk, ErrInvalid)
		}
		s.static[pk] = true
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read whitelist %s: %w", path, err)
	}
	st := newState()
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse whitelist %s: %w", path, err)
	}
	if st.V != 1 {
		return nil, fmt.Errorf("whitelist %s: unknown version %d", path, st.V)
	}
	if st.Allowed == nil {
		st.Allowed = map[string]Entry{}
	}
	if st.Banned == nil {
		st.Banned = map[string]Entry{}
	}
	if st.Quotas == nil {
		st.Quotas = map[string]int{}
	}
	if st.Invites == nil {
		st.Invites = map[string]Invite{}
	}
	s.st = st
	return s, nil
}

// update applies fn to a copy of the state and makes it current only once it is on disk.
func (s *Store) update(fn func(st *state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	if err := fn(&next); err != nil {
		return err
	}
	if err := writeAtomic(s.path, next); err != nil {
		return err
	}
	s.st = next
	return nil
}

func writeAtomic(path string, st state) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode whitelist: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".access-*.tmp")
	if err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save whitelist: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// IsAdmin reports whether pk is a configured admin.
func (s *Store) IsAdmin(pk string) bool { return s.admins[pk] }

// Admins lists the configured admins, sorted.
func (s *Store) Admins() []string {
	out := make([]string, 0, len(s.admins))
	for pk := range s.admins {
		out = append(out, pk)
	}
	sort.Strings(out)
	return out
}

// IsAllowed reports whether pk may use the relay: an admin, configured, or allowed, and not banned.
func (s *Store) IsAllowed(pk string) bool {
	if s.admins[pk] {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.allowedLocked(&s.st, pk)
}

func (s *Store) allowedLocked(st *state, pk string) bool {
	if s.admins[pk] {
		return true
	}
	if _, banned := st.Banned[pk]; banned {
		return false
	}
	if s.static[pk] {
		return true
	}
	_, ok := st.Allowed[pk]
	return ok
}

// IsBanned reports whether pk is banned.
func (s *Store) IsBanned(pk string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.st.Banned[pk]
	return ok
}

// InvitedBy returns who allowed pk ("" when unknown).
func (s *Store) InvitedBy(pk string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Allowed[pk].By
}

// Allow adds pk to the whitelist, recording by as its inviter. Allowing an allowed key
// keeps its first inviter (so nobody can re-parent someone else's invitee).
func (s *Store) Allow(by, pk, reason string) error {
	if !nostr.IsValidPublicKey(pk) {
		return fmt.Errorf("allow %q: %w pubkey", pk, ErrInvalid)
	}
	return s.update(func(st *state) error {
		if _, banned := st.Banned[pk]; banned {
			return fmt.Errorf("allow %s: %w; unban it first", pk, ErrBanned)
		}
		if _, ok := st.Allowed[pk]; ok {
			return nil
		}
		st.Allowed[pk] = Entry{PubKey: pk, By: by, Reason: reason, At: s.now().Unix()}
		return nil
	})
}

// CanRemove reports whether by may remove pk: an admin, or anyone above pk in its invite chain.
func (s *Store) CanRemove(by, pk string) bool {
	if s.admins[by] {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.allowedLocked(&s.st, by) {
		return false
	}
	seen := map[string]bool{pk: true}
	for cur := s.st.Allowed[pk].By; cur != ""; cur = s.st.Allowed[cur].By {
		if cur == by {
			return true
		}
		if seen[cur] {
			return false
		}
		seen[cur] = true
	}
	return false
}

// Unallow removes pk and, recursively, everyone it invited (and their pending invites).
// by must be an admin or above pk in its invite chain. It returns every removed pubkey.
func (s *Store) Unallow(by, pk string) ([]string, error) {
	if !nostr.IsValidPublicKey(pk) {
		return nil, fmt.Errorf("unallow %q: %w pubkey", pk, ErrInvalid)
	}
	if s.admins[pk] {
		return nil, fmt.Errorf("unallow %s: %w: it is an admin (configuration)", pk, ErrInvalid)
	}
	if s.static[pk] {
		return nil, fmt.Errorf("unallow %s: %w: it is allowed by configuration (--allow)", pk, ErrInvalid)
	}
	if !s.CanRemove(by, pk) {
		return nil, fmt.Errorf("unallow %s: %w: only an admin or someone above it in its invite chain may remove it", pk, ErrForbidden)
	}
	var removed []string
	err := s.update(func(st *state) error {
		if _, ok := st.Allowed[pk]; !ok {
			return fmt.Errorf("unallow %s: %w: not on the whitelist", pk, ErrNotFound)
		}
		removed = removeChain(st, pk)
		return nil
	})
	return removed, err
}

// removeChain deletes pk and its descendants from st and revokes their pending invites.
func removeChain(st *state, pk string) []string {
	removed := []string{}
	queue := []string{pk}
	seen := map[string]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		if _, ok := st.Allowed[cur]; ok {
			removed = append(removed, cur)
			delete(st.Allowed, cur)
		}
		delete(st.Quotas, cur)
		for k, e := range st.Allowed {
			if e.By == cur {
				queue = append(queue, k)
			}
		}
		for k, inv := range st.Invites {
			if inv.By == cur && inv.ClaimedBy == "" {
				delete(st.Invites, k)
			}
		}
	}
	return removed
}

// Ban bans pk and removes it and everyone it invited from the whitelist.
func (s *Store) Ban(pk, reason string) ([]string, error) {
	if !nostr.IsValidPublicKey(pk) {
		return nil, fmt.Errorf("ban %q: %w pubkey", pk, ErrInvalid)
	}
	if s.admins[pk] {
		return nil, fmt.Errorf("ban %s: %w: it is an admin (configuration)", pk, ErrInvalid)
	}
	var removed []string
	err := s.update(func(st *state) error {
		removed = removeChain(st, pk)
		if inv, ok := st.Invites[pk]; ok && inv.ClaimedBy == "" {
			delete(st.Invites, pk)
		}
		st.Banned[pk] = Entry{PubKey: pk, Reason: reason, At: s.now().Unix()}
		return nil
	})
	return removed, err
}

// Unban lifts a ban; it does not allow the key again.
func (s *Store) Unban(pk string) error {
	return s.update(func(st *state) error {
		if _, ok := st.Banned[pk]; !ok {
			return fmt.Errorf("unban %s: %w: not banned", pk, ErrNotFound)
		}
		delete(st.Banned, pk)
		return nil
	})
}

// Allowed lists the whitelist (configured keys included, marked by "config"), sorted.
func (s *Store) Allowed() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.st.Allowed)+len(s.static)+len(s.admins))
	for _, e := range s.st.Allowed {
		out = append(out, e)
	}
	for pk := range s.static {
		if _, dup := s.st.Allowed[pk]; !dup {
			out = append(out, Entry{PubKey: pk, By: "config", Reason: "allowed by configuration"})
		}
	}
	for pk := range s.admins {
		if _, dup := s.st.Allowed[pk]; !dup && !s.static[pk] {
			out = append(out, Entry{PubKey: pk, By: "config", Reason: "admin"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PubKey < out[j].PubKey })
	return out
}

// Banned lists banned keys, sorted.
func (s *Store) Banned() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.st.Banned))
	for _, e := range s.st.Banned {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PubKey < out[j].PubKey })
	return out
}

// SetQuota sets how many invites pk may issue itself (admins are unlimited).
func (s *Store) SetQuota(pk string, n int) error {
	if !nostr.IsValidPublicKey(pk) {
		return fmt.Errorf("set invite quota %q: %w pubkey", pk, ErrInvalid)
	}
	if n < 0 || n > 1_000_000 {
		return fmt.Errorf("set invite quota %d: %w: must be 0..1000000", n, ErrInvalid)
	}
	return s.update(func(st *state) error {
		if !s.allowedLocked(st, pk) {
			return fmt.Errorf("set invite quota for %s: %w: not on the whitelist", pk, ErrNotFound)
		}
		if n == 0 {
			delete(st.Quotas, pk)
		} else {
			st.Quotas[pk] = n
		}
		return nil
	})
}

// QuotaLeft is how many more invites pk may issue (-1: unlimited, for admins).
func (s *Store) QuotaLeft(pk string) int {
	if s.admins[pk] {
		return -1
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.quotaLeftLocked(&s.st, pk)
}

// quotaLeftLocked counts claimed invites and pending unexpired ones against the quota;
// an invite that expired unused gives its slot back.
func (s *Store) quotaLeftLocked(st *state, pk string) int {
	now := s.now().Unix()
	used := 0
	for _, inv := range st.Invites {
		if inv.By == pk && (inv.ClaimedBy != "" || inv.Expires > now) {
			used++
		}
	}
	left := st.Quotas[pk] - used
	if left < 0 {
		left = 0
	}
	return left
}

// AllowInvite registers an invite key that expires at expires. by must be an admin or an
// allowed pubkey with invite quota left.
func (s *Store) AllowInvite(by, key string, expires time.Time) error {
	if !nostr.IsValidPublicKey(key) {
		return fmt.Errorf("allow invite %q: %w pubkey", key, ErrInvalid)
	}
	now := s.now()
	if !expires.After(now) {
		return fmt.Errorf("allow invite %s: %w: expiry %d is not in the future", key, ErrInvalid, expires.Unix())
	}
	if expires.Sub(now) > s.maxTTL {
		return fmt.Errorf("allow invite %s: %w: expiry is more than %s ahead", key, ErrInvalid, s.maxTTL)
	}
	if s.admins[key] {
		return fmt.Errorf("allow invite %s: %w: an admin key cannot be an invite", key, ErrInvalid)
	}
	return s.update(func(st *state) error {
		if !s.admins[by] {
			if !s.allowedLocked(st, by) {
				return fmt.Errorf("allow invite: %w: %s is not on the whitelist", ErrForbidden, by)
			}
			if s.quotaLeftLocked(st, by) < 1 {
				return fmt.Errorf("allow invite: %w: %s has no invite quota left", ErrForbidden, by)
			}
		}
		if _, ok := st.Invites[key]; ok {
			return fmt.Errorf("allow invite %s: %w: this key is already an invite", key, ErrInvalid)
		}
		if _, ok := st.Allowed[key]; ok || s.static[key] {
			return fmt.Errorf("allow invite %s: %w: this key is already allowed", key, ErrInvalid)
		}
		if _, ok := st.Banned[key]; ok {
			return fmt.Errorf("allow invite %s: %w", key, ErrBanned)
		}
		st.Invites[key] = Invite{Key: key, By: by, Created: now.Unix(), Expires: expires.Unix()}
		return nil
	})
}

// ClaimInvite swaps an unused, unexpired invite key for newPK, exactly once: newPK is
// allowed with the invite's issuer as its inviter, and the invite is retired.
func (s *Store) ClaimInvite(key, newPK string) error {
	if !nostr.IsValidPublicKey(newPK) {
		return fmt.Errorf("claim invite: new pubkey %q: %w", newPK, ErrInvalid)
	}
	if newPK == key {
		return fmt.Errorf("claim invite %s: %w: the new pubkey must differ from the invite key", key, ErrInvalid)
	}
	return s.update(func(st *state) error {
		inv, ok := st.Invites[key]
		if !ok {
			return fmt.Errorf("claim invite %s: %w: no such invite", key, ErrNotFound)
		}
		if inv.ClaimedBy != "" {
			return fmt.Errorf("claim invite %s: %w (by %s)", key, ErrInviteUsed, inv.ClaimedBy)
		}
		now := s.now().Unix()
		if inv.Expires <= now {
			return fmt.Errorf("claim invite %s: %w at %d", key, ErrInviteExpired, inv.Expires)
		}
		if !s.allowedLocked(st, inv.By) {
			return fmt.Errorf("claim invite %s: %w: its issuer is no longer allowed", key, ErrForbidden)
		}
		if _, banned := st.Banned[newPK]; banned {
			return fmt.Errorf("claim invite %s for %s: %w", key, newPK, ErrBanned)
		}
		if _, ok := st.Allowed[newPK]; !ok && !s.admins[newPK] && !s.static[newPK] {
			st.Allowed[newPK] = Entry{PubKey: newPK, By: inv.By, Reason: "invite " + key, At: now}
		}
		inv.ClaimedBy, inv.ClaimedAt = newPK, now
		st.Invites[key] = inv
		return nil
	})
}

// Invites lists every invite, sorted by creation.
func (s *Store) Invites() []Invite {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Invite, 0, len(s.st.Invites))
	for _, inv := range s.st.Invites {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created < out[j].Created
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// PruneInvites forgets invites that expired unused before cutoff and returns how many.
func (s *Store) PruneInvites(cutoff time.Time) (int, error) {
	n := 0
	s.mu.RLock()
	for _, inv := range s.st.Invites {
		if inv.ClaimedBy == "" && inv.Expires <= cutoff.Unix() {
			n++
		}
	}
	s.mu.RUnlock()
	if n == 0 {
		return 0, nil
	}
	n = 0
	err := s.update(func(st *state) error {
		for k, inv := range st.Invites {
			if inv.ClaimedBy == "" && inv.Expires <= cutoff.Unix() {
				delete(st.Invites, k)
				n++
			}
		}
		return nil
	})
	return n, err
}
