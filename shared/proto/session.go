package proto

import (
	"strconv"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// SessionStart (kind 7700) tells the DVM a work session began, so it can open a running
// Kimai timesheet at once (PROTOCOL.md section 4).
type SessionStart struct {
	To       string // DVM pubkey
	Session  string // 32 hex chars
	Project  int64  // Kimai project id
	Activity int64  // Kimai activity id
	Start    time.Time
	Memo     string // content, at most MaxMemoBytes
}

// Validate checks every field against PROTOCOL.md; call it before Rumor.
func (s SessionStart) Validate() error {
	const k = KindSessionStart
	if err := checkPubkey(k, TagRecipient, s.To); err != nil {
		return err
	}
	if err := checkHex(k, TagSession, s.Session, 32); err != nil {
		return err
	}
	if s.Project < 1 || s.Project > maxKimaiID {
		return fieldErr(k, TagProject, "Kimai id %d is out of range (1..2^53)", s.Project)
	}
	if s.Activity < 1 || s.Activity > maxKimaiID {
		return fieldErr(k, TagActivity, "Kimai id %d is out of range (1..2^53)", s.Activity)
	}
	if err := checkUnixTime(k, TagSessionStart, s.Start); err != nil {
		return err
	}
	return checkText(k, "content", s.Memo, MaxMemoBytes, false)
}

// Rumor builds the unsigned kind-7700 rumor from senderPub (the worker).
func (s SessionStart) Rumor(senderPub string) nostr.Event {
	return newRumor(KindSessionStart, senderPub, s.To, s.Memo,
		nostr.Tag{TagSession, s.Session},
		nostr.Tag{TagProject, strconv.FormatInt(s.Project, 10)},
		nostr.Tag{TagActivity, strconv.FormatInt(s.Activity, 10)},
		nostr.Tag{TagSessionStart, fmtUnix(s.Start)},
	)
}

// ParseSessionStart reads a kind-7700 rumor.
func ParseSessionStart(ev nostr.Event) (SessionStart, error) {
	const k = KindSessionStart
	ts, to, err := header(ev, k)
	if err != nil {
		return SessionStart{}, err
	}
	s := SessionStart{To: to, Memo: ev.Content}
	if s.Session, err = ts.one(TagSession); err != nil {
		return SessionStart{}, err
	}
	p, err := oneUint(ts, TagProject, maxKimaiID)
	if err != nil {
		return SessionStart{}, err
	}
	a, err := oneUint(ts, TagActivity, maxKimaiID)
	if err != nil {
		return SessionStart{}, err
	}
	s.Project, s.Activity = int64(p), int64(a)
	if s.Start, err = oneUnix(ts, TagSessionStart); err != nil {
		return SessionStart{}, err
	}
	if err := s.Validate(); err != nil {
		return SessionStart{}, err
	}
	return s, nil
}

// SessionStop (kind 7701) tells the DVM a work session ended.
type SessionStop struct {
	To       string // DVM pubkey
	Session  string // 32 hex chars
	End      time.Time
	Segments int // number of segments the session produced
}

// Validate checks every field against PROTOCOL.md; call it before Rumor.
func (s SessionStop) Validate() error {
	const k = KindSessionStop
	if err := checkPubkey(k, TagRecipient, s.To); err != nil {
		return err
	}
	if err := checkHex(k, TagSession, s.Session, 32); err != nil {
		return err
	}
	if err := checkUnixTime(k, TagSessionEnd, s.End); err != nil {
		return err
	}
	if s.Segments < 0 || s.Segments > MaxSegmentIndex+1 {
		return fieldErr(k, TagSegmentsCount, "%d is out of range (0..%d)", s.Segments, MaxSegmentIndex+1)
	}
	return nil
}

// Rumor builds the unsigned kind-7701 rumor from senderPub (the worker).
func (s SessionStop) Rumor(senderPub string) nostr.Event {
	return newRumor(KindSessionStop, senderPub, s.To, "",
		nostr.Tag{TagSession, s.Session},
		nostr.Tag{TagSessionEnd, fmtUnix(s.End)},
		nostr.Tag{TagSegmentsCount, strconv.Itoa(s.Segments)},
	)
}

// ParseSessionStop reads a kind-7701 rumor.
func ParseSessionStop(ev nostr.Event) (SessionStop, error) {
	const k = KindSessionStop
	ts, to, err := header(ev, k)
	if err != nil {
		return SessionStop{}, err
	}
	if err := checkEmptyContent(k, ev.Content); err != nil {
		return SessionStop{}, err
	}
	s := SessionStop{To: to}
	if s.Session, err = ts.one(TagSession); err != nil {
		return SessionStop{}, err
	}
	if s.End, err = oneUnix(ts, TagSessionEnd); err != nil {
		return SessionStop{}, err
	}
	n, err := oneUint(ts, TagSegmentsCount, MaxSegmentIndex+1)
	if err != nil {
		return SessionStop{}, err
	}
	s.Segments = int(n)
	if err := s.Validate(); err != nil {
		return SessionStop{}, err
	}
	return s, nil
}
