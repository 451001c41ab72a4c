// Package keys keeps the worker's Nostr secret key on this device, encrypted at rest with
// NIP-49 (ncryptsec: scrypt + XChaCha20-Poly1305) under the worker's passphrase, in
// <datadir>/key.ncryptsec (mode 0600, directory 0700).
//
// The OS keyring is not used: no well-kept pure-Go keyring library is pinned in this
// project, and a headless tracker has no keyring daemon. NIP-49 is the at-rest mechanism.
//
// A Store is locked until Unlock (or Generate/Import) puts the key in memory. The key
// never reaches a log: errors name the file and the failed step, never the secret.
package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
	"github.com/nbd-wtf/go-nostr/nip49"

	"pow.do/shared/proto"
)

// FileName is the encrypted key's file name inside the data directory.
const FileName = "key.ncryptsec"

const (
	// DefaultLogN is scrypt's cost for real use (64 MiB, a fraction of a second).
	DefaultLogN = 16
	// MaxLogN bounds the cost read from a foreign ncryptsec: 2^20 needs 1 GiB of memory.
	// A hostile file must not make Unlock allocate more.
	MaxLogN = 20
	// MinPassphraseLen is the shortest passphrase accepted for a new key at rest.
	MinPassphraseLen = 8
)

var (
	// ErrNoKey: no key is stored yet (first run: Generate or Import).
	ErrNoKey = errors.New("no key stored on this device")
	// ErrExists: a key is already stored; it is never overwritten silently.
	ErrExists = errors.New("a key is already stored on this device")
	// ErrLocked: the key is stored but not unlocked.
	ErrLocked = errors.New("key is locked: unlock it with its passphrase")
	// ErrWrongPassphrase: the passphrase does not open the ncryptsec.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrWeakPassphrase: a new passphrase is too short.
	ErrWeakPassphrase = fmt.Errorf("passphrase too short: use at least %d characters", MinPassphraseLen)
	// ErrInvalidSecret: the text given to Import is not an nsec, hex key or ncryptsec.
	ErrInvalidSecret = errors.New("not a valid nsec, hex secret key or ncryptsec")
)

// Options configure a Store.
type Options struct {
	// LogN is scrypt's cost exponent for keys this store encrypts; 0 means DefaultLogN.
	// Tests use a small value (e.g. 4) to stay fast.
	LogN uint8
	// Logger receives notices (never a key); nil means slog.Default().
	Logger *slog.Logger
}

// Store is the worker's key on this device. It is safe for concurrent use.
type Store struct {
	dir  string
	path string
	logN uint8
	log  *slog.Logger

	mu sync.RWMutex
	sk string // hex; "" while locked
	pk string
}

// Open prepares the store in dataDir (created with mode 0700 if missing). It does not
// read the key: call Unlock.
func Open(dataDir string, opts Options) (*Store, error) {
	if opts.LogN == 0 {
		opts.LogN = DefaultLogN
	}
	if opts.LogN > MaxLogN {
		return nil, fmt.Errorf("keys: scrypt log_n %d above the maximum %d", opts.LogN, MaxLogN)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create data dir: %w", err)
	}
	s := &Store{dir: dataDir, path: filepath.Join(dataDir, FileName), logN: opts.LogN, log: opts.Logger}
	// A key file others can read is a leak waiting to happen: tighten it.
	if fi, err := os.Stat(s.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(s.path, 0o600); err != nil {
			return nil, fmt.Errorf("keys: tighten %s to 0600: %w", s.path, err)
		}
		s.log.Warn("key file was readable by others; mode set to 0600", "path", s.path)
	}
	return s, nil
}

// Path is the encrypted key file.
func (s *Store) Path() string { return s.path }

// Exists reports whether a key is stored.
func (s *Store) Exists() bool {
	_, err := os.Stat(s.path)
	return err == nil
}

// Locked reports whether the key is not in memory (stored or not).
func (s *Store) Locked() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sk == ""
}

// Lock forgets the key in memory; Unlock brings it back.
func (s *Store) Lock() {
	s.mu.Lock()
	s.sk, s.pk = "", ""
	s.mu.Unlock()
}

// PublicKey is the worker's hex pubkey; ErrLocked while locked.
func (s *Store) PublicKey() (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sk == "" {
		return "", ErrLocked
	}
	return s.pk, nil
}

// SecretKey is the worker's hex secret key for signing (publisher, join); ErrLocked while
// locked. Callers keep it in memory only and never log it.
func (s *Store) SecretKey() (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sk == "" {
		return "", ErrLocked
	}
	return s.sk, nil
}

// Generate makes a new key, stores it encrypted under passphrase and leaves it unlocked.
// It refuses to replace a stored key (ErrExists).
func (s *Store) Generate(passphrase string) (pubkey string, err error) {
	return s.store(nostr.GeneratePrivateKey(), passphrase, nip49.NotKnownToHaveBeenHandledInsecurely)
}

// Import stores a key the worker brings from another device and leaves it unlocked.
// secret is an nsec, 64 hex chars, or an ncryptsec; an ncryptsec is opened with
// passphrase. The key is stored encrypted under passphrase either way (use
// ImportNcryptsec when the export passphrase differs). It refuses to replace a stored key.
func (s *Store) Import(secret, passphrase string) (pubkey string, err error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(strings.ToLower(secret), "ncryptsec1") {
		return s.ImportNcryptsec(secret, passphrase, passphrase)
	}
	sk, err := parsePlainSecret(secret)
	if err != nil {
		return "", err
	}
	// The key travelled in plaintext: NIP-49's key security byte says so.
	return s.store(sk, passphrase, nip49.KnownToHaveBeenHandledInsecurely)
}

// ImportNcryptsec opens ncryptsec with exportPassphrase and stores the key encrypted
// under passphrase.
func (s *Store) ImportNcryptsec(ncryptsec, exportPassphrase, passphrase string) (pubkey string, err error) {
	sk, ksb, err := decrypt(strings.TrimSpace(ncryptsec), exportPassphrase)
	if err != nil {
		return "", fmt.Errorf("keys: import: %w", err)
	}
	return s.store(sk, passphrase, ksb)
}

// Unlock decrypts the stored key with passphrase. A wrong passphrase gives
// ErrWrongPassphrase; no stored key gives ErrNoKey.
func (s *Store) Unlock(passphrase string) error {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNoKey
	}
	if err != nil {
		return fmt.Errorf("keys: read %s: %w", s.path, err)
	}
	sk, _, err := decrypt(strings.TrimSpace(string(b)), passphrase)
	if err != nil {
		return fmt.Errorf("keys: unlock %s: %w", s.path, err)
	}
	pk, err := proto.PublicKey(sk)
	if err != nil {
		return fmt.Errorf("keys: unlock %s: stored key is not a valid secp256k1 key", s.path)
	}
	s.mu.Lock()
	s.sk, s.pk = sk, pk
	s.mu.Unlock()
	return nil
}

// Export returns the unlocked key as an ncryptsec under passphrase (which may differ from
// the one at rest), to move it to another device.
func (s *Store) Export(passphrase string) (string, error) {
	if err := checkPassphrase(passphrase); err != nil {
		return "", err
	}
	sk, err := s.SecretKey()
	if err != nil {
		return "", err
	}
	ksb := nip49.ClientDoesNotTrackThisData
	if b, err := os.ReadFile(s.path); err == nil {
		if info, err := inspect(strings.TrimSpace(string(b))); err == nil {
			ksb = info.ksb
		}
	}
	enc, err := nip49.Encrypt(sk, passphrase, s.logN, ksb)
	if err != nil {
		return "", fmt.Errorf("keys: export: encrypt failed")
	}
	return enc, nil
}

// ChangePassphrase re-encrypts the stored key under a new passphrase; the old one must
// open it.
func (s *Store) ChangePassphrase(old, passphrase string) error {
	if err := checkPassphrase(passphrase); err != nil {
		return err
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNoKey
	}
	if err != nil {
		return fmt.Errorf("keys: read %s: %w", s.path, err)
	}
	sk, ksb, err := decrypt(strings.TrimSpace(string(b)), old)
	if err != nil {
		return fmt.Errorf("keys: change passphrase: %w", err)
	}
	enc, err := nip49.Encrypt(sk, passphrase, s.logN, ksb)
	if err != nil {
		return fmt.Errorf("keys: change passphrase: encrypt failed")
	}
	return writeFileAtomic(s.path, []byte(enc+"\n"))
}

func (s *Store) store(sk, passphrase string, ksb nip49.KeySecurityByte) (string, error) {
	if err := checkPassphrase(passphrase); err != nil {
		return "", err
	}
	pk, err := proto.PublicKey(sk)
	if err != nil {
		return "", ErrInvalidSecret
	}
	enc, err := nip49.Encrypt(sk, passphrase, s.logN, ksb)
	if err != nil {
		return "", fmt.Errorf("keys: encrypt failed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Exists() {
		return "", ErrExists
	}
	if err := writeFileAtomic(s.path, []byte(enc+"\n")); err != nil {
		return "", err
	}
	s.sk, s.pk = sk, pk
	s.log.Info("worker key stored", "pubkey", pk, "path", s.path)
	return pk, nil
}

func checkPassphrase(p string) error {
	if len([]rune(p)) < MinPassphraseLen {
		return ErrWeakPassphrase
	}
	return nil
}

// parsePlainSecret reads an nsec or 64 hex chars (any case) into lowercase hex, checked
// to be a valid scalar. Its errors never repeat the input.
func parsePlainSecret(s string) (string, error) {
	var sk string
	switch {
	case strings.HasPrefix(strings.ToLower(s), "nsec1"):
		prefix, v, err := nip19.Decode(strings.ToLower(s))
		if err != nil || prefix != "nsec" {
			return "", ErrInvalidSecret
		}
		str, ok := v.(string)
		if !ok {
			return "", ErrInvalidSecret
		}
		sk = str
	case len(s) == 64:
		sk = strings.ToLower(s)
	default:
		return "", ErrInvalidSecret
	}
	if proto.CheckSecretKey(sk) != nil {
		return "", ErrInvalidSecret
	}
	return sk, nil
}

// writeFileAtomic writes data to path with mode 0600 through a synced temp file and a
// rename, then syncs the directory: a crash leaves the old file or the new, never half.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
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
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keys: rename into %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
