package publisher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/engineapi"
	"pow.do/app/outbox"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

const (
	// pageLimit is the REQ limit; a pass that fills a page asks again with until.
	pageLimit = 500
	// cursorEvery is how often a live subscription moves its cursor forward.
	cursorEvery = time.Minute
	// cursorSlack keeps the cursor behind wraps still in flight.
	cursorSlack = time.Minute
	// stableAfter: a connection that lived this long resets the reconnect backoff.
	stableAfter = time.Minute
)

// listen keeps one relay's receipt subscription alive until ctx ends.
func (p *Publisher) listen(ctx context.Context, relay string) {
	attempt := 0
	for ctx.Err() == nil {
		started := p.now()
		err := p.listenOnce(ctx, relay)
		if ctx.Err() != nil {
			return
		}
		if p.now().Sub(started) > stableAfter {
			attempt = 0
		}
		d := p.backoff(attempt)
		attempt++
		notAllowed := relayconn.IsNotAllowed(err)
		wait := d.Round(time.Second)
		if wait < time.Second {
			wait = time.Second
		}
		var msg string
		var rf *relayconn.Refusal
		switch {
		case notAllowed:
			msg = fmt.Sprintf("this key is not allowed on the relay — ask your employer for a new invite (relay said: %s); retrying in %s", refusalReason(err), wait)
		case errors.As(err, &rf):
			msg = fmt.Sprintf("the relay refused us (%s); retrying in %s", rf.Reason, wait)
		default:
			msg = fmt.Sprintf("relay unreachable — check your network; retrying in %s", wait)
		}
		p.log.Debug("relay connection ended", "relay", relay, "err", err)
		p.setRelay(relay, engineapi.EndpointOffline, msg, notAllowed)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// listenOnce connects, AUTHs, subscribes since cursor − 2 days and processes wraps
// until the connection or the subscription ends.
func (p *Publisher) listenOnce(ctx context.Context, relay string) error {
	c, err := relayconn.Dial(ctx, relay, p.cfg.SecretKey, relayconn.Options{Logger: p.log})
	if err != nil {
		return err
	}
	defer c.Close()
	cursor, err := p.ob.Cursor(ctx, relay)
	if err != nil {
		return err
	}
	from := cursor
	if from.IsZero() {
		from = p.now()
	}
	since := nostr.Timestamp(from.Add(-WrapBackdate).Unix())
	subscribedAt := p.now()
	filter := nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {p.pk}}, Since: &since, Limit: pageLimit}
	sub, err := c.Subscribe(ctx, "receipts", filter)
	if err != nil {
		return err
	}
	defer sub.Close()

	stored := 0
	oldest := nostr.Timestamp(0)
	live := false
	moved := time.Now()
	for {
		// Wait at most cursorEvery, so a quiet relay still moves the cursor.
		wait, cancel := context.WithTimeout(ctx, cursorEvery)
		ev, eose, err := sub.Next(wait)
		quiet := wait.Err() != nil
		cancel()
		switch {
		case err == nil && eose:
			if live {
				continue
			}
			if stored >= pageLimit {
				// More stored than one page: page backwards before trusting the cursor.
				if err := p.page(ctx, c, filter, oldest); err != nil {
					return err
				}
			}
			// khatru runs the stored query before it registers the live listener: a wrap
			// stored in between reaches neither. Our listener is registered before EOSE
			// is sent, so one more pass over the same window now catches such a wrap.
			if err := p.catchUp(ctx, c, filter); err != nil {
				return err
			}
			live = true
			moved = time.Now()
			p.setRelay(relay, engineapi.EndpointConnected, "", false)
			if err := p.ob.SetCursor(ctx, relay, subscribedAt.Add(-cursorSlack)); err != nil {
				p.log.Error("outbox write failed", "err", err)
			}
			if _, err := p.ob.PruneWraps(ctx, subscribedAt.Add(-WrapBackdate-24*time.Hour)); err != nil {
				p.log.Error("outbox write failed", "err", err)
			}
		case err == nil:
			if !live {
				stored++
				if oldest == 0 || ev.CreatedAt < oldest {
					oldest = ev.CreatedAt
				}
			}
			p.handleWrap(ctx, *ev)
		case ctx.Err() != nil:
			return ctx.Err()
		case quiet:
		default:
			// The subscription ended after everything received was handled: a
			// *relayconn.Refusal (CLOSED) or why the connection ended.
			return err
		}
		if live && time.Since(moved) >= cursorEvery {
			moved = time.Now()
			if err := p.ob.SetCursor(ctx, relay, p.now().Add(-cursorSlack)); err != nil {
				p.log.Error("outbox write failed", "err", err)
			}
		}
	}
}

// catchUp reads the stored wraps of f once more, up to EOSE (processed ones are skipped).
func (p *Publisher) catchUp(ctx context.Context, c *relayconn.Conn, f nostr.Filter) error {
	sub, err := c.Subscribe(ctx, "catchup", f)
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		ev, eose, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if eose {
			return nil
		}
		p.handleWrap(ctx, *ev)
	}
}

// page fetches older stored wraps, page by page, until a page is not full.
func (p *Publisher) page(ctx context.Context, c *relayconn.Conn, f nostr.Filter, until nostr.Timestamp) error {
	for pages := 0; pages < 1000; pages++ {
		u := until
		f.Until = &u
		sub, err := c.Subscribe(ctx, "page", f)
		if err != nil {
			return err
		}
		n := 0
		oldest := until
		for {
			ev, eose, err := sub.Next(ctx)
			if err != nil {
				sub.Close()
				return err
			}
			if eose {
				break
			}
			n++
			if ev.CreatedAt < oldest {
				oldest = ev.CreatedAt
			}
			p.handleWrap(ctx, *ev)
		}
		sub.Close()
		if n < f.Limit || oldest == until {
			return nil
		}
		until = oldest
	}
	return nil
}

// handleWrap processes one wrap at most once: unwrap with every check, act on receipts
// and catalogues from the DVM, then record the wrap as processed. Acting is idempotent,
// so a crash between the two only repeats it.
func (p *Publisher) handleWrap(ctx context.Context, ev nostr.Event) {
	seen, err := p.ob.SeenWrap(ctx, ev.ID)
	if err != nil {
		p.log.Error("outbox unreadable", "err", err)
		return
	}
	if seen {
		return
	}
	if err := p.act(ctx, ev); err != nil {
		if errors.Is(err, errRetry) {
			// Our own storage failed: leave the wrap unmarked so it is tried again.
			p.log.Error("cannot process a message from the DVM; will retry", "wrap", short(ev.ID), "err", err)
			return
		}
		p.log.Warn("message ignored", "wrap", short(ev.ID), "err", err)
	}
	if err := p.ob.MarkWrap(ctx, ev.ID, ev.CreatedAt.Time()); err != nil {
		p.log.Error("outbox write failed", "err", err)
	}
}

var errRetry = errors.New("temporary failure")

func (p *Publisher) act(ctx context.Context, ev nostr.Event) error {
	rumor, sender, err := giftwrap.Unwrap(ev, p.cfg.SecretKey)
	if err != nil {
		return fmt.Errorf("unwrap: %w", err)
	}
	if sender != p.cfg.DVM {
		return fmt.Errorf("from %s, not from our DVM", short(sender))
	}
	msg, err := proto.Parse(rumor)
	if err != nil {
		return fmt.Errorf("kind %d from the DVM: %w", rumor.Kind, err)
	}
	p.sawDVM()
	switch m := msg.(type) {
	case proto.Receipt:
		return p.applyReceipt(ctx, m)
	case proto.Catalogue:
		p.log.Info("catalogue received", "projects", len(m.Projects), "activities", len(m.Activities), "updated_at", m.UpdatedAt)
		if p.cfg.OnCatalogue != nil {
			p.cfg.OnCatalogue(m)
		}
		return nil
	}
	return fmt.Errorf("unexpected kind %d from the DVM", rumor.Kind)
}

func (p *Publisher) applyReceipt(ctx context.Context, r proto.Receipt) error {
	before, _ := p.ob.ByRumor(ctx, r.Answers)
	it, changed, err := p.ob.ApplyReceipt(ctx, r, p.now().Add(p.backoff(before.Attempts)))
	if errors.Is(err, outbox.ErrUnknownRumor) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	if !changed {
		p.log.Info("receipt for a segment already settled", "session", short(r.Session), "index", r.Index, "status", r.Status)
		return nil
	}
	switch it.State {
	case outbox.StateRejected:
		p.log.Warn("the DVM rejected a segment", "session", short(it.Session), "index", it.Index,
			"reason", it.Reason, "permanent", it.Permanent)
		if !it.Permanent {
			p.Kick()
		}
	default:
		p.log.Info("segment delivered", "session", short(it.Session), "index", it.Index, "status", it.State)
	}
	return nil
}

func refusalReason(err error) string {
	var rf *relayconn.Refusal
	if errors.As(err, &rf) {
		return rf.Reason
	}
	return describe(err)
}
