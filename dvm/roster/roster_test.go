package roster_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"rsc.io/qr"

	"pow.do/dvm/e2e"
	"pow.do/dvm/roster"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/invite"
	"pow.do/shared/nip86"
)

// The terminal rendering decodes back to exactly the QR modules (light = block).
func TestQRRendersTheCode(t *testing.T) {
	text := "powdo://join?dvm=npub1xyz&relay=wss%3A%2F%2Frelay.example&secret=nsec1abc&name=Bob"
	out, err := roster.QR(text)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := qr.Encode(text, qr.M)
	const quiet = 2
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	n := code.Size + 2*quiet
	if len(rows) != (n+1)/2 {
		t.Fatalf("%d text rows for %d modules", len(rows), n)
	}
	for ry, row := range rows {
		cells := []rune(row)
		if len(cells) != n {
			t.Fatalf("row %d has %d cells, want %d", ry, len(cells), n)
		}
		for x, c := range cells {
			top := c == '█' || c == '▀'
			bottom := c == '█' || c == '▄'
			for i, light := range []bool{top, bottom} {
				y := 2*ry + i
				if y >= n {
					continue
				}
				if want := !code.Black(x-quiet, y-quiet); light != want {
					t.Fatalf("module (%d,%d): light=%v, want %v", x, y, light, want)
				}
			}
		}
	}
}

// An invite is registered on the relay before it is stored; a relay that refuses (the DVM
// is not its admin) leaves nothing behind.
func TestCreateInvite(t *testing.T) {
	dvm := e2e.NewKey()
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir(), sqlite.WithLogger(e2e.Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	stranger := e2e.StartRelay(t, e2e.RelayOptions{})
	m := &roster.Manager{Store: db, Relays: []string{stranger.WS}, SecretKey: dvm.SK, Log: e2e.Quiet()}
	_, err = m.CreateInvite(ctx, roster.InviteRequest{Name: "Eve", Expires: time.Hour})
	if !nip86.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("relay where the DVM is no admin: %v, want 403", err)
	}
	if invs, _ := db.Invites(ctx); len(invs) != 0 {
		t.Fatalf("invite stored although the relay refused it: %+v", invs)
	}

	relay := e2e.StartRelay(t, e2e.RelayOptions{Admins: []string{dvm.PK}})
	m.Relays = []string{relay.WS}
	c, err := m.CreateInvite(ctx, roster.InviteRequest{Name: "Bob", KimaiUserID: 3, Expires: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := invite.Parse(c.Link.String())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := parsed.InviteKey()
	if key != c.Invite.Pubkey || parsed.DVM != dvm.PK || parsed.Blossoms[0] != relay.HTTP {
		t.Fatalf("link %s for invite %s", parsed.Redacted(), c.Invite.Pubkey)
	}
	if strings.Contains(parsed.Redacted(), parsed.Secret) {
		t.Fatal("redacted link shows the secret")
	}
	inv, err := db.Invite(ctx, key)
	if err != nil || inv.KimaiUserID != 3 || inv.ExpiresAt.Sub(time.Now()) < time.Hour {
		t.Fatalf("stored invite %+v (err %v)", inv, err)
	}
	found := false
	for _, ri := range relay.Server().Access().Invites() {
		found = found || ri.Key == key
	}
	if !found {
		t.Fatal("invite not registered on the relay")
	}
	if _, err := m.CreateInvite(ctx, roster.InviteRequest{Name: "x", Expires: 0}); err == nil {
		t.Fatal("invite without expiry accepted")
	}
	if _, err := (&roster.Manager{Store: db, SecretKey: dvm.SK}).Remove(ctx, e2e.NewKey().PK); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing a stranger: %v", err)
	}
}
