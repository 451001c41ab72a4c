package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func plaintext(n int) []byte {
	p := make([]byte, n)
	rand.NewChaCha8([32]byte{7}).Read(p)
	return p
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 256 << 10} {
		plain := plaintext(n)
		s, err := Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Ciphertext) != n+TagSize {
			t.Errorf("n=%d: ciphertext is %d bytes, want plaintext+16", n, len(s.Ciphertext))
		}
		if s.X != sha(s.Ciphertext) || s.OX != sha(plain) {
			t.Errorf("n=%d: x/ox are not the sha256 of ciphertext/plaintext", n)
		}
		if n > 0 && bytes.Contains(s.Ciphertext, plain[:min(n, 64)]) {
			t.Errorf("n=%d: ciphertext contains the plaintext", n)
		}
		// The tag values go through the parsers as the DVM receives them.
		key, err := ParseKey(s.KeyHex())
		if err != nil {
			t.Fatal(err)
		}
		nonce, err := ParseNonce(s.NonceHex())
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(s.Ciphertext, key[:], nonce[:], s.X, s.OX)
		if err != nil {
			t.Fatalf("n=%d: Open: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: plaintext differs after the round trip", n)
		}
		// Upper-case digests are the same hashes.
		if _, err := Open(s.Ciphertext, key[:], nonce[:], strings.ToUpper(s.X), strings.ToUpper(s.OX)); err != nil {
			t.Errorf("n=%d: upper-case x/ox: %v", n, err)
		}
	}
}

// The wire format is plain GCM output, no nonce prefix: a stock AES-GCM opens it.
func TestFormatIsPlainGCM(t *testing.T) {
	plain := plaintext(5000)
	s, err := Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(s.Key[:])
	aead, _ := cipher.NewGCM(block)
	got, err := aead.Open(nil, s.Nonce[:], s.Ciphertext, nil)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("stock AES-GCM cannot open it: %v", err)
	}
}

// Known answer: AES-256-GCM test case 14 of McGrew & Viega, "The Galois/Counter Mode of
// Operation" (zero key, zero IV, 16 zero bytes).
func TestOpenKnownAnswer(t *testing.T) {
	ct, _ := hex.DecodeString("cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
	plain := make([]byte, 16)
	got, err := Open(ct, make([]byte, 32), make([]byte, 12), sha(ct), sha(plain))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("test vector: %v, %x", err, got)
	}
}

func TestTamperingIsRefused(t *testing.T) {
	plain := plaintext(4096)
	s, err := Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	ct := s.Ciphertext
	last := len(ct) - 1
	for _, tc := range []struct {
		name       string
		ct         []byte
		key, nonce []byte
		x, ox      string
		want       error
	}{
		// x is recomputed where the test wants GCM itself to catch the change.
		{"ciphertext bit, x recomputed", flip(ct, 10), s.Key[:], s.Nonce[:], sha(flip(ct, 10)), s.OX, ErrDecrypt},
		{"ciphertext bit, old x", flip(ct, 10), s.Key[:], s.Nonce[:], s.X, s.OX, ErrHashMismatch},
		{"tag bit", flip(ct, last), s.Key[:], s.Nonce[:], sha(flip(ct, last)), s.OX, ErrDecrypt},
		{"tag cut off", ct[:len(ct)-TagSize], s.Key[:], s.Nonce[:], sha(ct[:len(ct)-TagSize]), s.OX, ErrDecrypt},
		{"shorter than a tag", ct[:5], s.Key[:], s.Nonce[:], sha(ct[:5]), s.OX, ErrDecrypt},
		{"empty", nil, s.Key[:], s.Nonce[:], sha(nil), s.OX, ErrDecrypt},
		{"nonce bit", ct, s.Key[:], flip(s.Nonce[:], 0), s.X, s.OX, ErrDecrypt},
		{"key bit", ct, flip(s.Key[:], 31), s.Nonce[:], s.X, s.OX, ErrDecrypt},
		{"wrong ox", ct, s.Key[:], s.Nonce[:], s.X, sha([]byte("other")), ErrPlainHashMismatch},
		{"malformed ox", ct, s.Key[:], s.Nonce[:], s.X, "zz", ErrPlainHashMismatch},
		{"malformed x", ct, s.Key[:], s.Nonce[:], s.X[:63], s.OX, ErrHashMismatch},
		{"AES-128 key", ct, s.Key[:16], s.Nonce[:], s.X, s.OX, ErrKeySize},
		{"16-byte nonce", ct, s.Key[:], append(s.Nonce[:], 0, 0, 0, 0), s.X, s.OX, ErrNonceSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.ct, tc.key, tc.nonce, tc.x, tc.ox)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Fatal("plaintext returned along with the error")
			}
		})
	}
}

func TestFreshKeyAndNoncePerSeal(t *testing.T) {
	plain := plaintext(100)
	a, err := Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key == b.Key || a.Nonce == b.Nonce || bytes.Equal(a.Ciphertext, b.Ciphertext) || a.X == b.X {
		t.Fatal("two seals of the same plaintext share a key, nonce or ciphertext")
	}
	if a.OX != b.OX {
		t.Fatal("ox depends on more than the plaintext")
	}
	if a.Key == ([KeySize]byte{}) || a.Nonce == ([NonceSize]byte{}) {
		t.Fatal("zero key or nonce")
	}
}

func TestParse(t *testing.T) {
	key := strings.Repeat("0123456789abcdef", 4)
	k, err := ParseKey(key)
	if err != nil || hex.EncodeToString(k[:]) != key {
		t.Fatalf("ParseKey(%s) = %x, %v", key, k, err)
	}
	n, err := ParseNonce(key[:24])
	if err != nil || hex.EncodeToString(n[:]) != key[:24] {
		t.Fatalf("ParseNonce = %x, %v", n, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"key too short", second(ParseKey(key[:62])), ErrKeySize},
		{"key too long", second(ParseKey(key + "00")), ErrKeySize},
		{"key upper case", second(ParseKey(strings.ToUpper(key))), ErrBadHex},
		{"key not hex", second(ParseKey("g" + key[1:])), ErrBadHex},
		{"nonce as key", second(ParseKey(key[:24])), ErrKeySize},
		{"key as nonce", second(ParseNonce(key)), ErrNonceSize},
		{"nonce not hex", second(ParseNonce(" " + key[1:24])), ErrBadHex},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

const benchSize = 256 << 10

func BenchmarkSeal(b *testing.B) {
	plain := plaintext(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := Seal(plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	plain := plaintext(benchSize)
	s, err := Seal(plain)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := Open(s.Ciphertext, s.Key[:], s.Nonce[:], s.X, s.OX); err != nil {
			b.Fatal(err)
		}
	}
}
