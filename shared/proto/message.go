package proto

import (
	"github.com/nbd-wtf/go-nostr"
)

// Message is any pow.do rumor payload.
type Message interface {
	Validate() error
	Rumor(senderPub string) nostr.Event
}

var (
	_ Message = SegmentFile{}
	_ Message = SessionStart{}
	_ Message = SessionStop{}
	_ Message = Receipt{}
	_ Message = Catalogue{}
	_ Message = CatalogueRequest{}
	_ Message = JoinRequest{}
)

// Parse dispatches on the rumor's kind to the matching ParseXxx. The result is one of
// SegmentFile, SessionStart, SessionStop, Receipt, Catalogue, CatalogueRequest, JoinRequest.
func Parse(rumor nostr.Event) (Message, error) {
	switch rumor.Kind {
	case KindSegmentFile:
		return asMessage(ParseSegmentFile(rumor))
	case KindSessionStart:
		return asMessage(ParseSessionStart(rumor))
	case KindSessionStop:
		return asMessage(ParseSessionStop(rumor))
	case KindReceipt:
		return asMessage(ParseReceipt(rumor))
	case KindCatalogue:
		return asMessage(ParseCatalogue(rumor))
	case KindCatalogueRequest:
		return asMessage(ParseCatalogueRequest(rumor))
	case KindJoinRequest:
		return asMessage(ParseJoinRequest(rumor))
	default:
		return nil, fieldErr(rumor.Kind, "kind", "not a pow.do rumor kind")
	}
}

// asMessage keeps a failed parse from returning a non-nil zero Message.
func asMessage[T Message](m T, err error) (Message, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}
