package proto

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// SegmentFile is the kind-15 file message announcing one encrypted segment bundle
// (PROTOCOL.md section 3).
type SegmentFile struct {
	To        string   // DVM pubkey (p)
	URL       string   // primary blob URL (content)
	Fallbacks []string // mirror URLs (fallback, in order)
	Key       [32]byte // AES-256-GCM key (decryption-key)
	Nonce     [12]byte // GCM nonce (decryption-nonce)
	X         string   // sha256 hex of the ciphertext
	OX        string   // sha256 hex of the plaintext ZIP
	Size      int64    // ciphertext size in bytes
	Session   string   // 32 hex chars
	Index     int      // segment index within the session
	Start     time.Time
	End       time.Time // second precision, UTC
}

// Validate checks every field against PROTOCOL.md; call it before Rumor.
func (s SegmentFile) Validate() error {
	const k = KindSegmentFile
	if err := checkPubkey(k, TagRecipient, s.To); err != nil {
		return err
	}
	if err := checkBlobURL(k, "content", s.URL); err != nil {
		return err
	}
	if len(s.Fallbacks) > MaxFallbacks {
		return fieldErr(k, TagFallback, "%d mirrors, at most %d allowed", len(s.Fallbacks), MaxFallbacks)
	}
	for _, f := range s.Fallbacks {
		if err := checkBlobURL(k, TagFallback, f); err != nil {
			return err
		}
	}
	if s.Key == [32]byte{} {
		return fieldErr(k, TagDecryptionKey, "all zero")
	}
	if err := checkHex(k, TagX, s.X, 64); err != nil {
		return err
	}
	if err := checkHex(k, TagOX, s.OX, 64); err != nil {
		return err
	}
	// Ciphertext is the GCM tag (16 bytes) plus a ZIP (at least 22 bytes).
	if s.Size <= 16 || s.Size > MaxBlobBytes {
		return fieldErr(k, TagSize, "%d is out of range (17..%d)", s.Size, MaxBlobBytes)
	}
	if err := checkHex(k, TagSession, s.Session, 32); err != nil {
		return err
	}
	if s.Index < 0 || s.Index > MaxSegmentIndex {
		return fieldErr(k, TagSegment, "%d is out of range (0..%d)", s.Index, MaxSegmentIndex)
	}
	if err := checkUnixTime(k, TagStart, s.Start); err != nil {
		return err
	}
	if err := checkUnixTime(k, TagEnd, s.End); err != nil {
		return err
	}
	if d := s.End.Unix() - s.Start.Unix(); d <= 0 || d > MaxSegmentSeconds {
		return fieldErr(k, TagEnd, "segment of %d s; end must follow start by 1..%d s", d, MaxSegmentSeconds)
	}
	return fitsRumor(k, s)
}

// Rumor builds the unsigned kind-15 rumor from senderPub (the worker).
func (s SegmentFile) Rumor(senderPub string) nostr.Event {
	tags := []nostr.Tag{
		{TagFileType, FileTypeZip},
		{TagEncryption, EncryptionAlg},
		{TagDecryptionKey, hex.EncodeToString(s.Key[:])},
		{TagDecryptionNonce, hex.EncodeToString(s.Nonce[:])},
		{TagX, s.X},
		{TagOX, s.OX},
		{TagSize, strconv.FormatInt(s.Size, 10)},
	}
	for _, f := range s.Fallbacks {
		tags = append(tags, nostr.Tag{TagFallback, f})
	}
	tags = append(tags,
		nostr.Tag{TagSession, s.Session},
		nostr.Tag{TagSegment, strconv.Itoa(s.Index)},
		nostr.Tag{TagStart, fmtUnix(s.Start)},
		nostr.Tag{TagEnd, fmtUnix(s.End)},
	)
	return newRumor(KindSegmentFile, senderPub, s.To, s.URL, tags...)
}

// ParseSegmentFile reads a kind-15 rumor and refuses anything PROTOCOL.md does not allow.
func ParseSegmentFile(ev nostr.Event) (SegmentFile, error) {
	const k = KindSegmentFile
	ts, to, err := header(ev, k)
	if err != nil {
		return SegmentFile{}, err
	}
	s := SegmentFile{To: to, URL: ev.Content}

	if err := wantValue(ts, TagFileType, FileTypeZip); err != nil {
		return SegmentFile{}, err
	}
	if err := wantValue(ts, TagEncryption, EncryptionAlg); err != nil {
		return SegmentFile{}, err
	}
	if err := readHexInto(ts, TagDecryptionKey, s.Key[:]); err != nil {
		return SegmentFile{}, err
	}
	if err := readHexInto(ts, TagDecryptionNonce, s.Nonce[:]); err != nil {
		return SegmentFile{}, err
	}
	if s.X, err = ts.one(TagX); err != nil {
		return SegmentFile{}, err
	}
	if s.OX, err = ts.one(TagOX); err != nil {
		return SegmentFile{}, err
	}
	size, err := oneUint(ts, TagSize, MaxBlobBytes)
	if err != nil {
		return SegmentFile{}, err
	}
	s.Size = int64(size)
	if s.Fallbacks, err = ts.all(TagFallback); err != nil {
		return SegmentFile{}, err
	}
	if s.Session, err = ts.one(TagSession); err != nil {
		return SegmentFile{}, err
	}
	idx, err := oneUint(ts, TagSegment, MaxSegmentIndex)
	if err != nil {
		return SegmentFile{}, err
	}
	s.Index = int(idx)
	if s.Start, err = oneUnix(ts, TagStart); err != nil {
		return SegmentFile{}, err
	}
	if s.End, err = oneUnix(ts, TagEnd); err != nil {
		return SegmentFile{}, err
	}
	if err := s.Validate(); err != nil {
		return SegmentFile{}, err
	}
	return s, nil
}

func wantValue(ts tagSet, name, want string) error {
	v, err := ts.one(name)
	if err != nil {
		return err
	}
	if v != want {
		return fieldErr(ts.kind, name, "is %q, want %q", clip(v), want)
	}
	return nil
}

func readHexInto(ts tagSet, name string, dst []byte) error {
	v, err := ts.one(name)
	if err != nil {
		return err
	}
	// The value is key material: never echo it into an error.
	if !isLowerHex(v, 2*len(dst)) {
		return fieldErr(ts.kind, name, "want %d lowercase hex characters (got %d characters)", 2*len(dst), len(v))
	}
	_, _ = hex.Decode(dst, []byte(v))
	return nil
}

func oneUint(ts tagSet, name string, max uint64) (uint64, error) {
	v, err := ts.one(name)
	if err != nil {
		return 0, err
	}
	return parseUint(ts.kind, name, v, max)
}

func oneUnix(ts tagSet, name string) (time.Time, error) {
	v, err := ts.one(name)
	if err != nil {
		return time.Time{}, err
	}
	return parseUnix(ts.kind, name, v)
}
