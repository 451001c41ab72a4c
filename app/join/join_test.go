package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/app/engineapi"
	"pow.do/app/keys"
	"pow.do/app/publisher/fakedvm"
	"pow.do/app/publisher/relayproc"
	"pow.do/shared/invite"
	"pow.do/shared/nip86"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "powdo-relay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	relayBin, err = relayproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type key struct{ sk, pk string }

func newKey() key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return key{sk, pk}
}

const passphrase = "worker passphrase"

type env struct {
	ctx   context.Context
	relay *relayproc.Relay
	admin key
	dvm   *fakedvm.DVM
	cat   proto.Catalogue
}

func setup(t *testing.T) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := &env{ctx: ctx, admin: newKey()}
	dvmKey := newKey()
	e.relay = relayproc.Start(t, relayproc.Options{Bin: relayBin, DataDir: t.TempDir(), Admins: []string{e.admin.pk}, Allow: []string{dvmKey.pk}})
	dvm, err := fakedvm.Start(ctx, e.relay.WS(), dvmKey.sk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	e.cat = proto.Catalogue{UpdatedAt: time.Now().UTC().Truncate(time.Second), WorkerName: "Alice",
		Projects:   []proto.Project{{ID: 12, Name: "Website", Customer: "ACME"}},
		Activities: []proto.Activity{{ID: 5, Name: "Development"}}, Policy: proto.DefaultPolicy()}
	dvm.SetCatalogue(&e.cat)
	e.dvm = dvm
	return e
}

// newInvite allows a fresh invite key on the relay as the admin and returns its link.
func (e *env) newInvite(t *testing.T) (invite.Link, string) {
	t.Helper()
	inv := newKey()
	if err := (&nip86.Client{SecretKey: e.admin.sk}).AllowInvite(e.ctx, e.relay.WS(), inv.pk, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	l := invite.Link{DVM: e.dvm.PK, Relays: []string{e.relay.WS()}, Blossoms: []string{e.relay.HTTP()}, Secret: inv.sk, Name: "Alice"}
	return l, l.String()
}

func (e *env) allowed(t *testing.T) map[string]bool {
	t.Helper()
	list, err := (&nip86.Client{SecretKey: e.admin.sk}).ListAllowed(e.ctx, e.relay.WS())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, x := range list {
		m[x.Pubkey] = true
	}
	return m
}

func keyStore(t *testing.T, dir string) *keys.Store {
	ks, err := keys.Open(dir, keys.Options{LogN: 4, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func problemCode(t *testing.T, err error) *engineapi.Problem {
	t.Helper()
	var p *engineapi.Problem
	if !errors.As(err, &p) {
		t.Fatalf("error is not a Problem: %v", err)
	}
	return p
}

func TestJoinAgainstRealRelay(t *testing.T) {
	e := setup(t)
	inv, link := e.newInvite(t)
	dir := t.TempDir()
	ks := keyStore(t, dir)
	res, err := Join(e.ctx, link, ks, Options{DataDir: dir, Passphrase: passphrase, Host: "laptop", CatalogueTimeout: 30 * time.Second, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	workerPK, _ := ks.PublicKey()
	workerSK, _ := ks.SecretKey()

	// The relay allows the new key, and it can use the relay.
	if !e.allowed(t)[workerPK] {
		t.Fatal("the relay does not list the worker as allowed")
	}
	c, err := relayconn.Dial(e.ctx, e.relay.WS(), workerSK, relayconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(e.ctx, "check", nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {workerPK}}})
	if err != nil {
		t.Fatal(err)
	}
	for eose := false; !eose; {
		if _, eose, err = sub.Next(e.ctx); err != nil {
			t.Fatalf("worker refused by the relay after joining (or no EOSE): %v", err)
		}
	}
	c.Close()

	// The DVM got a join request with a valid proof by the invite key.
	msgs, senders := e.dvm.Messages()
	var jr *proto.JoinRequest
	for i, m := range msgs {
		if j, ok := m.(proto.JoinRequest); ok && senders[i] == workerPK {
			jr = &j
		}
	}
	if jr == nil {
		t.Fatal("the DVM got no join request from the worker")
	}
	inviteKey, _ := inv.InviteKey()
	if err := proto.VerifyInviteProof(jr.Proof, e.dvm.PK, workerPK, time.Now()); err != nil || jr.Proof.PubKey != inviteKey {
		t.Fatalf("invite proof: %v (signer %s, invite %s)", err, jr.Proof.PubKey, inviteKey)
	}
	if jr.Host != "laptop" || jr.AppVersion != DefaultAppVersion {
		t.Fatalf("join request fields: %+v", jr)
	}

	// The catalogue came back and the pairing is saved without secrets.
	if res.Catalogue == nil || res.Catalogue.WorkerName != "Alice" || res.Catalogue.Projects[0].Name != "Website" {
		t.Fatalf("catalogue: %+v", res.Catalogue)
	}
	fp, _ := invite.Fingerprint(e.dvm.PK, workerPK)
	if res.Config.Fingerprint != fp || len(strings.Split(fp, "-")) != 6 {
		t.Fatalf("fingerprint %q, want %q", res.Config.Fingerprint, fp)
	}
	path := filepath.Join(dir, ConfigName)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v, mode %v", err, fi.Mode())
	}
	raw, _ := os.ReadFile(path)
	nsecInv, _ := nip19.EncodePrivateKey(inv.Secret)
	nsecW, _ := nip19.EncodePrivateKey(workerSK)
	for _, secret := range []string{inv.Secret, workerSK, nsecInv, nsecW} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("config.json holds a secret key")
		}
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DVM != e.dvm.PK || cfg.Worker != workerPK || cfg.Relays[0] != e.relay.WS() || cfg.Blossoms[0] != e.relay.HTTP() || cfg.Fingerprint != fp || cfg.InviteKey != inviteKey {
		t.Fatalf("saved config %+v", cfg)
	}

	// Joining again on this device with the same link resends the request, no new claim.
	ks2 := keyStore(t, dir) // a restart: locked until the passphrase
	if _, err := Join(e.ctx, link, ks2, Options{DataDir: dir, Passphrase: passphrase, CatalogueTimeout: -1, Logger: testLog(t)}); err != nil {
		t.Fatalf("retry on the same device: %v", err)
	}
	if pk, _ := ks2.PublicKey(); pk != workerPK {
		t.Fatal("retry made a new key")
	}

	// Another device with the same invite: refused, with words that say what to do.
	dir2 := t.TempDir()
	other := keyStore(t, dir2)
	_, err = Join(e.ctx, link, other, Options{DataDir: dir2, Passphrase: passphrase, CatalogueTimeout: -1, Logger: testLog(t)})
	p := problemCode(t, err)
	if p.Code != engineapi.ProblemInviteExpired || p.Message != "invite expired or already used" || !strings.Contains(p.Action, "new invite link") {
		t.Fatalf("second claim: %+v", p)
	}
	otherPK, _ := other.PublicKey()
	if e.allowed(t)[otherPK] {
		t.Fatal("the second claimant was allowed")
	}
	if _, err := LoadConfig(dir2); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("a failed join saved a config: %v", err)
	}
	if strings.Contains(err.Error(), inv.Secret) || strings.Contains(p.Message+p.Action, nsecInv) {
		t.Fatal("the error shows the invite secret")
	}
}

func TestJoinRefusals(t *testing.T) {
	e := setup(t)
	t.Run("not an invite", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Join(e.ctx, "https://example.com/join?dvm=x", keyStore(t, dir), Options{DataDir: dir, Passphrase: passphrase})
		if p := problemCode(t, err); p.Code != engineapi.ProblemInviteInvalid {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("unknown invite", func(t *testing.T) {
		l := invite.Link{DVM: e.dvm.PK, Relays: []string{e.relay.WS()}, Blossoms: []string{e.relay.HTTP()}, Secret: newKey().sk}
		dir := t.TempDir()
		_, err := Join(e.ctx, l.String(), keyStore(t, dir), Options{DataDir: dir, Passphrase: passphrase})
		p := problemCode(t, err)
		if p.Code != engineapi.ProblemInviteExpired || !strings.Contains(p.Action, "new invite link") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("relay unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		l := invite.Link{DVM: e.dvm.PK, Relays: []string{"ws://" + addr}, Blossoms: []string{"http://" + addr}, Secret: newKey().sk}
		dir := t.TempDir()
		_, err = Join(e.ctx, l.String(), keyStore(t, dir), Options{DataDir: dir, Passphrase: passphrase})
		if p := problemCode(t, err); p.Code != engineapi.ProblemRelayUnreachable || !strings.Contains(p.Action, "network") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		dir := t.TempDir()
		ks := keyStore(t, dir)
		if _, err := ks.Generate(passphrase); err != nil {
			t.Fatal(err)
		}
		_, link := e.newInvite(t)
		_, err := Join(e.ctx, link, keyStore(t, dir), Options{DataDir: dir, Passphrase: "not the passphrase"})
		if p := problemCode(t, err); p.Code != engineapi.ProblemWrongPassphrase {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("weak passphrase", func(t *testing.T) {
		dir := t.TempDir()
		_, link := e.newInvite(t)
		_, err := Join(e.ctx, link, keyStore(t, dir), Options{DataDir: dir, Passphrase: "short"})
		if p := problemCode(t, err); p.Code != engineapi.ProblemInvalidInput {
			t.Fatalf("%+v", p)
		}
	})
}

// TestJoinRetryAfterFailedRequest: the claim succeeds but the join request cannot go out
// (the relay does not yet accept wraps for the DVM). The device is not joined; once the
// employer fixes the relay, joining again with the same link works without a second
// claim (which the relay would refuse).
func TestJoinRetryAfterFailedRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, dvmKey, inv := newKey(), newKey(), newKey()
	relay := relayproc.Start(t, relayproc.Options{Bin: relayBin, DataDir: t.TempDir(), Admins: []string{admin.pk}})
	if err := (&nip86.Client{SecretKey: admin.sk}).AllowInvite(ctx, relay.WS(), inv.pk, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	link := invite.Link{DVM: dvmKey.pk, Relays: []string{relay.WS()}, Blossoms: []string{relay.HTTP()}, Secret: inv.sk}.String()
	dir := t.TempDir()
	ks := keyStore(t, dir)
	opts := Options{DataDir: dir, Passphrase: passphrase, CatalogueTimeout: 20 * time.Second, Logger: testLog(t)}
	_, err := Join(ctx, link, ks, opts)
	p := problemCode(t, err)
	if p.Code != engineapi.ProblemKeyNotAllowed || !strings.Contains(p.Message, "DVM") || !strings.Contains(p.Action, "same link") {
		t.Fatalf("join request refused: %+v", p)
	}
	if _, err := LoadConfig(dir); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("a device whose join request never went out counts as joined: %v", err)
	}

	if err := (&nip86.Client{SecretKey: admin.sk}).AllowPubkey(ctx, relay.WS(), dvmKey.pk, "the DVM"); err != nil {
		t.Fatal(err)
	}
	dvm, err := fakedvm.Start(ctx, relay.WS(), dvmKey.sk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	cat := proto.Catalogue{UpdatedAt: time.Now().UTC().Truncate(time.Second), WorkerName: "Bob", Policy: proto.DefaultPolicy()}
	dvm.SetCatalogue(&cat)
	res, err := Join(ctx, link, keyStore(t, dir), opts)
	if err != nil {
		t.Fatalf("retry with the same link: %v", err)
	}
	if res.Catalogue == nil || res.Catalogue.WorkerName != "Bob" {
		t.Fatalf("catalogue after retry: %+v", res.Catalogue)
	}
	if _, err := LoadConfig(dir); err != nil {
		t.Fatalf("joined device has no config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, pendingName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("join progress file left behind")
	}
}
