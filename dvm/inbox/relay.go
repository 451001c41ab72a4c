package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/store"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
	"pow.do/shared/sanitize"
)

// Wrap is a gift wrap as received from one relay.
type Wrap struct {
	Event nostr.Event
	Relay string // normalized URL of the relay that delivered it
}

// Sink takes wraps for processing.
type Sink interface {
	// Submit hands a wrap over. It blocks while the sink is full (backpressure) and fails
	// only when ctx ends. done is called exactly once, when the wrap is finished:
	// processed=true once it is in the durable processed set, false if it was given up
	// unprocessed (shutdown), so that a later delivery handles it.
	Submit(ctx context.Context, w Wrap, done func(processed bool)) error
}

// ErrNotConnected: the relay has no authenticated connection right now.
var ErrNotConnected = errors.New("relay not connected")

// Config configures one relay loop. Zero durations take the defaults below.
type Config struct {
	URL       string // ws:// or wss://
	SecretKey string // the DVM's, hex; signs AUTH and nothing else here
	Store     store.Inbox
	Sink      Sink
	Log       *slog.Logger
	Now       func() time.Time

	// Backfill is how far a wrap's created_at may lie in the past (NIP-59: two days);
	// Slack is added on top. The subscription asks for since = cursor − Backfill − Slack.
	Backfill, Slack time.Duration
	// PageLimit is the limit of each REQ; a full page makes the loop list older pages.
	PageLimit int
	// MinBackoff and MaxBackoff bound the reconnect delay (doubling, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds connecting, AUTH and waiting for the relay's first answer.
	Timeout time.Duration

	// Linger, if set, keeps the connection open for Publish after Run's context ended,
	// until Linger is closed: handlers still at work can send their receipts.
	Linger <-chan struct{}

	// OnWrap is called for every wrap received (metrics), before any check.
	OnWrap func(relay string)
	// OnReplay is called for each wrap found in the processed set: a replay, or a wrap
	// whose deletion request was lost (e.g. a crash right after marking it). It must not
	// block.
	OnReplay func(relay, wrapID string)
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Backfill == 0 {
		c.Backfill = 48 * time.Hour
	}
	if c.Slack == 0 {
		c.Slack = time.Hour
	}
	if c.PageLimit == 0 {
		c.PageLimit = 500
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 2 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.OnWrap == nil {
		c.OnWrap = func(string) {}
	}
	if c.OnReplay == nil {
		c.OnReplay = func(string, string) {}
	}
}

// Relay is the loop for one relay: connect → AUTH → REQ kind 1059 #p=DVM, reconnecting
// with exponential backoff and jitter. It runs its own loop rather than go-nostr's
// SubscribeMany, which resets since to "now" on reconnect and so misses backdated wraps.
type Relay struct {
	cfg Config
	url string
	pub string
	cur *cursor
	log *slog.Logger

	mu      sync.Mutex
	conn    *relayconn.Conn // authenticated connection, nil while down
	ready   bool            // conn has listed every stored wrap (EOSE)
	lastErr string
}

// NewRelay checks cfg and prepares the loop; Run starts it.
func NewRelay(cfg Config) (*Relay, error) {
	cfg.defaults()
	url := nostr.NormalizeURL(cfg.URL)
	if !strings.HasPrefix(url, "ws://") && !strings.HasPrefix(url, "wss://") {
		return nil, fmt.Errorf("relay %q: want a ws:// or wss:// URL", cfg.URL)
	}
	pub, err := proto.PublicKey(cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("relay %s: DVM key: %w", url, err)
	}
	if cfg.Store == nil || cfg.Sink == nil {
		return nil, fmt.Errorf("relay %s: store and sink are required", url)
	}
	return &Relay{cfg: cfg, url: url, pub: pub, cur: newCursor(cfg.Now), log: cfg.Log.With("relay", url)}, nil
}

// URL is the relay's normalized URL.
func (r *Relay) URL() string { return r.url }

// Status is a relay loop's state for health checks.
type Status struct {
	URL       string `json:"url"`
	Connected bool   `json:"connected"` // authenticated and subscribed
	Ready     bool   `json:"ready"`     // and every stored wrap listed
	InFlight  int    `json:"in_flight"` // wraps handed over and not yet processed
	LastError string `json:"last_error,omitempty"`
}

// Status reports the loop's state.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{URL: r.url, Connected: r.conn != nil, Ready: r.ready, InFlight: r.cur.inFlight(), LastError: r.lastErr}
}

// Publish sends ev over the authenticated connection and waits for the relay's OK.
func (r *Relay) Publish(ctx context.Context, ev nostr.Event) error {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("publish %s to %s: %w", ev.ID, r.url, ErrNotConnected)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	if err := conn.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish kind %d %s: %w", ev.Kind, ev.ID, err) // err names the relay
	}
	return nil
}

// Run keeps the loop going until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	for ctx.Err() == nil {
		started := r.cfg.Now()
		reachedReady, err := r.session(ctx)
		r.mu.Lock()
		r.conn, r.ready = nil, false
		if err != nil {
			r.lastErr = err.Error()
		}
		r.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if reachedReady || r.cfg.Now().Sub(started) > 2*r.cfg.MaxBackoff {
			backoff = r.cfg.MinBackoff
		}
		// Full jitter between half and all of the backoff, so relays and DVMs restarting
		// together do not reconnect in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		r.log.Warn("relay connection ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, r.cfg.MaxBackoff)
	}
}

// filter is the subscription: wraps to us since the cursor minus the backfill window.
func (r *Relay) filter(ctx context.Context) (nostr.Filter, error) {
	f := nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {r.pub}}, Limit: r.cfg.PageLimit}
	c, err := r.cfg.Store.RelayCursor(ctx, r.url)
	if err != nil {
		return f, fmt.Errorf("read cursor: %w", err)
	}
	if !c.IsZero() {
		since := nostr.Timestamp(c.Add(-r.cfg.Backfill - r.cfg.Slack).Unix())
		if since > 0 {
			f.Since = &since
		}
	}
	return f, nil
}

// session runs one connection until it fails or ctx ends. It reports whether the
// connection got as far as listing every stored wrap.
func (r *Relay) session(ctx context.Context) (bool, error) {
	filter, err := r.filter(ctx)
	if err != nil {
		return false, err
	}
	dialCtx, dialCancel := context.WithTimeout(ctx, r.cfg.Timeout)
	conn, err := relayconn.Dial(dialCtx, r.url, r.cfg.SecretKey, relayconn.Options{
		RequireAuth: true, AuthWait: r.cfg.Timeout, OKWait: r.cfg.Timeout, Logger: r.cfg.Log})
	dialCancel()
	if err != nil {
		return false, fmt.Errorf("connect and AUTH as %s: %w", r.pub, err)
	}
	defer conn.Close()

	sub, err := conn.Subscribe(ctx, "dvm", filter)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()
	r.mu.Lock()
	r.conn, r.lastErr = conn, ""
	r.mu.Unlock()
	since := "none"
	if filter.Since != nil {
		since = filter.Since.Time().UTC().Format(time.RFC3339)
	}
	r.log.Info("relay subscribed", "since", since)

	r.cur.hold()
	held := true
	defer func() {
		if held {
			r.cur.release() // the listing was cut short: do not advance on it
		}
	}()
	stored, oldest := 0, nostr.Timestamp(0)
	for {
		ev, eose, err := sub.Next(ctx)
		switch {
		case ctx.Err() != nil:
			if r.cfg.Linger != nil {
				sub.Close()
				select {
				case <-r.cfg.Linger:
				case <-conn.Done():
				}
			}
			return !held, nil
		case err != nil:
			return !held, err
		case eose:
			if !held {
				continue
			}
			if stored >= r.cfg.PageLimit {
				if err := r.listOlder(ctx, conn, filter, oldest); err != nil {
					return false, err
				}
			}
			held = false
			r.advance(r.cur.release())
			r.mu.Lock()
			r.ready = true
			r.mu.Unlock()
			r.log.Info("relay backlog listed", "stored", stored)
		default:
			if held {
				stored++
				if oldest == 0 || ev.CreatedAt < oldest {
					oldest = ev.CreatedAt
				}
			}
			if err := r.deliver(ctx, ev); err != nil {
				return !held, err
			}
		}
	}
}

// listOlder pages through stored wraps older than the first page (the relay answers the
// newest first and at most PageLimit per REQ).
func (r *Relay) listOlder(ctx context.Context, conn *relayconn.Conn, f nostr.Filter, until nostr.Timestamp) error {
	for page := 1; ; page++ {
		pf := f
		u := until
		pf.Until = &u
		sub, err := conn.Subscribe(ctx, "page", pf)
		if err != nil {
			return fmt.Errorf("list older wraps: %w", err)
		}
		n, oldest := 0, until
		for {
			ev, eose, err := sub.Next(ctx)
			if err != nil {
				sub.Close()
				return fmt.Errorf("list older wraps: %w", err)
			}
			if eose {
				break
			}
			n++
			oldest = min(oldest, ev.CreatedAt)
			if err := r.deliver(ctx, ev); err != nil {
				sub.Close()
				return err
			}
		}
		sub.Close()
		r.log.Info("relay listed an older page", "page", page, "wraps", n)
		if n < r.cfg.PageLimit {
			return nil
		}
		if oldest >= until {
			// A full page within one second: step past it rather than loop forever.
			oldest = until - 1
		}
		until = oldest
	}
}

// deliver checks the processed set and hands the wrap to the sink.
func (r *Relay) deliver(ctx context.Context, ev *nostr.Event) error {
	r.cfg.OnWrap(r.url)
	id, at := ev.ID, int64(ev.CreatedAt)
	if ev.Kind != proto.KindGiftWrap || !store.IsHex(id, 64) {
		r.log.Warn("relay sent something other than a gift wrap; ignored", "kind", ev.Kind, "id", sanitize.Text(id, 80))
		return nil
	}
	seen, err := r.cfg.Store.WrapProcessed(ctx, id)
	if err != nil {
		r.log.Error("processed-wrap lookup failed; handing the wrap over anyway", "wrap", id, "err", err)
	}
	if seen {
		r.cfg.OnReplay(r.url, id)
		r.log.Debug("wrap already processed (a replay, or not yet deleted); ignored", "wrap", id)
		r.advance(r.cur.skip(id, at))
		return nil
	}
	r.cur.start(id, at)
	err = r.cfg.Sink.Submit(ctx, Wrap{Event: *ev, Relay: r.url}, func(processed bool) {
		r.advance(r.cur.finish(id, at, processed))
	})
	if err != nil {
		r.cur.finish(id, at, false)
		return fmt.Errorf("hand over wrap %s: %w", id, err)
	}
	return nil
}

// advance moves the durable cursor (forward only; the store ignores older times).
func (r *Relay) advance(to int64) {
	if to <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.cfg.Store.AdvanceRelayCursor(ctx, r.url, time.Unix(to, 0)); err != nil {
		r.log.Error("advance relay cursor", "err", err)
	}
}
