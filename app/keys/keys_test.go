package keys

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
	"github.com/nbd-wtf/go-nostr/nip49"
)

const (
	pass  = "correct horse battery"
	other = "another passphrase"
)

// open returns a store with a cheap scrypt cost and a logger writing to buf.
func open(t *testing.T, dir string, buf *bytes.Buffer) *Store {
	t.Helper()
	l := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(dir, Options{LogN: 4, Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerateUnlockRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	s := open(t, dir, &logs)
	if s.Exists() || !s.Locked() {
		t.Fatal("fresh store claims a key")
	}
	if err := s.Unlock(pass); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Unlock without key: %v, want ErrNoKey", err)
	}
	pk, err := s.Generate(pass)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := s.SecretKey()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := nostr.GetPublicKey(sk); want != pk {
		t.Fatalf("pubkey %s does not belong to the secret key", pk)
	}

	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %o, want 700", di.Mode().Perm())
	}
	raw, _ := os.ReadFile(s.Path())
	nsec, _ := nip19.EncodePrivateKey(sk)
	if !strings.HasPrefix(string(raw), "ncryptsec1") || strings.Contains(string(raw), sk) || strings.Contains(string(raw), nsec) {
		t.Fatalf("key file is not an ncryptsec or holds the plain key")
	}

	// A second process: locked until the right passphrase.
	s2 := open(t, dir, &logs)
	if !s2.Exists() || !s2.Locked() {
		t.Fatal("reopened store should hold a locked key")
	}
	if _, err := s2.SecretKey(); !errors.Is(err, ErrLocked) {
		t.Fatalf("SecretKey while locked: %v", err)
	}
	err = s2.Unlock("wrong passphrase!")
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("error does not say so: %v", err)
	}
	if err := s2.Unlock(pass); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.PublicKey(); got != pk {
		t.Fatalf("unlocked pubkey %s, want %s", got, pk)
	}
	s2.Lock()
	if !s2.Locked() {
		t.Fatal("Lock did not lock")
	}

	if _, err := s.Generate(pass); !errors.Is(err, ErrExists) {
		t.Fatalf("second Generate: %v, want ErrExists", err)
	}
	if strings.Contains(logs.String(), sk) || strings.Contains(logs.String(), nsec) {
		t.Fatal("the secret key reached the log")
	}
}

func TestExportImport(t *testing.T) {
	var logs bytes.Buffer
	a := open(t, t.TempDir(), &logs)
	pk, err := a.Generate(pass)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := a.Export(other)
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := a.SecretKey()
	got, err := nip49.Decrypt(exp, other)
	if err != nil || got != sk {
		t.Fatalf("export does not open with its passphrase to the same key (err %v)", err)
	}
	if _, err := nip49.Decrypt(exp, pass); err == nil {
		t.Fatal("export opens with the at-rest passphrase; it should use the one given")
	}

	// Another device imports with a different at-rest passphrase.
	b := open(t, t.TempDir(), &logs)
	if _, err := b.ImportNcryptsec(exp, "not it at all", pass); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("import with wrong export passphrase: %v", err)
	}
	if b.Exists() {
		t.Fatal("a failed import left a key file")
	}
	pkB, err := b.ImportNcryptsec(exp, other, "device b passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if pkB != pk {
		t.Fatalf("imported pubkey %s, want %s", pkB, pk)
	}
	b2 := open(t, b.dir, &logs)
	if err := b2.Unlock(other); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("device b key opens with the export passphrase: %v", err)
	}
	if err := b2.Unlock("device b passphrase"); err != nil {
		t.Fatal(err)
	}

	// Import (one passphrase) accepts an ncryptsec too.
	c := open(t, t.TempDir(), &logs)
	if pkC, err := c.Import(exp, other); err != nil || pkC != pk {
		t.Fatalf("Import(ncryptsec): %s, %v", pkC, err)
	}
}

func TestImportPlain(t *testing.T) {
	sk := nostr.GeneratePrivateKey()
	want, _ := nostr.GetPublicKey(sk)
	nsec, _ := nip19.EncodePrivateKey(sk)
	for name, secret := range map[string]string{"nsec": nsec, "hex": sk, "HEX": strings.ToUpper(sk), "spaces": "  " + nsec + "\n"} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			s := open(t, t.TempDir(), &logs)
			pk, err := s.Import(secret, pass)
			if err != nil {
				t.Fatal(err)
			}
			if pk != want {
				t.Fatalf("pubkey %s, want %s", pk, want)
			}
			raw, _ := os.ReadFile(s.Path())
			info, err := inspect(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if info.ksb != nip49.KnownToHaveBeenHandledInsecurely {
				t.Fatalf("key security byte %d: a key typed in plaintext must be marked as handled insecurely", info.ksb)
			}
			if strings.Contains(logs.String(), sk) || strings.Contains(logs.String(), nsec[5:]) {
				t.Fatal("the secret reached the log")
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	var logs bytes.Buffer
	s := open(t, t.TempDir(), &logs)
	if _, err := s.Generate("short"); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("short passphrase: %v", err)
	}
	zero := strings.Repeat("0", 64)
	order := "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141" // n: not a valid key
	for _, bad := range []string{"", "nsec1", "nsec1qqqq", "npub1xyz", zero, order, "zz" + strings.Repeat("0", 62), "hello"} {
		_, err := s.Import(bad, pass)
		if !errors.Is(err, ErrInvalidSecret) {
			t.Fatalf("Import(%q): %v, want ErrInvalidSecret", bad, err)
		}
		if bad != "" && len(bad) > 10 && strings.Contains(err.Error(), bad) {
			t.Fatalf("error repeats the secret: %v", err)
		}
	}
	if s.Exists() {
		t.Fatal("a refused import left a key file")
	}
	if _, err := s.Export(pass); !errors.Is(err, ErrLocked) {
		t.Fatalf("Export without key: %v", err)
	}
}

// encode5 renders bytes as bech32 data characters (no checksum): enough to reach the
// checks that run before nip49.Decrypt.
func encode5(b []byte) string {
	var out []byte
	var acc uint32
	bits := 0
	for _, x := range b {
		acc = acc<<8 | uint32(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, bech32Charset[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		out = append(out, bech32Charset[(acc<<(5-bits))&31])
	}
	return string(out)
}

func TestHostileNcryptsec(t *testing.T) {
	var logs bytes.Buffer
	s := open(t, t.TempDir(), &logs)
	good, err := nip49.Encrypt(nostr.GeneratePrivateKey(), pass, 4, nip49.ClientDoesNotTrackThisData)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != ncryptsecLen {
		t.Fatalf("a real ncryptsec is %d chars, the code expects %d", len(good), ncryptsecLen)
	}
	payload := make([]byte, ncryptsecBytes)
	payload[0] = 2
	payload[1] = 40 // 2^40 scrypt rounds: would exhaust memory
	costly := ncryptsecPrefix + encode5(payload) + "qqqqqq"
	payload[1] = 4
	payload[0] = 3
	version3 := ncryptsecPrefix + encode5(payload) + "qqqqqq"
	flipped := []byte(good)
	flipped[40] = map[bool]byte{true: 'q', false: 'p'}[flipped[40] != 'q']

	cases := map[string]string{
		"short":        "ncryptsec1qqqq",
		"truncated":    good[:len(good)-10],
		"cost":         costly,
		"version":      version3,
		"checksum":     string(flipped),
		"not bech32":   ncryptsecPrefix + strings.Repeat("b", ncryptsecDataLen+6),
		"wrong prefix": "ncryptsex1" + good[10:],
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.ImportNcryptsec(bad, pass, pass)
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("%v, want ErrInvalidSecret", err)
			}
		})
	}
	// The same checks guard Unlock against a tampered key file.
	if err := os.WriteFile(s.Path(), []byte(costly), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(pass); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("Unlock of a tampered file: %v", err)
	}
}

func TestLoosePermissionsTightened(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	s := open(t, dir, &logs)
	if _, err := s.Generate(pass); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, dir, &logs)
	fi, _ := os.Stat(s.Path())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o after reopen, want 600", fi.Mode().Perm())
	}
}

func TestChangePassphrase(t *testing.T) {
	var logs bytes.Buffer
	s := open(t, t.TempDir(), &logs)
	pk, _ := s.Generate(pass)
	if err := s.ChangePassphrase("wrong one here", other); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("change with wrong old passphrase: %v", err)
	}
	if err := s.ChangePassphrase(pass, other); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, s.dir, &logs)
	if err := s2.Unlock(pass); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase still opens the key: %v", err)
	}
	if err := s2.Unlock(other); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.PublicKey(); got != pk {
		t.Fatal("key changed with the passphrase")
	}
}

// TestDefaultCost stores a key at the real cost (2^16) once.
func TestDefaultCost(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Generate(pass); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path())
	info, err := inspect(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if info.logN != DefaultLogN {
		t.Fatalf("log_n %d at rest, want %d", info.logN, DefaultLogN)
	}
}
