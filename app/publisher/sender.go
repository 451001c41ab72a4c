package publisher

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/engineapi"
	"pow.do/app/outbox"
	"pow.do/shared/blossom"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

// Timer bounds for the send loop: never spin, and look again at least once a minute
// (a clock jump or a lost kick must not stall the outbox).
const (
	minWait = 50 * time.Millisecond
	maxWait = time.Minute
	// maxResendWait caps the wait between resends of a segment without a receipt.
	maxResendWait = 6 * time.Hour
)

func (p *Publisher) sendLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if p.round(ctx) {
			continue
		}
		wait := maxWait
		if wake, err := p.ob.NextWake(ctx, p.cfg.ReceiptTimeout); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Error("outbox unreadable", "err", err)
		} else if !wake.IsZero() {
			wait = min(max(wake.Sub(p.now()), minWait), maxWait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-p.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// round works through what is ready now; it reports whether anything moved forward,
// in which case the next item of a session may have become ready.
func (p *Publisher) round(ctx context.Context) bool {
	now := p.now()
	items, err := p.ob.Ready(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("outbox unreadable", "err", err)
		}
		return false
	}
	progress := false
	for _, it := range items {
		if ctx.Err() != nil {
			return false
		}
		if p.deliver(ctx, it) {
			progress = true
		}
	}
	resend, err := p.ob.AwaitingReceipt(ctx, now.Add(-p.cfg.ReceiptTimeout), now)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("outbox unreadable", "err", err)
		}
		return progress
	}
	for _, it := range resend {
		if ctx.Err() != nil {
			return false
		}
		p.log.Info("no receipt in time; sending the segment again", "session", short(it.Session), "index", it.Index,
			"rumor", short(it.RumorID), "sent_at", it.SentAt, "sends", it.Sends)
		if p.publishItem(ctx, it) {
			// A DVM that stays silent gets fewer copies: the wait doubles with every
			// send, up to maxResendWait.
			wait := p.cfg.ReceiptTimeout
			for i := 0; i < it.Sends && wait < maxResendWait; i++ {
				wait *= 2
			}
			if err := p.ob.Defer(ctx, it.ID, p.now().Add(min(wait, maxResendWait))); err != nil && ctx.Err() == nil {
				p.log.Error("outbox write failed", "err", err)
			}
		}
	}
	return progress
}

// deliver takes one item as far as it can go now.
func (p *Publisher) deliver(ctx context.Context, it outbox.Item) bool {
	var err error
	if it.State == outbox.StateRejected {
		if it, err = p.ob.Requeue(ctx, it.ID); err != nil {
			p.log.Error("cannot requeue a rejected segment", "id", it.ID, "err", err)
			return false
		}
	}
	if it.Kind == outbox.KindSegment && it.State == outbox.StateQueued {
		var ok bool
		if it, ok = p.upload(ctx, it); !ok {
			return false
		}
	}
	if it.State != outbox.StateUploaded {
		return false
	}
	return p.publishItem(ctx, it)
}

// upload puts the ciphertext on every Blossom server that does not have it yet and
// builds the rumor. It goes on without a mirror that failed permanently, or that kept
// failing for MirrorAttempts rounds, as long as one server has the blob.
func (p *Publisher) upload(ctx context.Context, it outbox.Item) (outbox.Item, bool) {
	var errs []string
	retryable := false
	for i, b := range p.cfg.Blossoms {
		if _, ok := it.Uploads[b]; ok {
			continue
		}
		err := p.uploadTo(ctx, i, it)
		if err == nil {
			if err := p.ob.MarkUploaded(ctx, it.ID, b, p.blobs[i].BlobURL(it.X)); err != nil {
				p.log.Error("outbox write failed", "err", err)
				return it, false
			}
			it.Uploads[b] = p.blobs[i].BlobURL(it.X)
			p.setBlob(b, engineapi.EndpointConnected, "", false)
			continue
		}
		if ctx.Err() != nil {
			return it, false
		}
		msg := describe(err)
		errs = append(errs, hostOf(b)+": "+msg)
		notAllowed := errors.Is(err, blossom.ErrUnauthorized) || errors.Is(err, blossom.ErrForbidden)
		p.setBlob(b, engineapi.EndpointOffline, msg, notAllowed)
		if blossom.IsTemporary(err) || notAllowed || !isBlossomErr(err) {
			retryable = true
		}
		p.log.Warn("upload failed", "server", b, "session", short(it.Session), "index", it.Index, "err", err)
	}
	if len(errs) > 0 {
		canGo := len(it.Uploads) > 0 && (!retryable || it.Attempts+1 >= p.cfg.MirrorAttempts)
		if !canGo {
			p.fail(ctx, it, "upload: "+strings.Join(errs, "; "))
			return it, false
		}
		p.log.Warn("sending the segment without the servers that failed", "session", short(it.Session),
			"index", it.Index, "have", len(it.Uploads), "failed", strings.Join(errs, "; "))
	}
	var primary string
	var fallbacks []string
	for _, b := range p.cfg.Blossoms {
		u, ok := it.Uploads[b]
		if !ok {
			continue
		}
		if primary == "" {
			primary = u
		} else {
			fallbacks = append(fallbacks, u)
		}
	}
	sf := proto.SegmentFile{
		To: p.cfg.DVM, URL: primary, Fallbacks: fallbacks, Key: it.Key, Nonce: it.Nonce,
		X: it.X, OX: it.OX, Size: it.Size, Session: it.Session, Index: it.Index,
		Start: it.Start.UTC().Truncate(time.Second), End: it.End.UTC().Truncate(time.Second),
	}
	if err := sf.Validate(); err != nil {
		p.fail(ctx, it, "segment message invalid: "+err.Error())
		return it, false
	}
	it2, err := p.ob.SetRumor(ctx, it.ID, sf.Rumor(p.pk))
	if err != nil {
		p.log.Error("outbox write failed", "err", err)
		return it, false
	}
	return it2, true
}

func isBlossomErr(err error) bool {
	var be *blossom.Error
	return errors.As(err, &be)
}

func (p *Publisher) uploadTo(ctx context.Context, i int, it outbox.Item) error {
	f, err := it.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = p.blobs[i].Upload(ctx, f, it.Size, it.X)
	return err
}

// publishItem wraps the item's rumor afresh and publishes it to every relay; one relay
// taking it is enough.
func (p *Publisher) publishItem(ctx context.Context, it outbox.Item) bool {
	if it.Rumor == nil {
		p.fail(ctx, it, "no rumor stored")
		return false
	}
	wrap, err := giftwrap.Wrap(*it.Rumor, p.cfg.SecretKey, p.cfg.DVM)
	if err != nil {
		p.fail(ctx, it, "wrap: "+err.Error())
		return false
	}
	var errs []string
	sent := false
	for _, r := range p.cfg.Relays {
		if err := p.publishTo(ctx, r, wrap); err != nil {
			if ctx.Err() != nil {
				return false
			}
			errs = append(errs, hostOf(r)+": "+describe(err))
			if relayconn.IsNotAllowed(err) {
				p.setRelay(r, engineapi.EndpointOffline, describe(err), true)
			}
			p.log.Warn("publish failed", "relay", r, "kind", it.RumorKind, "rumor", short(it.RumorID), "err", err)
			continue
		}
		sent = true
	}
	if !sent {
		p.fail(ctx, it, "publish: "+strings.Join(errs, "; "))
		return false
	}
	if _, err := p.ob.MarkSent(ctx, it.ID, wrap.ID, p.now()); err != nil {
		p.log.Error("outbox write failed", "err", err)
		return false
	}
	p.log.Info("sent to the DVM", "kind", it.RumorKind, "session", short(it.Session), "index", it.Index,
		"rumor", short(it.RumorID), "wrap", short(wrap.ID))
	return true
}

func (p *Publisher) publishTo(ctx context.Context, relay string, wrap nostr.Event) error {
	c, err := p.conn(ctx, relay)
	if err != nil {
		return err
	}
	if err := c.Publish(ctx, wrap); err != nil {
		var rf *relayconn.Refusal
		if !errors.As(err, &rf) {
			// A broken connection: drop it, the next attempt dials again.
			c.Close()
		}
		return err
	}
	return nil
}

// conn returns the sender's live connection to relay, dialling when needed.
func (p *Publisher) conn(ctx context.Context, relay string) (*relayconn.Conn, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if c := p.conns[relay]; c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	c, err := relayconn.Dial(ctx, relay, p.cfg.SecretKey, relayconn.Options{Logger: p.log})
	if err != nil {
		return nil, err
	}
	p.conns[relay] = c
	return c, nil
}

func (p *Publisher) fail(ctx context.Context, it outbox.Item, msg string) {
	next := p.now().Add(p.backoff(it.Attempts))
	if _, err := p.ob.MarkFailed(ctx, it.ID, msg, next); err != nil && ctx.Err() == nil {
		p.log.Error("outbox write failed", "err", err)
	}
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
