package proto

import (
	"strconv"

	"github.com/nbd-wtf/go-nostr"
)

// ReceiptStatus is the DVM's verdict on one segment.
type ReceiptStatus string

// The three receipt statuses. The tracker forgets a bundle only on accepted or duplicate.
const (
	StatusAccepted  ReceiptStatus = "accepted"
	StatusDuplicate ReceiptStatus = "duplicate"
	StatusRejected  ReceiptStatus = "rejected"
)

// Delivered reports whether the tracker may drop the bundle from its outbox.
func (s ReceiptStatus) Delivered() bool { return s == StatusAccepted || s == StatusDuplicate }

// Receipt (kind 7702) answers one segment file message (PROTOCOL.md section 5).
type Receipt struct {
	To        string // worker pubkey
	Answers   string // id of the kind-15 rumor (e)
	Session   string // 32 hex chars
	Index     int
	Status    ReceiptStatus
	Reason    string // rejected only: human-readable, at most MaxReasonBytes
	Permanent bool   // rejected only: resending the same bundle can never succeed
}

// Validate checks every field against PROTOCOL.md; call it before Rumor.
func (r Receipt) Validate() error {
	const k = KindReceipt
	if err := checkPubkey(k, TagRecipient, r.To); err != nil {
		return err
	}
	if err := checkHex(k, TagAnswers, r.Answers, 64); err != nil {
		return err
	}
	if err := checkHex(k, TagSession, r.Session, 32); err != nil {
		return err
	}
	if r.Index < 0 || r.Index > MaxSegmentIndex {
		return fieldErr(k, TagSegment, "%d is out of range (0..%d)", r.Index, MaxSegmentIndex)
	}
	switch r.Status {
	case StatusRejected:
		return checkText(k, TagReason, r.Reason, MaxReasonBytes, true)
	case StatusAccepted, StatusDuplicate:
		if r.Reason != "" {
			return fieldErr(k, TagReason, "only a rejected receipt has a reason")
		}
		if r.Permanent {
			return fieldErr(k, TagPermanent, "only a rejected receipt can be permanent")
		}
		return nil
	default:
		return fieldErr(k, TagStatus, "unknown status %q", clip(string(r.Status)))
	}
}

// Rumor builds the unsigned kind-7702 rumor from senderPub (the DVM).
func (r Receipt) Rumor(senderPub string) nostr.Event {
	tags := []nostr.Tag{
		{TagAnswers, r.Answers},
		{TagSession, r.Session},
		{TagSegment, strconv.Itoa(r.Index)},
		{TagStatus, string(r.Status)},
	}
	if r.Status == StatusRejected {
		tags = append(tags,
			nostr.Tag{TagReason, r.Reason},
			nostr.Tag{TagPermanent, strconv.FormatBool(r.Permanent)},
		)
	}
	return newRumor(KindReceipt, senderPub, r.To, "", tags...)
}

// ParseReceipt reads a kind-7702 rumor.
func ParseReceipt(ev nostr.Event) (Receipt, error) {
	const k = KindReceipt
	ts, to, err := header(ev, k)
	if err != nil {
		return Receipt{}, err
	}
	if err := checkEmptyContent(k, ev.Content); err != nil {
		return Receipt{}, err
	}
	r := Receipt{To: to}
	if r.Answers, err = ts.one(TagAnswers); err != nil {
		return Receipt{}, err
	}
	if r.Session, err = ts.one(TagSession); err != nil {
		return Receipt{}, err
	}
	idx, err := oneUint(ts, TagSegment, MaxSegmentIndex)
	if err != nil {
		return Receipt{}, err
	}
	r.Index = int(idx)
	status, err := ts.one(TagStatus)
	if err != nil {
		return Receipt{}, err
	}
	r.Status = ReceiptStatus(status)

	reason, hasReason, err := ts.opt(TagReason)
	if err != nil {
		return Receipt{}, err
	}
	perm, hasPerm, err := ts.opt(TagPermanent)
	if err != nil {
		return Receipt{}, err
	}
	if r.Status == StatusRejected {
		if !hasReason {
			return Receipt{}, fieldErr(k, TagReason, "missing (required when rejected)")
		}
		if !hasPerm {
			return Receipt{}, fieldErr(k, TagPermanent, "missing (required when rejected)")
		}
		switch perm {
		case "true":
			r.Permanent = true
		case "false":
		default:
			return Receipt{}, fieldErr(k, TagPermanent, "want \"true\" or \"false\", got %q", clip(perm))
		}
		r.Reason = reason
	} else {
		if hasReason {
			return Receipt{}, fieldErr(k, TagReason, "only a rejected receipt has a reason")
		}
		if hasPerm {
			return Receipt{}, fieldErr(k, TagPermanent, "only a rejected receipt can be permanent")
		}
	}
	if err := r.Validate(); err != nil {
		return Receipt{}, err
	}
	return r, nil
}
