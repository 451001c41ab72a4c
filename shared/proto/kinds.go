// Package proto holds the pow.do message kinds and tags and their typed builders and
// parsers. PROTOCOL.md at the project root is the normative description.
package proto

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
)
