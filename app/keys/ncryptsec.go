package keys

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nbd-wtf/go-nostr/nip49"

	"pow.do/shared/proto"
)

// An ncryptsec is bech32 of 91 bytes: version 0x02, log_n, 16-byte salt, 24-byte nonce,
// key security byte, 48-byte ciphertext (32-byte key + 16-byte tag). In bech32 that is
// "ncryptsec1" + 146 data characters + 6 checksum characters.
const (
	ncryptsecPrefix  = "ncryptsec1"
	ncryptsecBytes   = 91
	ncryptsecDataLen = (ncryptsecBytes*8 + 4) / 5
	ncryptsecLen     = len(ncryptsecPrefix) + ncryptsecDataLen + 6
)

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

type ncryptsecInfo struct {
	logN uint8
	ksb  nip49.KeySecurityByte
}

// inspect checks an ncryptsec's shape and reads its cost and key security byte before
// anything expensive runs. go-nostr's nip49.Decrypt slices the payload without checking
// its length (a short one panics) and runs scrypt at whatever cost the text names; both
// must be refused first. The bech32 checksum itself is left to nip49.Decrypt.
func inspect(s string) (ncryptsecInfo, error) {
	s = strings.ToLower(s)
	if len(s) != ncryptsecLen || !strings.HasPrefix(s, ncryptsecPrefix) {
		return ncryptsecInfo{}, fmt.Errorf("%w: an ncryptsec is %d characters starting with %s", ErrInvalidSecret, ncryptsecLen, ncryptsecPrefix)
	}
	data := s[len(ncryptsecPrefix) : len(ncryptsecPrefix)+ncryptsecDataLen]
	out := make([]byte, 0, ncryptsecBytes)
	var acc uint32
	bits := 0
	for i := 0; i < len(data); i++ {
		v := strings.IndexByte(bech32Charset, data[i])
		if v < 0 {
			return ncryptsecInfo{}, fmt.Errorf("%w: character %d is not bech32", ErrInvalidSecret, len(ncryptsecPrefix)+i+1)
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
		acc &= 1<<bits - 1
	}
	if len(out) != ncryptsecBytes {
		return ncryptsecInfo{}, fmt.Errorf("%w: payload is %d bytes, want %d", ErrInvalidSecret, len(out), ncryptsecBytes)
	}
	if out[0] != 0x02 {
		return ncryptsecInfo{}, fmt.Errorf("%w: ncryptsec version %d, only 2 is known", ErrInvalidSecret, out[0])
	}
	logN := out[1]
	if logN == 0 || logN > MaxLogN {
		return ncryptsecInfo{}, fmt.Errorf("%w: scrypt log_n %d outside 1..%d", ErrInvalidSecret, logN, MaxLogN)
	}
	return ncryptsecInfo{logN: logN, ksb: nip49.KeySecurityByte(out[42])}, nil
}

// decrypt opens an ncryptsec after inspect's checks. A failed authentication means the
// passphrase is wrong (the checksum already ruled out a typo in the text).
func decrypt(s, passphrase string) (sk string, ksb nip49.KeySecurityByte, err error) {
	info, err := inspect(s)
	if err != nil {
		return "", 0, err
	}
	sk, err = nip49.Decrypt(strings.ToLower(s), passphrase)
	if err != nil {
		if strings.Contains(err.Error(), "authentication failed") {
			return "", 0, ErrWrongPassphrase
		}
		// The underlying message may quote the input; keep it out.
		return "", 0, fmt.Errorf("%w: cannot decode the ncryptsec (checksum or encoding)", ErrInvalidSecret)
	}
	if proto.CheckSecretKey(sk) != nil {
		return "", 0, errors.New("ncryptsec holds an invalid secp256k1 key")
	}
	return sk, info.ksb, nil
}
