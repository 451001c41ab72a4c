package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/app/engineapi"
	"pow.do/app/join"
	"pow.do/app/outbox"
	"pow.do/app/publisher"
	"pow.do/app/session"
	"pow.do/shared/proto"
)

// policy is the capture policy for new segments: the catalogue's, else the default. The
// worker's JPEG quality setting may lower the employer's; the manifest records the
// quality actually used.
func (e *Engine) policy() proto.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := proto.DefaultPolicy()
	if e.catalogue != nil {
		if cp := toProtoPolicy(e.catalogue.Policy); cp.Validate() == nil {
			p = cp
		}
	}
	if q := e.settings.JPEGQuality; q >= proto.MinJPEGQuality && q < p.JPEGQuality {
		p.JPEGQuality = q
	}
	return p
}

// workerForSealing is the worker pubkey once the publisher runs: segments are sealed only
// then, so a session's start message is always queued before its first segment.
func (e *Engine) workerForSealing() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pub == nil {
		return ""
	}
	return e.pub.PublicKey()
}

// deliver hands a sealed segment to the outbox (durable when it returns nil). After a
// crash between the outbox write and the scheduler's record the same bundle is sealed
// again under a new key: the outbox then holds the same plaintext (same ox) and that
// copy stands.
func (e *Engine) deliver(ctx context.Context, d session.Delivery) error {
	seg := outbox.Segment{Session: d.Session.ID, Index: d.Segment.Index, Start: d.Segment.Start, End: d.Segment.End, Sealed: d.Sealed.Seal()}
	_, err := e.ob.AddSegment(ctx, seg)
	if errors.Is(err, outbox.ErrConflict) {
		if have, gerr := e.ob.Segment(ctx, seg.Session, seg.Index); gerr == nil && have.OX == d.Sealed.OX {
			e.log.Info("segment already in the outbox from before a restart", "session", seg.Session, "index", seg.Index)
			err = nil
		}
	}
	e.outboxFull.Store(errors.Is(err, outbox.ErrQuotaExceeded))
	if err != nil {
		return err
	}
	e.mu.Lock()
	pub := e.pub
	e.mu.Unlock()
	if pub != nil {
		pub.Kick()
	}
	return nil
}

// shotGate stops screenshots once the outbox refuses segments for its quota, so the
// disk is not filled behind the worker's back; the skipped screenshots say why. Time and
// activity are still recorded, and finished segments wait in the session store.
func (e *Engine) shotGate() string {
	full := e.outboxFull.Load()
	if !full {
		if u, err := e.ob.Usage(e.ctx); err == nil {
			full = u.Full
		}
	}
	if full {
		return "disk quota reached: the outbox is full until the DVM confirms earlier segments"
	}
	return ""
}

func (e *Engine) stateChanged() { e.events.stateChanged() }

// outboxChanged pushes the segment's new delivery state to the UI.
func (e *Engine) outboxChanged(it outbox.Item) {
	e.events.stateChanged()
	if it.Kind != outbox.KindSegment {
		return
	}
	session, index := it.Session, it.Index
	e.events.push(func() (engineapi.Event, bool) {
		v, ok := e.viewOf(context.Background(), session, index)
		if !ok {
			return engineapi.Event{}, false
		}
		return engineapi.Event{Kind: engineapi.EventSegment, Segment: &v}, true
	})
}

// sendSessionMessages queues the start of every session not yet announced and the stop
// of every stopped one. Without a running publisher (locked key) they wait in the store.
func (e *Engine) sendSessionMessages(ctx context.Context) error {
	e.mu.Lock()
	pub := e.pub
	e.mu.Unlock()
	if pub == nil {
		return nil
	}
	rows, err := e.st.UnsentSessionMessages(ctx)
	if err != nil {
		return err
	}
	for _, s := range rows {
		if !s.StartSent {
			msg := proto.SessionStart{Session: s.ID, Project: s.Project, Activity: s.Activity, Start: s.StartedAt, Memo: s.Memo}
			if _, err := pub.SendSessionStart(ctx, msg); err != nil {
				return fmt.Errorf("queue session start: %w", err)
			}
			if err := e.st.MarkSessionSent(ctx, s.ID, false); err != nil {
				return err
			}
			s.StartSent = true
		}
		if s.State == session.Stopped && !s.StopSent {
			segs, err := e.st.Segments(ctx, s.ID)
			if err != nil {
				return err
			}
			msg := proto.SessionStop{Session: s.ID, End: s.EndedAt, Segments: len(segs)}
			if _, err := pub.SendSessionStop(ctx, msg); err != nil {
				return fmt.Errorf("queue session stop: %w", err)
			}
			if err := e.st.MarkSessionSent(ctx, s.ID, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyJoinedLocked fills the settings from the pairing.
func (e *Engine) applyJoinedLocked(jc join.Config) {
	if len(e.settings.Relays) == 0 {
		e.settings.Relays = append([]string(nil), jc.Relays...)
	}
	if len(e.settings.Blossoms) == 0 {
		e.settings.Blossoms = append([]string(nil), jc.Blossoms...)
	}
	e.settings.DVMNpub, _ = nip19.EncodePublicKey(jc.DVM)
	e.settings.OwnNpub, _ = nip19.EncodePublicKey(jc.Worker)
	e.settings.Fingerprint = jc.Fingerprint
}

// startPublisher starts delivering once the device has joined and the key is unlocked.
func (e *Engine) startPublisher() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pub != nil || e.joined == nil || e.closed {
		return nil
	}
	sk, err := e.ks.SecretKey()
	if err != nil {
		return nil // locked: starts on Unlock
	}
	segLen := time.Duration(proto.DefaultPolicy().SegmentSeconds) * time.Second
	if e.catalogue != nil && e.catalogue.Policy.SegmentSeconds > 0 {
		segLen = time.Duration(e.catalogue.Policy.SegmentSeconds) * time.Second
	}
	cfg := publisher.Config{
		Outbox: e.ob, SecretKey: sk, DVM: e.joined.DVM,
		Relays: append([]string(nil), e.settings.Relays...), Blossoms: append([]string(nil), e.settings.Blossoms...),
		ReceiptTimeout: 2 * segLen,
		OnCatalogue:    e.onCatalogue, OnStatus: e.onStatus,
		HTTPClient: e.cfg.HTTPClient, Logger: e.log, Now: e.cfg.Now,
	}
	if e.cfg.Publisher != nil {
		e.cfg.Publisher(&cfg)
	}
	p, err := publisher.New(cfg)
	if err != nil {
		return fmt.Errorf("start publisher: %w", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	e.pub, e.pubStop, e.pubDone, e.pubStatus = p, cancel, done, p.Status()
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	e.log.Info("publisher started", "relays", len(cfg.Relays), "blossoms", len(cfg.Blossoms))
	e.events.stateChanged()
	return nil
}

func (e *Engine) stopPublisher() {
	e.mu.Lock()
	stop, done := e.pubStop, e.pubDone
	e.pub, e.pubStop, e.pubDone = nil, nil, nil
	e.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// onCatalogue stores a catalogue from the DVM and tells the UI.
func (e *Engine) onCatalogue(c proto.Catalogue) {
	cat := fromProto(c)
	e.mu.Lock()
	if e.catalogue != nil && e.catalogue.UpdatedAt.After(cat.UpdatedAt) {
		e.mu.Unlock()
		e.log.Info("older catalogue ignored", "updated_at", cat.UpdatedAt)
		return
	}
	e.catalogue = &cat
	dir := e.cfg.DataDir
	e.mu.Unlock()
	if err := writeJSON(dir, CatalogueName, cat); err != nil {
		e.log.Error("save catalogue", "err", err)
	}
	e.events.push(func() (engineapi.Event, bool) {
		return engineapi.Event{Kind: engineapi.EventCatalogue, Catalogue: &cat}, true
	})
	e.events.stateChanged()
}

func (e *Engine) onStatus(st publisher.Status) {
	e.mu.Lock()
	e.pubStatus = st
	e.mu.Unlock()
	e.events.stateChanged()
}
