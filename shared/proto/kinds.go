// Package proto holds the pow.do message kinds and tags and their typed builders and
// parsers. PROTOCOL.md at the project root is the normative description.
//
// Every message type has Validate (call it before Rumor: Rumor cannot fail, so it trusts
// its input), Rumor (the unsigned NIP-59 rumor, ID computed) and a ParseXxx that refuses
// anything malformed with a *FieldError naming the tag or field at fault.
package proto

import "time"

// Rumor kinds carried inside NIP-59 gift wraps.
const (
	KindSegmentFile      = 15
	KindSessionStart     = 7700
	KindSessionStop      = 7701
	KindReceipt          = 7702
	KindCatalogue        = 7703
	KindCatalogueRequest = 7704
	KindJoinRequest      = 7705
	KindInviteProof      = 7706

	KindSeal     = 13
	KindGiftWrap = 1059
)

// Version is the value of the powdo-v tag this implementation speaks.
const Version = "1"

// Tag names.
const (
	TagVersion = "powdo-v"
	TagSession = "powdo-session"
	TagSegment = "powdo-segment"
	TagStart   = "powdo-start"
	TagEnd     = "powdo-end"

	TagRecipient       = "p"
	TagFileType        = "file-type"
	TagEncryption      = "encryption-algorithm"
	TagDecryptionKey   = "decryption-key"
	TagDecryptionNonce = "decryption-nonce"
	TagX               = "x"
	TagOX              = "ox"
	TagSize            = "size"
	TagFallback        = "fallback"

	TagProject       = "project"
	TagActivity      = "activity"
	TagSessionStart  = "start"
	TagSessionEnd    = "end"
	TagSegmentsCount = "segments"

	TagAnswers   = "e"
	TagStatus    = "status"
	TagReason    = "reason"
	TagPermanent = "permanent"
)

// Fixed values of the kind-15 tags.
const (
	FileTypeZip   = "application/zip"
	EncryptionAlg = "aes-gcm"
)

// Limits from PROTOCOL.md. They keep every rumor well inside the gift wrap's size budget
// (MaxRumorBytes) and bound what a receiver allocates for a hostile message.
const (
	// MaxRumorBytes is the largest rumor JSON a gift wrap can carry: above it the seal
	// no longer fits NIP-44's 65535-byte plaintext (the rumor pads to 49152 bytes and its
	// base64 ciphertext alone is 65628 bytes).
	MaxRumorBytes = 40960

	MaxURLBytes        = 2048
	MaxFallbacks       = 10
	MaxBlobBytes       = 65 << 20 // a bundle's 64 MiB limit plus ZIP and GCM overhead
	MaxSegmentIndex    = 1_000_000
	MaxSegmentSeconds  = 3600
	MaxMemoBytes       = 1000
	MaxReasonBytes     = 500
	MaxCatalogueBytes  = 32768
	MaxJoinBytes       = 4096
	MaxNameBytes       = 200
	MaxAppVersionBytes = 64
	MaxHostBytes       = 255

	// InviteProofMaxSkew is how far an invite proof's created_at may be from the join
	// request it comes with, either way.
	InviteProofMaxSkew = 10 * time.Minute
)

// maxUnix is 9999-12-31T23:59:59Z: later "timestamps" are garbage.
const maxUnix = 253402300799

// maxKimaiID keeps Kimai ids exact in JSON numbers read by JavaScript (2^53).
const maxKimaiID = 1 << 53
