package server

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"

	"github.com/fiatjaf/khatru"
	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip11"
	"github.com/nbd-wtf/go-nostr/nip13"
)

// Kinds this relay carries.
const (
	kindDeletion = 5
	kindVanish   = 62
	kindGiftWrap = 1059
)

// futureSlack is how far ahead of the server clock a created_at may be.
const futureSlack = 10 * 60

// slogWriter routes khatru's stdlib logger to slog at debug level (it reports client noise).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), "component", "khatru")
	return len(p), nil
}

func (s *Server) newRelay() *khatru.Relay {
	rl := khatru.NewRelay()
	rl.Log = log.New(slogWriter{s.log}, "", 0)
	rl.ServiceURL = s.base
	rl.MaxMessageSize = int64(2*s.cfg.MaxEventBytes + 16<<10)
	nips := []any{1, 9, 11, 40, 42, 59, 62, 70, 86}
	if s.cfg.MinPoW > 0 {
		nips = append(nips, 13)
	}
	var pubkey string
	if admins := s.access.Admins(); len(admins) > 0 {
		pubkey = admins[0]
	}
	rl.Info = &nip11.RelayInformationDocument{
		Name:          s.cfg.Name,
		Description:   s.cfg.Description,
		PubKey:        pubkey,
		Contact:       s.cfg.Contact,
		SupportedNIPs: nips,
		Software:      "https://pow.do (powdo-relay, khatru)",
		Version:       Version,
		Limitation: &nip11.RelayLimitationDocument{
			MaxMessageLength: s.cfg.MaxEventBytes,
			MaxLimit:         maxQueryLimit,
			MinPowDifficulty: s.cfg.MinPoW,
			AuthRequired:     true,
			RestrictedWrites: true,
		},
		PostingPolicy: "Only whitelisted keys, after NIP-42 AUTH. Kind 1059 gift wraps to whitelisted recipients; kind 5/62 deletions by a wrap's recipient.",
	}

	rl.StoreEvent = append(rl.StoreEvent, s.storeEvent)
	rl.QueryEvents = append(rl.QueryEvents, s.queryEvents)
	rl.DeleteEvent = append(rl.DeleteEvent, s.db.DeleteEvent)
	rl.RejectEvent = append(rl.RejectEvent, s.rejectEvent)
	rl.RejectFilter = append(rl.RejectFilter, s.rejectFilter)
	rl.OverwriteFilter = append(rl.OverwriteFilter, s.overwriteFilter)
	rl.OverwriteDeletionOutcome = append(rl.OverwriteDeletionOutcome, s.deletionOutcome)
	rl.PreventBroadcast = append(rl.PreventBroadcast, s.preventBroadcast)
	rl.OnConnect = append(rl.OnConnect, func(ctx context.Context) {
		s.metrics.conns.Inc()
		khatru.RequestAuth(ctx) // send the NIP-42 challenge at once
	})
	rl.OnDisconnect = append(rl.OnDisconnect, func(ctx context.Context) {
		s.metrics.conns.Dec()
		if ws := khatru.GetConnection(ctx); ws != nil {
			s.conns.unregister(ws.Request)
		}
	})
	rl.OnEventSaved = append(rl.OnEventSaved, func(ctx context.Context, ev *nostr.Event) {
		s.metrics.eventsAccepted.WithLabelValues(kindLabel(ev.Kind)).Inc()
	})
	return rl
}

// recipient returns the single p tag of a wrap ("" when there is not exactly one).
func recipient(ev *nostr.Event) string {
	p := ""
	for _, t := range ev.Tags {
		if len(t) >= 2 && t[0] == "p" {
			if p != "" {
				return ""
			}
			p = t[1]
		}
	}
	return p
}

func (s *Server) connIP(ctx context.Context) string {
	if ws := khatru.GetConnection(ctx); ws != nil {
		return s.clientIP(ws.Request)
	}
	return ""
}

// whoRefusal is the common gate: AUTHed, not banned, whitelisted.
func (s *Server) whoRefusal(authed, action string) string {
	switch {
	case authed == "":
		return "auth-required: " + action + " requires NIP-42 authentication"
	case s.access.IsBanned(authed):
		return "blocked: your key is banned from this relay"
	case !s.access.IsAllowed(authed):
		return "restricted: your key is not on this relay's whitelist"
	}
	return ""
}

func (s *Server) rejectEvent(ctx context.Context, ev *nostr.Event) (bool, string) {
	msg := s.eventRefusal(ctx, ev)
	if msg == "" {
		return false, ""
	}
	s.metrics.eventsRefused.WithLabelValues(reasonLabel(msg)).Inc()
	s.log.Debug("event refused", "id", ev.ID, "kind", ev.Kind, "reason", msg, "ip", s.connIP(ctx))
	return true, msg
}

func (s *Server) eventRefusal(ctx context.Context, ev *nostr.Event) string {
	authed := khatru.GetAuthed(ctx)
	if msg := s.whoRefusal(authed, "publishing"); msg != "" {
		return msg
	}
	if !s.evIP.Allow(s.connIP(ctx)) || !s.evPK.Allow(authed) {
		return "rate-limited: too often: slow down and retry later"
	}
	if size := len(ev.String()); size > s.cfg.MaxEventBytes {
		return fmt.Sprintf("invalid: too big: event is %d bytes, the limit is %d", size, s.cfg.MaxEventBytes)
	}
	now := s.now().Unix()
	if int64(ev.CreatedAt) > now+futureSlack {
		return "invalid: created_at is in the future"
	}
	switch ev.Kind {
	case kindGiftWrap:
		p := recipient(ev)
		if !nostr.IsValidPublicKey(p) {
			return "invalid: a gift wrap must carry exactly one p tag naming its recipient"
		}
		if !s.access.IsAllowed(p) {
			return "restricted: the wrap's recipient is not on this relay's whitelist"
		}
		if int64(ev.CreatedAt) < now-int64(s.cfg.WrapTTL.Seconds()) {
			return fmt.Sprintf("invalid: created_at is older than this relay keeps wraps (%s)", s.cfg.WrapTTL)
		}
		if s.deletedByRecipient(ctx, ev.ID, p) {
			return "blocked: this wrap was deleted by its recipient"
		}
		if s.cfg.MinPoW > 0 {
			if d := nip13.Difficulty(ev.ID); d < s.cfg.MinPoW {
				return fmt.Sprintf("pow: difficulty %d is below the required %d", d, s.cfg.MinPoW)
			}
		}
	case kindDeletion, kindVanish:
		if ev.PubKey != authed {
			return "restricted: a deletion request must be signed by the authenticated key"
		}
		if ev.Kind == kindDeletion {
			for _, t := range ev.Tags {
				if len(t) >= 1 && t[0] != "e" && t[0] != "k" {
					return "invalid: a deletion request here may carry only e and k tags"
				}
			}
		} else if !s.vanishNamesUs(ctx, ev) {
			return "invalid: a request to vanish must carry a relay tag naming this relay or ALL_RELAYS"
		}
	default:
		return fmt.Sprintf("blocked: kind %d is not accepted here; this relay carries gift wraps (1059) and deletion requests (5, 62)", ev.Kind)
	}
	return ""
}

// deletedByRecipient looks for the recipient's NIP-09 tombstone, so a deleted wrap cannot be
// published again (khatru's own check looks up a "#e" tag that never exists).
func (s *Server) deletedByRecipient(ctx context.Context, id, p string) bool {
	ch, err := s.db.QueryEvents(ctx, nostr.Filter{Kinds: []int{kindDeletion}, Authors: []string{p}, Tags: nostr.TagMap{"e": {id}}, Limit: 1})
	if err != nil {
		return false
	}
	found := false
	for range ch {
		found = true
	}
	return found
}

func (s *Server) vanishNamesUs(ctx context.Context, ev *nostr.Event) bool {
	ws := khatru.GetConnection(ctx)
	if ws == nil {
		return false
	}
	us := nostr.NormalizeURL(s.baseURL(ws.Request))
	for _, t := range ev.Tags {
		if len(t) >= 2 && t[0] == "relay" && (t[1] == "ALL_RELAYS" || nostr.NormalizeURL(t[1]) == us) {
			return true
		}
	}
	return false
}

// storeEvent saves; a NIP-62 request to vanish first deletes every wrap addressed to its
// author and every deletion request it made, up to its created_at.
func (s *Server) storeEvent(ctx context.Context, ev *nostr.Event) error {
	if ev.Kind == kindVanish {
		if err := s.vanish(ctx, ev); err != nil {
			return fmt.Errorf("error: vanish: %w", err)
		}
	}
	return s.db.SaveEvent(ctx, ev)
}

func (s *Server) vanish(ctx context.Context, ev *nostr.Event) error {
	until := ev.CreatedAt
	filters := []nostr.Filter{
		{Kinds: []int{kindGiftWrap}, Tags: nostr.TagMap{"p": {ev.PubKey}}, Until: &until, Limit: maxQueryLimit},
		{Kinds: []int{kindDeletion, kindVanish}, Authors: []string{ev.PubKey}, Until: &until, Limit: maxQueryLimit},
	}
	n := 0
	for _, f := range filters {
		for {
			ch, err := s.db.QueryEvents(ctx, f)
			if err != nil {
				return err
			}
			var batch []*nostr.Event
			for e := range ch {
				batch = append(batch, e)
			}
			for _, e := range batch {
				if err := s.db.DeleteEvent(ctx, e); err != nil {
					return err
				}
				n++
			}
			if len(batch) < maxQueryLimit {
				break
			}
		}
	}
	s.log.Info("vanish", "pubkey", ev.PubKey, "deleted", n)
	return nil
}

// maxQueryLimit caps stored events returned per filter (clients page with until).
const maxQueryLimit = 500

// mayRead is the last line of defence behind rejectFilter: it decides per event.
func (s *Server) mayRead(authed string, ev *nostr.Event) bool {
	if authed == "" || !s.access.IsAllowed(authed) {
		return false
	}
	switch ev.Kind {
	case kindGiftWrap:
		return recipient(ev) == authed
	case kindDeletion, kindVanish:
		return ev.PubKey == authed
	}
	return false
}

// queryEvents reads the store; for client queries it drops anything the AUTHed key may not
// see. It drains the store's channel into a buffered one so an abandoned reader (khatru
// reads only the first result of some internal lookups) never strands a goroutine.
func (s *Server) queryEvents(ctx context.Context, f nostr.Filter) (chan *nostr.Event, error) {
	ch, err := s.db.QueryEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	internal := khatru.IsInternalCall(ctx) || khatru.GetConnection(ctx) == nil
	authed := khatru.GetAuthed(ctx)
	var evs []*nostr.Event
	for ev := range ch {
		if internal || s.mayRead(authed, ev) {
			evs = append(evs, ev)
		}
	}
	if !internal && s.cfg.afterQuery != nil {
		s.cfg.afterQuery(f)
	}
	out := make(chan *nostr.Event, len(evs))
	for _, ev := range evs {
		out <- ev
	}
	close(out)
	return out, nil
}

func (s *Server) rejectFilter(ctx context.Context, f nostr.Filter) (bool, string) {
	msg := s.filterRefusal(ctx, f, true)
	if msg == "" {
		return false, ""
	}
	s.metrics.reqsRefused.WithLabelValues(reasonLabel(msg)).Inc()
	return true, msg
}

// overwriteFilter closes a khatru gap: a filter with limit 0 skips RejectFilter and goes
// straight to the live listeners; clearing LimitZero on a filter we would refuse makes
// khatru run RejectFilter on it. It also makes the stored-event cap explicit (the store
// would otherwise return only a quarter of it for filters without a limit).
func (s *Server) overwriteFilter(ctx context.Context, f *nostr.Filter) {
	if f.LimitZero {
		if s.filterRefusal(ctx, *f, false) != "" {
			f.LimitZero = false
		}
		return
	}
	if f.Limit <= 0 || f.Limit > maxQueryLimit {
		f.Limit = maxQueryLimit
	}
}

func (s *Server) filterRefusal(ctx context.Context, f nostr.Filter, count bool) string {
	authed := khatru.GetAuthed(ctx)
	if msg := s.whoRefusal(authed, "reading"); msg != "" {
		return msg
	}
	if len(f.Kinds) == 0 {
		return "restricted: name the kinds: 1059 with #p set to your own key, or 5/62 with authors set to your own key"
	}
	for _, k := range f.Kinds {
		switch k {
		case kindGiftWrap:
			ps := f.Tags["p"]
			if len(ps) == 0 || slices.ContainsFunc(ps, func(p string) bool { return p != authed }) {
				return "restricted: gift wraps are served only to their recipient: set #p to your authenticated key"
			}
		case kindDeletion, kindVanish:
			if len(f.Authors) == 0 || slices.ContainsFunc(f.Authors, func(a string) bool { return a != authed }) {
				return "restricted: deletion requests are served only to their author: set authors to your authenticated key"
			}
		default:
			return fmt.Sprintf("restricted: kind %d is not served here", k)
		}
	}
	if count && !s.evPK.Allow("req:"+authed) {
		return "rate-limited: too many subscriptions: slow down and retry later"
	}
	return ""
}

// deletionOutcome decides NIP-09 deletions (khatru runs it before RejectEvent, so it checks
// AUTH itself). A wrap's author is a one-time key, so its p-tagged recipient may delete it.
func (s *Server) deletionOutcome(ctx context.Context, target, deletion *nostr.Event) (bool, string) {
	authed := khatru.GetAuthed(ctx)
	if msg := s.whoRefusal(authed, "deleting"); msg != "" {
		return false, msg
	}
	if deletion.PubKey != authed {
		return false, "restricted: a deletion request must be signed by the authenticated key"
	}
	if target.PubKey == authed || (target.Kind == kindGiftWrap && recipient(target) == authed) {
		s.log.Debug("deleted on request", "id", target.ID, "by", authed)
		return true, ""
	}
	return false, "restricted: you may delete only wraps addressed to you"
}

// preventBroadcast keeps live events from anyone but their reader: wraps go only to the
// AUTHed recipient, deletion requests only to their author.
func (s *Server) preventBroadcast(ws *khatru.WebSocket, ev *nostr.Event) bool {
	return !s.mayRead(ws.AuthedKey(), ev)
}
