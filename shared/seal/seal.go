// Package seal encrypts a plaintext bundle for Blossom and opens it again
// (PROTOCOL.md section 3): AES-256-GCM under a fresh random key and nonce, no
// additional data, x = sha256(ciphertext), ox = sha256(plaintext).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sizes fixed by the protocol.
const (
	KeySize   = 32
	NonceSize = 12
	TagSize   = 16
)

// Errors of Open and the parsers; match with errors.Is.
var (
	ErrKeySize           = errors.New("key is not 32 bytes")
	ErrNonceSize         = errors.New("nonce is not 12 bytes")
	ErrBadHex            = errors.New("not lowercase hex")
	ErrHashMismatch      = errors.New("ciphertext sha256 differs from x")
	ErrDecrypt           = errors.New("decryption failed: wrong key or nonce, or tampered data")
	ErrPlainHashMismatch = errors.New("plaintext sha256 differs from ox")
)

// Sealed is one encrypted bundle and what the kind-15 message needs to open it.
type Sealed struct {
	Ciphertext []byte // GCM output: sealed data followed by the 16-byte tag
	Key        [KeySize]byte
	Nonce      [NonceSize]byte
	X          string // hex sha256 of Ciphertext
	OX         string // hex sha256 of the plaintext
}

// KeyHex is the decryption-key tag value.
func (s Sealed) KeyHex() string { return hex.EncodeToString(s.Key[:]) }

// NonceHex is the decryption-nonce tag value.
func (s Sealed) NonceHex() string { return hex.EncodeToString(s.Nonce[:]) }

// Seal encrypts plain under a key and nonce drawn fresh from crypto/rand: a key is
// never reused, so a random 96-bit nonce is safe.
func Seal(plain []byte) (Sealed, error) {
	var s Sealed
	if _, err := rand.Read(s.Key[:]); err != nil {
		return Sealed{}, fmt.Errorf("seal: random key: %w", err)
	}
	if _, err := rand.Read(s.Nonce[:]); err != nil {
		return Sealed{}, fmt.Errorf("seal: random nonce: %w", err)
	}
	aead, err := newGCM(s.Key[:])
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: %w", err)
	}
	s.Ciphertext = aead.Seal(make([]byte, 0, len(plain)+TagSize), s.Nonce[:], plain, nil)
	s.X = hashHex(s.Ciphertext)
	s.OX = hashHex(plain)
	return s, nil
}

// Open checks sha256(ciphertext) against wantX before decrypting, decrypts, and checks
// sha256(plaintext) against wantOX. Hashes are compared case-insensitively.
func Open(ciphertext []byte, key, nonce []byte, wantX, wantOX string) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("open sealed bundle: %d-byte key: %w", len(key), ErrKeySize)
	}
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("open sealed bundle: %d-byte nonce: %w", len(nonce), ErrNonceSize)
	}
	if !hashEqual(ciphertext, wantX) {
		return nil, fmt.Errorf("open sealed bundle %.64s: %w", wantX, ErrHashMismatch)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("open sealed bundle %.64s: %w", wantX, err)
	}
	plain, err := aead.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("open sealed bundle %.64s: %w", wantX, ErrDecrypt)
	}
	if !hashEqual(plain, wantOX) {
		return nil, fmt.Errorf("open sealed bundle %.64s: plaintext: %w", wantX, ErrPlainHashMismatch)
	}
	return plain, nil
}

// ParseKey reads a decryption-key tag value: 64 lowercase hex chars.
func ParseKey(s string) ([KeySize]byte, error) {
	var k [KeySize]byte
	if err := parseHex(k[:], s, ErrKeySize); err != nil {
		return k, fmt.Errorf("decryption key: %w", err)
	}
	return k, nil
}

// ParseNonce reads a decryption-nonce tag value: 24 lowercase hex chars.
func ParseNonce(s string) ([NonceSize]byte, error) {
	var n [NonceSize]byte
	if err := parseHex(n[:], s, ErrNonceSize); err != nil {
		return n, fmt.Errorf("decryption nonce: %w", err)
	}
	return n, nil
}

func parseHex(dst []byte, s string, errSize error) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%d hex chars, want %d: %w", len(s), 2*len(dst), errSize)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ErrBadHex
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// hashEqual compares sha256(b) with a hex digest; a malformed digest never matches.
func hashEqual(b []byte, wantHex string) bool {
	want, err := hex.DecodeString(wantHex)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	sum := sha256.Sum256(b)
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}
