// Package relayconn is one NIP-42-authenticated websocket connection to a Nostr relay,
// driven message by message: publish and wait for OK, subscribe and read EVENT / EOSE /
// CLOSED. It is written on go-nostr's bare Connection and envelopes because go-nostr's
// Relay races with itself when a connection closes, and its SubscribeMany rewrites
// `since` on reconnect (DESIGN.md): reconnecting is the caller's loop.
package relayconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip42"
)

// Defaults.
const (
	DefaultAuthWait    = 5 * time.Second  // how long Dial waits for the relay's AUTH challenge
	DefaultOKWait      = 15 * time.Second // how long Publish waits for OK
	DefaultPingEvery   = 30 * time.Second
	subscriptionBuffer = 1024 // above a REQ page (500), so a stored backlog never overflows it
)

var (
	// ErrClosed: the connection is gone; dial again.
	ErrClosed = errors.New("relay connection closed")
	// ErrNoOK: the relay did not answer a publish in time.
	ErrNoOK = errors.New("relay did not confirm the event in time")
)

// Refusal is a relay's "false" OK or CLOSED, with its machine-readable prefix
// ("restricted", "blocked", "auth-required", "rate-limited", "invalid", …).
type Refusal struct {
	Op     string // "AUTH", "EVENT" or "REQ"
	Prefix string
	Reason string
}

func (e *Refusal) Error() string {
	return fmt.Sprintf("relay refused %s: %s", e.Op, e.Reason)
}

// NotAllowed reports whether the refusal means this key may not use the relay: asking
// again will not help until someone allows the key.
func (e *Refusal) NotAllowed() bool {
	return e.Prefix == "restricted" || e.Prefix == "blocked"
}

// IsNotAllowed reports whether err carries a Refusal that means the key is not allowed.
func IsNotAllowed(err error) bool {
	var r *Refusal
	return errors.As(err, &r) && r.NotAllowed()
}

func refusal(op, reason string) *Refusal {
	prefix, _, ok := strings.Cut(reason, ":")
	if !ok || strings.ContainsAny(prefix, " \t") {
		prefix = ""
	}
	if reason == "" {
		reason = "no reason given"
	}
	return &Refusal{Op: op, Prefix: prefix, Reason: reason}
}

// Options configure Dial.
type Options struct {
	AuthWait  time.Duration
	OKWait    time.Duration
	PingEvery time.Duration
	Logger    *slog.Logger
}

// Conn is one live connection. Its methods are safe for concurrent use.
type Conn struct {
	url    string
	sk, pk string
	opts   Options
	log    *slog.Logger
	conn   *nostr.Connection

	wmu sync.Mutex // serialises writes

	mu         sync.Mutex
	challenge  string
	authed     bool
	oks        map[string]chan *nostr.OKEnvelope
	subs       map[string]*Sub
	nextSub    int
	err        error
	done       chan struct{}
	challengeC chan struct{}
}

// Dial connects to url and authenticates as the holder of sk (hex) when the relay asks
// (khatru-based relays send their challenge at once; Dial waits up to AuthWait for it).
// A relay that refuses the AUTH gives a *Refusal.
func Dial(ctx context.Context, url, sk string, opts Options) (*Conn, error) {
	if opts.AuthWait <= 0 {
		opts.AuthWait = DefaultAuthWait
	}
	if opts.OKWait <= 0 {
		opts.OKWait = DefaultOKWait
	}
	if opts.PingEvery <= 0 {
		opts.PingEvery = DefaultPingEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	pk, err := nostr.GetPublicKey(sk)
	if err != nil {
		return nil, errors.New("relayconn: invalid secret key")
	}
	dctx, cancel := context.WithTimeout(ctx, opts.OKWait)
	defer cancel()
	wc, err := nostr.NewConnection(dctx, url, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	c := &Conn{
		url: url, sk: sk, pk: pk, opts: opts, log: opts.Logger, conn: wc,
		oks: map[string]chan *nostr.OKEnvelope{}, subs: map[string]*Sub{},
		done: make(chan struct{}), challengeC: make(chan struct{}),
	}
	go c.readLoop()
	go c.pingLoop()

	select {
	case <-c.challengeC:
	case <-time.After(opts.AuthWait):
		// No challenge: the relay may not need AUTH. Go on; a refusal will say so.
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("connect %s: %w", url, c.Err())
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	if err := c.Auth(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// URL is the relay's URL.
func (c *Conn) URL() string { return c.url }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() {
	c.fail(ErrClosed)
}

// Authed reports whether the relay accepted our AUTH.
func (c *Conn) Authed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authed
}

// Auth answers the relay's latest challenge.
func (c *Conn) Auth(ctx context.Context) error {
	c.mu.Lock()
	ch := c.challenge
	c.mu.Unlock()
	if ch == "" {
		return fmt.Errorf("auth to %s: the relay sent no challenge", c.url)
	}
	ev := nip42.CreateUnsignedAuthEvent(ch, c.pk, c.url)
	if err := ev.Sign(c.sk); err != nil {
		return fmt.Errorf("auth to %s: sign: %w", c.url, err)
	}
	if err := c.roundTrip(ctx, "AUTH", &nostr.AuthEnvelope{Event: ev}, ev.ID); err != nil {
		return fmt.Errorf("auth to %s: %w", c.url, err)
	}
	c.mu.Lock()
	c.authed = true
	c.mu.Unlock()
	return nil
}

// Publish sends ev and waits for the relay's OK. A "false" OK is a *Refusal; a relay
// that says the event is a duplicate counts as success.
func (c *Conn) Publish(ctx context.Context, ev nostr.Event) error {
	if err := c.roundTrip(ctx, "EVENT", &nostr.EventEnvelope{Event: ev}, ev.ID); err != nil {
		return fmt.Errorf("publish to %s: %w", c.url, err)
	}
	return nil
}

func (c *Conn) roundTrip(ctx context.Context, op string, env nostr.Envelope, id string) error {
	okc := make(chan *nostr.OKEnvelope, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.oks[id] = okc
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.oks, id)
		c.mu.Unlock()
	}()
	if err := c.write(ctx, env); err != nil {
		return err
	}
	t := time.NewTimer(c.opts.OKWait)
	defer t.Stop()
	select {
	case ok := <-okc:
		if ok.OK || strings.HasPrefix(ok.Reason, "duplicate:") {
			return nil
		}
		return refusal(op, ok.Reason)
	case <-t.C:
		return ErrNoOK
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Conn) write(ctx context.Context, env nostr.Envelope) error {
	b, err := env.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode %s: %w", env.Label(), err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.OKWait)
	defer cancel()
	c.wmu.Lock()
	err = c.conn.WriteMessage(wctx, b)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("write to %s: %w", c.url, err))
		return c.Err()
	}
	return nil
}

// Sub is one subscription. Events arrive on Events; EOSE is closed at the end of stored
// events; Closed is closed when the relay or the connection ends it (then Err says why).
type Sub struct {
	ID     string
	Events chan nostr.Event
	EOSE   chan struct{}
	Closed chan struct{}

	c        *Conn
	once     sync.Once
	eoseOnce sync.Once
	mu       sync.Mutex
	err      error
}

// Err is why the subscription closed: a *Refusal for CLOSED, the connection's error, or
// ErrClosed after Unsubscribe.
func (s *Sub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Sub) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.Closed)
	})
}

// Unsubscribe sends CLOSE and ends the subscription.
func (s *Sub) Unsubscribe() {
	env := nostr.CloseEnvelope(s.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.c.write(ctx, &env)
	s.c.mu.Lock()
	delete(s.c.subs, s.ID)
	s.c.mu.Unlock()
	s.end(ErrClosed)
}

// Subscribe sends a REQ. The caller must drain Events: a subscriber that falls more
// than a buffer behind loses the connection (which it then redials), never an event
// silently.
func (c *Conn) Subscribe(ctx context.Context, filters ...nostr.Filter) (*Sub, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextSub++
	s := &Sub{
		ID: fmt.Sprintf("powdo-%d", c.nextSub), c: c,
		Events: make(chan nostr.Event, subscriptionBuffer),
		EOSE:   make(chan struct{}), Closed: make(chan struct{}),
	}
	c.subs[s.ID] = s
	c.mu.Unlock()
	if err := c.write(ctx, &nostr.ReqEnvelope{SubscriptionID: s.ID, Filters: filters}); err != nil {
		return nil, fmt.Errorf("subscribe on %s: %w", c.url, err)
	}
	return s, nil
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	subs := c.subs
	c.subs = map[string]*Sub{}
	close(c.done)
	c.mu.Unlock()
	c.conn.Close()
	for _, s := range subs {
		s.end(err)
	}
}

func (c *Conn) pingLoop() {
	t := time.NewTicker(c.opts.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.conn.Ping(context.Background()); err != nil {
				c.fail(fmt.Errorf("ping %s: %w", c.url, err))
				return
			}
		}
	}
}

func (c *Conn) readLoop() {
	for {
		var buf bytes.Buffer
		if err := c.conn.ReadMessage(context.Background(), &buf); err != nil {
			c.fail(fmt.Errorf("read from %s: %w", c.url, err))
			return
		}
		env := nostr.ParseMessage(buf.String())
		if env == nil {
			c.log.Debug("relay sent an unreadable message", "relay", c.url, "bytes", buf.Len())
			continue
		}
		switch e := env.(type) {
		case *nostr.AuthEnvelope:
			if e.Challenge == nil {
				continue
			}
			c.mu.Lock()
			first := c.challenge == ""
			c.challenge = *e.Challenge
			c.mu.Unlock()
			if first {
				close(c.challengeC)
			}
		case *nostr.OKEnvelope:
			c.mu.Lock()
			okc := c.oks[e.EventID]
			c.mu.Unlock()
			if okc != nil {
				select {
				case okc <- e:
				default:
				}
			}
		case *nostr.EventEnvelope:
			if e.SubscriptionID == nil {
				continue
			}
			c.mu.Lock()
			s := c.subs[*e.SubscriptionID]
			c.mu.Unlock()
			if s == nil {
				continue
			}
			select {
			case s.Events <- e.Event:
			default:
				c.fail(fmt.Errorf("subscriber on %s fell behind", c.url))
				return
			}
		case *nostr.EOSEEnvelope:
			c.mu.Lock()
			s := c.subs[string(*e)]
			c.mu.Unlock()
			if s != nil {
				s.eoseOnce.Do(func() { close(s.EOSE) })
			}
		case *nostr.ClosedEnvelope:
			c.mu.Lock()
			s := c.subs[e.SubscriptionID]
			delete(c.subs, e.SubscriptionID)
			c.mu.Unlock()
			if s != nil {
				s.end(refusal("REQ", e.Reason))
			}
		case *nostr.NoticeEnvelope:
			c.log.Info("relay notice", "relay", c.url, "notice", string(*e))
		}
	}
}
