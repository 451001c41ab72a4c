package access

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/clocktest"
)

type clock = clocktest.Clock

func pk(t *testing.T) string {
	t.Helper()
	p, err := nostr.GetPublicKey(nostr.GeneratePrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, path string, c *clock, admins ...string) *Store {
	t.Helper()
	s, err := Open(path, Options{Admins: admins, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInviteChainAndPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.json")
	c := clocktest.New(time.Unix(1_800_000_000, 0))
	admin := pk(t)
	s := open(t, path, c, admin)

	alice, bob, carol, dave := pk(t), pk(t), pk(t), pk(t)
	if err := s.Allow(admin, alice, "first worker"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(alice, 1); err != nil {
		t.Fatal(err)
	}
	inv1 := pk(t)
	if err := s.AllowInvite(alice, inv1, c.Now().Add(time.Hour)); err != nil {
		t.Fatalf("alice with quota 1 cannot invite: %v", err)
	}
	if s.IsAllowed(inv1) {
		t.Fatal("a pending invite key is allowed to use the relay")
	}
	if err := s.AllowInvite(alice, pk(t), c.Now().Add(time.Hour)); !errors.Is(err, ErrForbidden) {
		t.Fatalf("second invite beyond quota: %v, want ErrForbidden", err)
	}
	if err := s.ClaimInvite(inv1, bob); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimInvite(inv1, carol); !errors.Is(err, ErrInviteUsed) {
		t.Fatalf("second claim: %v, want ErrInviteUsed", err)
	}
	if s.IsAllowed(carol) {
		t.Fatal("second claim allowed its pubkey")
	}
	if !s.IsAllowed(bob) || s.InvitedBy(bob) != alice {
		t.Fatalf("bob allowed=%v invitedBy=%q", s.IsAllowed(bob), s.InvitedBy(bob))
	}
	// bob invites carol (through an admin-set quota), carol invites dave.
	if err := s.SetQuota(bob, 2); err != nil {
		t.Fatal(err)
	}
	inv2, inv3 := pk(t), pk(t)
	if err := s.AllowInvite(bob, inv2, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimInvite(inv2, carol); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(carol, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowInvite(carol, inv3, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimInvite(inv3, dave); err != nil {
		t.Fatal(err)
	}
	pendingByDave := pk(t)
	if err := s.SetQuota(dave, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowInvite(dave, pendingByDave, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// Restart: everything persists.
	s = open(t, path, c, admin)
	for _, p := range []string{alice, bob, carol, dave} {
		if !s.IsAllowed(p) {
			t.Fatalf("%s lost on reopen", p[:8])
		}
	}
	if got := len(s.Invites()); got != 4 {
		t.Fatalf("%d invites after reopen, want 4", got)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("whitelist file mode: %v %v", info, err)
	}

	// Permission: dave (below bob) cannot remove bob; a stranger cannot remove dave;
	// carol (above dave) can be removed by alice, which removes dave too.
	if s.CanRemove(dave, bob) {
		t.Fatal("an invitee may remove its inviter")
	}
	if _, err := s.Unallow(pk(t), dave); !errors.Is(err, ErrForbidden) {
		t.Fatalf("stranger removing dave: %v", err)
	}
	removed, err := s.Unallow(alice, carol)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != carol || removed[1] != dave {
		t.Fatalf("removed %v, want [carol dave]", removed)
	}
	if s.IsAllowed(carol) || s.IsAllowed(dave) || !s.IsAllowed(bob) || !s.IsAllowed(alice) {
		t.Fatal("chain removal removed the wrong keys")
	}
	for _, inv := range s.Invites() {
		if inv.Key == pendingByDave {
			t.Fatal("dave's pending invite survived dave's removal")
		}
	}
	if err := s.ClaimInvite(pendingByDave, pk(t)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claiming a removed user's invite: %v", err)
	}

	// Ban alice: bob goes with her; banned keys cannot be allowed again until unbanned.
	removed, err = s.Ban(alice, "abuse")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || s.IsAllowed(bob) || !s.IsBanned(alice) {
		t.Fatalf("ban removed %v", removed)
	}
	if err := s.Allow(admin, alice, ""); !errors.Is(err, ErrBanned) {
		t.Fatalf("allowing a banned key: %v", err)
	}
	if err := s.Unban(alice); err != nil {
		t.Fatal(err)
	}
	if s.IsAllowed(alice) {
		t.Fatal("unban re-allowed the key")
	}
	s = open(t, path, c, admin)
	if s.IsBanned(alice) || s.IsAllowed(bob) {
		t.Fatal("ban/unban state not persisted")
	}
}

func TestInviteExpiryAndQuotaRefund(t *testing.T) {
	c := clocktest.New(time.Unix(1_800_000_000, 0))
	admin := pk(t)
	s := open(t, filepath.Join(t.TempDir(), "a.json"), c, admin)
	w := pk(t)
	if err := s.Allow(admin, w, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(w, 1); err != nil {
		t.Fatal(err)
	}
	inv := pk(t)
	if err := s.AllowInvite(w, inv, c.Now().Add(-time.Second)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("past expiry: %v", err)
	}
	if err := s.AllowInvite(w, inv, c.Now().Add(365*24*time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expiry a year ahead: %v", err)
	}
	if err := s.AllowInvite(w, inv, c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s.QuotaLeft(w) != 0 {
		t.Fatalf("quota left %d, want 0", s.QuotaLeft(w))
	}
	c.Advance(2 * time.Minute)
	if err := s.ClaimInvite(inv, pk(t)); !errors.Is(err, ErrInviteExpired) {
		t.Fatalf("claiming an expired invite: %v", err)
	}
	if s.QuotaLeft(w) != 1 {
		t.Fatalf("expired unused invite did not give its slot back: %d", s.QuotaLeft(w))
	}
	if n, err := s.PruneInvites(c.Now()); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if s.QuotaLeft(admin) != -1 {
		t.Fatal("admins must be unlimited")
	}
	if _, err := s.Unallow(admin, admin); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing an admin: %v", err)
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.json")
	if err := os.WriteFile(path, []byte(`{"v":1,"allowed":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("a truncated whitelist opened without error")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.json"), Options{Admins: []string{"npub1zzz"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad admin key: %v", err)
	}
}
