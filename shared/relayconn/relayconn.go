// Package relayconn is one NIP-42-authenticated websocket connection to a Nostr relay,
// driven message by message: publish and wait for OK, subscribe and read EVENT / EOSE /
// CLOSED. Both the tracker and the DVM use it.
//
// It is written on go-nostr's bare Connection and envelopes because go-nostr v0.52.3's
// Relay races with itself when a connection closes (Close reads Relay.Connection while
// its writer goroutine clears it, and the AUTH challenge is unsynchronised), and its
// SubscribeMany rewrites `since` on reconnect (DESIGN.md): reconnecting is the caller's
// loop. One reader goroutine dispatches everything; explicit locks guard the rest.
//
// Subscriptions queue what they receive without blocking the reader, so a slow consumer
// never holds up OK answers (a handler waiting for its receipt's OK while the loop that
// feeds it waits for that handler would otherwise deadlock). A queue past MaxQueue ends
// the connection instead of growing without bound; the events stay on the relay.
package relayconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip42"

	"pow.do/shared/sanitize"
)

// Defaults for Options.
const (
	DefaultAuthWait  = 5 * time.Second  // how long Dial waits for the relay's AUTH challenge
	DefaultOKWait    = 15 * time.Second // how long a publish or AUTH waits for OK
	DefaultPingEvery = 30 * time.Second
	// DefaultMaxQueue bounds the events one subscription holds for its consumer: far
	// above a REQ page (500), so a stored backlog never overflows it.
	DefaultMaxQueue = 10000

	maxText = 200 // bytes of a relay's reason or notice kept for logs and the UI
)

var (
	// ErrClosed: the connection was closed by its owner.
	ErrClosed = errors.New("relay connection closed")
	// ErrNoOK: the relay did not answer a publish or AUTH in time.
	ErrNoOK = errors.New("relay did not confirm the event in time")
	// ErrNoChallenge: the relay sent no NIP-42 challenge although one was required.
	ErrNoChallenge = errors.New("relay sent no AUTH challenge")
	// ErrFellBehind: a subscription's consumer let more than MaxQueue events pile up.
	ErrFellBehind = errors.New("subscriber fell behind")
	// ErrUnsubscribed: Next on a subscription its owner closed.
	ErrUnsubscribed = errors.New("subscription closed by the client")
)

// Refusal is a relay's "false" OK or CLOSED, with its NIP-01 machine-readable prefix
// ("restricted", "blocked", "auth-required", "rate-limited", "invalid", …).
type Refusal struct {
	Op     string // "AUTH", "EVENT" or "REQ"
	Prefix string // "" when the reason has none
	Reason string // the relay's text, cleaned and clipped for logs and the UI
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
	reason = sanitize.Text(reason, maxText)
	prefix, _, ok := strings.Cut(reason, ":")
	if !ok || strings.ContainsAny(prefix, " \t") {
		prefix = ""
	}
	if reason == "" {
		reason = "no reason given"
	}
	return &Refusal{Op: op, Prefix: prefix, Reason: reason}
}

// Options configure Dial. Zero values take the defaults.
type Options struct {
	AuthWait time.Duration
	// RequireAuth makes Dial fail with ErrNoChallenge when a key is given and the relay
	// sends no challenge within AuthWait; otherwise Dial goes on unauthenticated and a
	// refusal will say so.
	RequireAuth bool
	OKWait      time.Duration
	PingEvery   time.Duration
	MaxQueue    int
	Logger      *slog.Logger
}

// Conn is one live connection. Its methods are safe for concurrent use.
type Conn struct {
	url    string
	sk, pk string
	opts   Options
	log    *slog.Logger
	ws     *nostr.Connection
	ctx    context.Context // ends with the connection; its cause is Err
	cancel context.CancelCauseFunc

	wmu sync.Mutex // serialises writes

	mu        sync.Mutex
	ended     bool
	challenge string
	gotChal   chan struct{} // closed when the first challenge arrives
	authed    bool
	oks       map[string]chan *nostr.OKEnvelope
	subs      map[string]*Sub
	nextSub   int
}

// Dial connects to url. With a secret key sk (hex) it authenticates when the relay asks:
// it waits up to AuthWait for the challenge (khatru-based relays such as powdo-relay send
// it at once). A relay that refuses the AUTH gives a *Refusal. With sk empty it only
// connects.
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
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var pk string
	if sk != "" {
		var err error
		if pk, err = nostr.GetPublicKey(sk); err != nil {
			return nil, errors.New("relayconn: invalid secret key") // go-nostr's message may repeat the key
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, opts.OKWait)
	ws, err := nostr.NewConnection(dctx, url, nil, nil)
	dcancel()
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	cctx, cancel := context.WithCancelCause(context.Background())
	c := &Conn{
		url: url, sk: sk, pk: pk, opts: opts, log: opts.Logger.With("relay", url), ws: ws,
		ctx: cctx, cancel: cancel, gotChal: make(chan struct{}),
		oks: map[string]chan *nostr.OKEnvelope{}, subs: map[string]*Sub{},
	}
	go c.readLoop()
	go c.pingLoop()
	if sk == "" {
		return c, nil
	}

	t := time.NewTimer(opts.AuthWait)
	defer t.Stop()
	select {
	case <-c.gotChal:
	case <-t.C:
		if opts.RequireAuth {
			c.Close()
			return nil, fmt.Errorf("connect %s: %w", url, ErrNoChallenge)
		}
		return c, nil
	case <-c.ctx.Done():
		return nil, fmt.Errorf("connect %s: %w", url, c.Err())
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("connect %s: %w", url, ctx.Err())
	}
	if err := c.Auth(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// URL is the relay's URL as given to Dial.
func (c *Conn) URL() string { return c.url }

// Done is closed when the connection has ended; Err says why.
func (c *Conn) Done() <-chan struct{} { return c.ctx.Done() }

// Err is why the connection ended (nil while it is up).
func (c *Conn) Err() error {
	if c.ctx.Err() == nil {
		return nil
	}
	return context.Cause(c.ctx)
}

// Close ends the connection.
func (c *Conn) Close() { c.fail(ErrClosed) }

// Authed reports whether the relay accepted our AUTH.
func (c *Conn) Authed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authed
}

// Challenge waits for the relay's NIP-42 challenge and returns the latest one.
func (c *Conn) Challenge(ctx context.Context) (string, error) {
	select {
	case <-c.gotChal:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.challenge, nil
	case <-ctx.Done():
		return "", fmt.Errorf("no AUTH challenge from %s: %w", c.url, ctx.Err())
	case <-c.ctx.Done():
		return "", fmt.Errorf("no AUTH challenge from %s: %w", c.url, c.Err())
	}
}

// Auth answers the relay's latest challenge (waiting for one) with a kind-22242 event
// signed by the key given to Dial, and waits for OK.
func (c *Conn) Auth(ctx context.Context) error {
	if c.sk == "" {
		return fmt.Errorf("auth to %s: no secret key given to Dial", c.url)
	}
	ch, err := c.Challenge(ctx)
	if err != nil {
		return fmt.Errorf("auth to %s: %w", c.url, err)
	}
	ev := nip42.CreateUnsignedAuthEvent(ch, c.pk, c.url)
	if err := ev.Sign(c.sk); err != nil {
		return fmt.Errorf("auth to %s: signing the AUTH event failed", c.url)
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
	if c.ended {
		c.mu.Unlock()
		return c.Err()
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
	case <-c.ctx.Done():
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
	err = c.ws.WriteMessage(wctx, b)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("write to %s: %w", c.url, err))
		return c.Err()
	}
	return nil
}

// Subscribe sends a REQ; label starts the subscription id (for the relay's logs).
func (c *Conn) Subscribe(ctx context.Context, label string, filters ...nostr.Filter) (*Sub, error) {
	if label == "" {
		label = "sub"
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil, fmt.Errorf("subscribe on %s: %w", c.url, c.Err())
	}
	c.nextSub++
	s := &Sub{ID: label + ":" + strconv.Itoa(c.nextSub), c: c, notify: make(chan struct{}, 1)}
	c.subs[s.ID] = s
	c.mu.Unlock()
	if err := c.write(ctx, &nostr.ReqEnvelope{SubscriptionID: s.ID, Filters: filters}); err != nil {
		c.mu.Lock()
		delete(c.subs, s.ID)
		c.mu.Unlock()
		return nil, fmt.Errorf("subscribe on %s: %w", c.url, err)
	}
	return s, nil
}

// fail ends the connection once, with cause, and every subscription with it.
func (c *Conn) fail(cause error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.cancel(cause)
	subs := c.subs
	c.subs = map[string]*Sub{}
	c.mu.Unlock()
	c.ws.Close()
	for _, s := range subs {
		s.end(cause)
	}
}

func (c *Conn) pingLoop() {
	t := time.NewTicker(c.opts.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			// go-nostr bounds the wait for the pong.
			if err := c.ws.Ping(c.ctx); err != nil {
				c.fail(fmt.Errorf("ping %s: %w", c.url, err))
				return
			}
		}
	}
}

func (c *Conn) readLoop() {
	var buf bytes.Buffer
	parser := nostr.NewMessageParser()
	for {
		buf.Reset()
		if err := c.ws.ReadMessage(c.ctx, &buf); err != nil {
			c.fail(fmt.Errorf("read from %s: %w", c.url, err))
			return
		}
		env, err := parser.ParseMessage(buf.String())
		if err != nil || env == nil {
			// Unknown or malformed: ignore, as NIP-01 clients do.
			c.log.Debug("relay sent an unreadable message", "bytes", buf.Len())
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
				close(c.gotChal)
			}
		case *nostr.OKEnvelope:
			c.mu.Lock()
			okc := c.oks[e.EventID]
			c.mu.Unlock()
			if okc != nil {
				select {
				case okc <- e:
				default: // a second OK for the same id: the first one counts
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
			ev := e.Event
			if !s.push(item{ev: &ev}) {
				c.fail(fmt.Errorf("subscription %s on %s: more than %d events waiting: %w", s.ID, c.url, c.opts.MaxQueue, ErrFellBehind))
				return
			}
		case *nostr.EOSEEnvelope:
			c.mu.Lock()
			s := c.subs[string(*e)]
			c.mu.Unlock()
			if s != nil {
				s.push(item{eose: true})
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
			c.log.Info("relay notice", "notice", sanitize.Text(string(*e), maxText))
		}
	}
}

// Sub is one subscription; read it with Next.
type Sub struct {
	ID string
	c  *Conn

	mu     sync.Mutex
	queue  []item
	events int           // events in queue (MaxQueue bounds them, not EOSE marks)
	err    error         // why it ended; nil while live
	notify chan struct{} // capacity 1: "the queue or err changed"
}

type item struct {
	ev   *nostr.Event
	eose bool
}

// push queues an item; false when the queue is full.
func (s *Sub) push(it item) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return true
	}
	if it.ev != nil {
		if s.events >= s.c.opts.MaxQueue {
			s.mu.Unlock()
			return false
		}
		s.events++
	}
	s.queue = append(s.queue, it)
	s.mu.Unlock()
	s.wake()
	return true
}

// end records why the subscription ended (the first reason wins).
func (s *Sub) end(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Sub) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next waits for the subscription's next event, or its end of stored events (eose=true).
// Everything received before the subscription ended comes first; then Next returns why
// it ended: a *Refusal (Op "REQ") when the relay sent CLOSED, the connection's error when
// that ended, ErrUnsubscribed after Close. When ctx ends first it returns ctx.Err().
func (s *Sub) Next(ctx context.Context) (ev *nostr.Event, eose bool, err error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			s.queue[0] = item{}
			s.queue = s.queue[1:]
			if it.ev != nil {
				s.events--
			}
			s.mu.Unlock()
			return it.ev, it.eose, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Close sends CLOSE (while the connection is up) and ends the subscription; what was
// queued and not read is dropped.
func (s *Sub) Close() {
	s.c.mu.Lock()
	_, live := s.c.subs[s.ID]
	delete(s.c.subs, s.ID)
	s.c.mu.Unlock()
	if live && s.c.ctx.Err() == nil {
		env := nostr.CloseEnvelope(s.ID)
		s.c.write(s.c.ctx, &env)
	}
	s.mu.Lock()
	s.queue, s.events = nil, 0
	s.mu.Unlock()
	s.end(ErrUnsubscribed)
}
