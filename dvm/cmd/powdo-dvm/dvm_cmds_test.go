package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/e2e"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/invite"
)

func TestKeygen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dvm.key")
	out, errOut, code := runCLI(t, "keygen", "--out", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	b, _ := os.ReadFile(p)
	sk := strings.TrimSpace(string(b))
	pub, _ := nostr.GetPublicKey(sk)
	if !strings.Contains(out, pub) || strings.Contains(out, sk) || strings.Contains(errOut, sk) {
		t.Fatalf("output must show the pubkey and never the secret:\n%s%s", out, errOut)
	}
	if _, errOut, code := runCLI(t, "keygen", "--out", p); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second keygen: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(p); string(after) != string(b) {
		t.Fatal("keygen changed an existing key")
	}
}

func TestRunRefusesReadableKey(t *testing.T) {
	dir := t.TempDir()
	k := e2e.NewKey()
	p := filepath.Join(dir, "dvm.key")
	os.WriteFile(p, []byte(k.SK), 0o644)
	os.Chmod(p, 0o644)
	data := filepath.Join(dir, "data")
	_, errOut, code := runCLI(t, "run", "--key-file", p, "--data-dir", data, "--relay", "ws://127.0.0.1:1", "--listen", "off")
	if code != 1 || !strings.Contains(errOut, "group or others") || strings.Contains(errOut, k.SK) {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("the data directory was created before the key was checked")
	}
}

func TestInviteAndWorkersCommands(t *testing.T) {
	dvm, worker := e2e.NewKey(), e2e.NewKey()
	relay := e2e.StartRelay(t, e2e.RelayOptions{Admins: []string{dvm.PK}})
	dir := t.TempDir()
	keyFile := e2e.WriteKeyFile(t, dir, dvm)
	data := filepath.Join(dir, "data")
	common := []string{"--data-dir", data, "--key-file", keyFile, "--relay", relay.WS}

	out, errOut, code := runCLI(t, append([]string{"invite", "--name", "Bob", "--kimai-user", "4", "--expires", "2h", "--https-host", "dvm.example"}, common...)...)
	if code != 0 {
		t.Fatalf("invite: exit %d %s", code, errOut)
	}
	var link invite.Link
	var httpsForm string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "powdo://") {
			l, err := invite.Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			link = l
		}
		if strings.HasPrefix(line, "https://dvm.example/join#") {
			httpsForm = line
		}
	}
	if link.DVM != dvm.PK || link.Name != "Bob" || httpsForm == "" {
		t.Fatalf("invite output:\n%s", out)
	}
	if !strings.Contains(out, "█") {
		t.Fatal("no QR code printed")
	}
	if strings.Contains(errOut, link.Secret) {
		t.Fatal("the secret reached the log")
	}

	ctx := context.Background()
	db, err := sqlite.Open(data, sqlite.WithLogger(e2e.Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := link.InviteKey()
	if inv, err := db.Invite(ctx, key); err != nil || inv.KimaiUserID != 4 || inv.Name != "Bob" {
		t.Fatalf("stored invite %+v (err %v)", inv, err)
	}
	if err := db.AddWorker(ctx, store.Worker{Pubkey: worker.PK, Name: "Carol", JoinedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if _, errOut, code := runCLI(t, append([]string{"workers", "map", worker.PK, "9"}, common...)...); code != 0 {
		t.Fatalf("map: exit %d %s", code, errOut)
	}
	out, errOut, code = runCLI(t, append([]string{"workers", "list"}, common...)...)
	fp, _ := invite.Fingerprint(dvm.PK, worker.PK)
	if code != 0 || !strings.Contains(out, "Carol") || !strings.Contains(out, fp) || !strings.Contains(out, " 9 ") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, append([]string{"workers", "remove", "npub1nonsense"}, common...)...); code != 2 {
		t.Fatalf("remove with a bad pubkey: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, append([]string{"workers", "remove", worker.PK}, common...)...); code != 0 {
		t.Fatalf("remove: exit %d %s", code, errOut)
	}
	out, _, _ = runCLI(t, append([]string{"workers", "list"}, common...)...)
	if strings.Contains(out, "Carol") {
		t.Fatalf("removed worker still listed:\n%s", out)
	}
	out, _, _ = runCLI(t, append([]string{"workers", "list", "--all"}, common...)...)
	if !strings.Contains(out, "Carol") || !strings.Contains(out, "removed") {
		t.Fatalf("--all does not show the removed worker:\n%s", out)
	}
}
