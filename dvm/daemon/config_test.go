package daemon

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dvm.json")
	os.WriteFile(file, []byte(`{"data_dir": "/from/file", "relays": ["wss://file.example"], "listen": "127.0.0.1:9001",
		"workers": 3, "retry_min": "250ms", "ingest": {"future_skew": "30s", "keep_bundles": false, "blossom_hosts": ["cdn.example:443"]},
		"projects": [{"id": 1, "name": "Website", "customer": "ACME"}]}`), 0o600)
	env := map[string]string{
		"POWDO_DVM_CONFIG":   file,
		"POWDO_DVM_DATA_DIR": "/from/env",
		"POWDO_DVM_RELAYS":   "wss://env-a.example, wss://env-b.example/",
		"POWDO_DVM_WORKERS":  "5",
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := RegisterFlags(fs, true)
	if err := fs.Parse([]string{"--data-dir", "/from/flag", "--listen", "off"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.DataDir != "/from/flag":
		t.Errorf("data dir %q: the flag should win", c.DataDir)
	case strings.Join(c.Relays, " ") != "wss://env-a.example wss://env-b.example":
		t.Errorf("relays %v: the environment should win over the file", c.Relays)
	case c.Workers != 5:
		t.Errorf("workers %d: the environment should win", c.Workers)
	case c.Listen != "":
		t.Errorf("listen %q: off should disable it", c.Listen)
	case c.RetryMin.D() != 250*time.Millisecond || c.ReconnectMax.D() != 2*time.Minute:
		t.Errorf("durations %s %s: file value and default expected", c.RetryMin.D(), c.ReconnectMax.D())
	case len(c.Projects) != 1 || c.Projects[0].Name != "Website":
		t.Errorf("projects %+v", c.Projects)
	}
	p := c.IngestPolicy()
	if p.FutureSkew != 30*time.Second || p.KeepBundles || p.MaxAge != 90*24*time.Hour {
		t.Errorf("ingest policy %+v", p)
	}
	if h := c.BlossomHosts(); strings.Join(h, " ") != "env-a.example env-b.example cdn.example:443" {
		t.Errorf("blossom hosts %v", h)
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no relay", []string{"--data-dir", "/x"}, "at least one --relay"},
		{"http relay", []string{"--data-dir", "/x", "--relay", "http://r.example"}, "want ws://"},
		{"bad listen", []string{"--data-dir", "/x", "--relay", "wss://r", "--listen", "8080"}, "want host:port"},
		{"kimai without token", []string{"--data-dir", "/x", "--relay", "wss://r", "--kimai-url", "https://k"}, "--kimai-token-file"},
		{"bad log level", []string{"--data-dir", "/x", "--relay", "wss://r", "--log-level", "loud"}, "log level"},
		{"bad workers", []string{"--data-dir", "/x", "--relay", "wss://r", "--workers", "0"}, "workers 0"},
	} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		f := RegisterFlags(fs, true)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		_, err := f.Resolve(func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// Unknown fields in the file are refused, not ignored (a typo would silently do nothing).
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"relay": ["wss://r"]}`), 0o600)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := RegisterFlags(fs, true)
	fs.Parse([]string{"--config", file})
	if _, err := f.Resolve(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown config field: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dvm.key")
	pub, err := WriteNewKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o", st.Mode().Perm())
	}
	if _, err := WriteNewKey(p); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	sk, err := ReadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := nostr.GetPublicKey(sk); got != pub {
		t.Fatalf("read key gives %s, keygen said %s", got, pub)
	}

	// The same key as an nsec, and through a systemd credential directory.
	nsec, _ := nip19.EncodePrivateKey(sk)
	cred := filepath.Join(dir, "creds")
	os.Mkdir(cred, 0o700)
	os.WriteFile(filepath.Join(cred, CredentialName), []byte(nsec+"\n"), 0o400)
	t.Setenv("CREDENTIALS_DIRECTORY", cred)
	if got, err := ReadKey(""); err != nil || got != sk {
		t.Fatalf("credential: %v", err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(p, mode)
		_, err := ReadKey(p)
		if err == nil || !strings.Contains(err.Error(), "group or others") {
			t.Fatalf("mode %o: %v, want a refusal", mode, err)
		}
		if strings.Contains(err.Error(), sk) {
			t.Fatal("the error repeats the key")
		}
	}
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte("not a key"), 0o600)
	if _, err := ReadKey(p); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("garbage key: %v (must refuse without echoing the content)", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := ReadKey(""); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Fatalf("no key at all: %v", err)
	}
}

func TestConfigRefusesBadStaticCatalogue(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"data_dir": "/x", "relays": ["wss://r"], "projects": [{"id": 1, "name": "A"}],
		"activities": [{"id": 5, "name": "Dev", "project": 2}]}`), 0o600)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := RegisterFlags(fs, true)
	fs.Parse([]string{"--config", file})
	if _, err := f.Resolve(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "project 2 is not in the catalogue") {
		t.Fatalf("activity of an unknown project: %v", err)
	}
}
