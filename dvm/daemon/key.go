package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/shared/proto"
)

// CredentialName is the systemd credential holding the DVM key
// (LoadCredential=dvm-key:/etc/powdo/dvm.key).
const CredentialName = "dvm-key"

// maxSecretFile bounds what is read from a key or token file.
const maxSecretFile = 4096

// ReadSecretFile reads a small secret file (key or token), refusing one that the group or
// others may read or write: a secret that already leaked is no secret. The error never
// contains the file's content.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("secret file %s has mode %04o: group or others may access it; chmod 600 it (and replace the secret if others could read it)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s: larger than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// ReadKey reads the DVM's secret key (64 hex characters or an nsec) from path, or, when
// path is empty, from the systemd credential $CREDENTIALS_DIRECTORY/dvm-key. It returns
// the key as lowercase hex.
func ReadKey(path string) (string, error) {
	if path == "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", errors.New("no key: give --key-file, or run under systemd with LoadCredential=" + CredentialName + ":...")
		}
		path = filepath.Join(dir, CredentialName)
	}
	raw, err := ReadSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("DVM key: %w", err)
	}
	sk := strings.ToLower(raw)
	if strings.HasPrefix(sk, "nsec1") {
		prefix, v, err := nip19.Decode(sk)
		if err != nil || prefix != "nsec" {
			return "", fmt.Errorf("DVM key in %s: not a valid nsec", path)
		}
		sk = v.(string)
	}
	if err := proto.CheckSecretKey(sk); err != nil {
		return "", fmt.Errorf("DVM key in %s: not a valid secret key (want 64 hex characters or an nsec)", path)
	}
	return sk, nil
}

// WriteNewKey creates a fresh secret key in path (mode 0600, never overwriting) and
// returns its public key.
func WriteNewKey(path string) (string, error) {
	sk := nostr.GeneratePrivateKey()
	pub, err := nostr.GetPublicKey(sk)
	if err != nil {
		return "", errors.New("keygen: derive public key failed")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.WriteString(sk + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("keygen: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("keygen: close %s: %w", path, err)
	}
	return pub, nil
}
