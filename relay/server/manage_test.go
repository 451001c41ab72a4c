package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

func TestInvitesOverNIP86(t *testing.T) {
	admin, dvm := newKey(t), newKey(t)
	s := start(t, "", func(c *Config) { c.Admins = []string{admin.pk} })
	call := func(k key, method string, params ...any) (int, string) {
		t.Helper()
		st, _, msg, _ := manage(t, s, &k, method, params...)
		return st, msg
	}
	mustOK := func(k key, method string, params ...any) {
		t.Helper()
		if st, msg := call(k, method, params...); st != 200 {
			t.Fatalf("%s: %d %s", method, st, msg)
		}
	}
	mustOK(admin, "allowpubkey", dvm.pk, "the DVM")
	mustOK(admin, "setinvitequota", dvm.pk, 2)

	// The DVM issues an invite; the worker's tracker swaps it for its real key.
	invite, alice := newKey(t), newKey(t)
	exp := time.Now().Add(time.Hour).Unix()
	mustOK(dvm, "allowinvite", invite.pk, exp)
	if c := dial(t, s, &invite); !strings.HasPrefix(c.publish(giftWrap(t, invite, dvm.pk)), "restricted:") {
		t.Fatal("a pending invite key may publish")
	}
	mustOK(invite, "claiminvite", alice.pk)
	if msg := dial(t, s, &alice).publish(giftWrap(t, alice, dvm.pk)); msg != "" {
		t.Fatalf("claimed worker cannot publish: %s", msg)
	}
	// The invite swap works once.
	if st, msg := call(invite, "claiminvite", newKey(t).pk); st != http.StatusConflict || !strings.Contains(msg, "already used") {
		t.Fatalf("second claim: %d %s", st, msg)
	}
	// Expired invites cannot be claimed (expiry in the past is refused outright).
	if st, _ := call(dvm, "allowinvite", newKey(t).pk, time.Now().Add(-time.Minute).Unix()); st != http.StatusBadRequest {
		t.Fatalf("invite expiring in the past: %d", st)
	}

	// Alice gets a quota too and invites bob; bob invites carol: dvm → alice → bob → carol.
	mustOK(admin, "setinvitequota", alice.pk, 1)
	inv2, bob := newKey(t), newKey(t)
	mustOK(alice, "allowinvite", inv2.pk, exp)
	mustOK(inv2, "claiminvite", bob.pk)
	if st, msg := call(alice, "allowinvite", newKey(t).pk, exp); st != http.StatusForbidden || !strings.Contains(msg, "quota") {
		t.Fatalf("invite over quota: %d %s", st, msg)
	}
	mustOK(admin, "setinvitequota", bob.pk, 1)
	inv3, carol := newKey(t), newKey(t)
	mustOK(bob, "allowinvite", inv3.pk, exp)
	mustOK(inv3, "claiminvite", carol.pk)

	_, _, _, res := manage(t, s, &admin, "listinvites")
	js, _ := json.Marshal(res)
	var invites []struct {
		Key       string `json:"key"`
		By        string `json:"by"`
		ClaimedBy string `json:"claimed_by"`
	}
	json.Unmarshal(js, &invites)
	claimed := map[string]string{}
	for _, inv := range invites {
		claimed[inv.Key] = inv.By + ">" + inv.ClaimedBy
	}
	if len(invites) != 3 || claimed[invite.pk] != dvm.pk+">"+alice.pk || claimed[inv2.pk] != alice.pk+">"+bob.pk || claimed[inv3.pk] != bob.pk+">"+carol.pk {
		t.Fatalf("listinvites: %s", js)
	}

	// Carol cannot remove bob (she is below him); bob can remove carol (above her).
	if st, _ := call(carol, "unallowpubkey", bob.pk); st != http.StatusForbidden {
		t.Fatalf("invitee removing its inviter: %d", st)
	}
	// Removing alice (by the DVM, above her) removes bob and carol with her.
	carolConn := dial(t, s, &carol)
	mustOK(dvm, "unallowpubkey", alice.pk)
	for _, k := range []key{alice, bob, carol} {
		if s.Access().IsAllowed(k.pk) {
			t.Fatalf("%s still allowed after its inviter chain was removed", k.pk[:8])
		}
	}
	if msg := carolConn.publish(giftWrap(t, carol, dvm.pk)); !strings.HasPrefix(msg, "restricted:") {
		t.Fatalf("removed key on a connection AUTHed before its removal: %q", msg)
	}
	if !s.Access().IsAllowed(dvm.pk) {
		t.Fatal("the remover was removed")
	}
	// Banning a key removes its invitees too.
	inv4, dave := newKey(t), newKey(t)
	mustOK(dvm, "allowinvite", inv4.pk, exp)
	mustOK(inv4, "claiminvite", dave.pk)
	mustOK(admin, "banpubkey", dvm.pk, "test")
	if s.Access().IsAllowed(dave.pk) {
		t.Fatal("banning the DVM kept its invitee")
	}
	if st, _, _, res := manage(t, s, &admin, "listbannedpubkeys"); st != 200 || !strings.Contains(toJSON(res), dvm.pk) {
		t.Fatalf("listbannedpubkeys: %d %v", st, res)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestNIP98Failures(t *testing.T) {
	admin := newKey(t)
	s := start(t, "", func(c *Config) { c.Admins = []string{admin.pk} })
	body := []byte(`{"method":"listallowedpubkeys","params":[]}`)
	post := func(auth string, b []byte) answer {
		return do(t, http.MethodPost, s.URL()+"/", auth, b, map[string]string{"Content-Type": "application/nostr+json+rpc"})
	}
	header := func(ev nostr.Event, enc *base64.Encoding) string {
		js, _ := json.Marshal(ev)
		return "Nostr " + enc.EncodeToString(js)
	}
	signed := func(mod func(*nostr.Event)) nostr.Event {
		ev := nip98(t, admin, s.URL()+"/", body)
		mod(&ev)
		ev.Sign(admin.sk)
		return ev
	}
	cases := map[string]string{
		"missing":      "",
		"not base64":   "Nostr %%%",
		"wrong kind":   header(signed(func(e *nostr.Event) { e.Kind = 24242 }), base64.StdEncoding),
		"stale":        header(signed(func(e *nostr.Event) { e.CreatedAt -= 600 }), base64.StdEncoding),
		"other url":    header(signed(func(e *nostr.Event) { e.Tags[0][1] = "https://other.example/" }), base64.StdEncoding),
		"other method": header(signed(func(e *nostr.Event) { e.Tags[1][1] = "GET" }), base64.StdEncoding),
		"bad payload":  header(signed(func(e *nostr.Event) { e.Tags[2][1] = sha([]byte("x")) }), base64.StdEncoding),
		"no u tag":     header(signed(func(e *nostr.Event) { e.Tags = e.Tags[1:] }), base64.StdEncoding),
		"bad sig": func() string {
			ev := signed(func(*nostr.Event) {})
			ev.Sig = strings.Repeat("0", 128)
			return header(ev, base64.StdEncoding)
		}(),
	}
	for name, auth := range cases {
		a := post(auth, body)
		var resp struct{ Error string }
		json.Unmarshal(a.body, &resp)
		if a.status != http.StatusUnauthorized || resp.Error == "" {
			t.Errorf("%s: %v %s", name, a, a.body)
		}
	}
	// Unpadded base64url works, and the same auth event cannot be replayed.
	good := header(signed(func(*nostr.Event) {}), base64.RawURLEncoding)
	if a := post(good, body); a.status != 200 {
		t.Fatalf("valid base64url NIP-98: %v %s", a, a.body)
	}
	if a := post(good, body); a.status != http.StatusUnauthorized || !strings.Contains(string(a.body), "already used") {
		t.Fatalf("replayed NIP-98: %v %s", a, a.body)
	}
	// A huge body is refused before it is read.
	huge := bytes.Repeat([]byte(" "), 200<<10)
	if a := post(header(signed(func(*nostr.Event) {}), base64.StdEncoding), huge); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("200 KiB management body: %v", a)
	}
	// Unknown method and bad params.
	for _, c := range []struct {
		body string
		want int
	}{{`{"method":"rmrf","params":[]}`, 400}, {`{"method":"allowpubkey","params":["nothex"]}`, 400}, {`{"method":"allowinvite","params":["` + admin.pk + `", "soon"]}`, 400}, {`not json`, 400}} {
		b := []byte(c.body)
		ev := nip98(t, admin, s.URL()+"/", b)
		if a := post(header(ev, base64.StdEncoding), b); a.status != c.want || a.reason == "" {
			t.Errorf("%s: %v", c.body, a)
		}
	}
}
