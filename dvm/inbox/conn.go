package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// Conn is a NIP-01/NIP-42 client connection to one relay, built on go-nostr's websocket
// Connection and envelopes. go-nostr v0.52.3's own Relay type races with itself when a
// connection closes (Close reads Relay.Connection while its writer goroutine clears it)
// and keeps the AUTH challenge unsynchronised, so under the race detector every reconnect
// fails; this small client has one reader goroutine and explicit locks instead.
//
// Subscriptions queue what they receive without blocking the reader, so a slow consumer
// never holds up OK answers (a handler waiting for its receipt's OK while the loop that
// feeds it waits for that handler would otherwise deadlock). A queue past MaxQueue ends
// the connection instead of growing without bound; the events stay on the relay.
type Conn struct {
	URL string

	ws     *nostr.Connection
	ctx    context.Context // ends with the connection
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	challenge string
	gotChal   chan struct{} // closed when the first challenge arrives
	subs      map[string]*Sub
	oks       map[string]chan okAnswer
	notice    func(string)
	closeOnce sync.Once
}

// MaxQueue bounds the events a subscription holds for its consumer.
const MaxQueue = 10000

type okAnswer struct {
	ok     bool
	reason string
}

var subCounter atomic.Int64

// Dial connects to the relay. notice, if not nil, receives NOTICE messages.
func Dial(ctx context.Context, url string, notice func(string)) (*Conn, error) {
	url = nostr.NormalizeURL(url)
	ws, err := nostr.NewConnection(ctx, url, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	cctx, cancel := context.WithCancelCause(context.Background())
	c := &Conn{URL: url, ws: ws, ctx: cctx, cancel: cancel, gotChal: make(chan struct{}),
		subs: map[string]*Sub{}, oks: map[string]chan okAnswer{}, notice: notice}
	go c.read()
	return c, nil
}

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
func (c *Conn) Close() { c.fail(errors.New("closed")) }

func (c *Conn) fail(cause error) {
	c.closeOnce.Do(func() {
		c.cancel(cause)
		c.ws.Close()
		c.mu.Lock()
		subs := c.subs
		c.subs = map[string]*Sub{}
		c.mu.Unlock()
		for _, s := range subs {
			s.push(item{closed: "connection ended: " + cause.Error()})
		}
	})
}

func (c *Conn) read() {
	var buf bytes.Buffer
	parser := nostr.NewMessageParser()
	for {
		buf.Reset()
		if err := c.ws.ReadMessage(c.ctx, &buf); err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		env, err := parser.ParseMessage(buf.String())
		if err != nil || env == nil {
			continue // unknown or malformed message: ignore, as NIP-01 clients do
		}
		switch e := env.(type) {
		case *nostr.EventEnvelope:
			if e.SubscriptionID == nil {
				continue
			}
			c.mu.Lock()
			s := c.subs[*e.SubscriptionID]
			c.mu.Unlock()
			if s != nil {
				ev := e.Event
				if !s.push(item{ev: &ev}) {
					c.fail(fmt.Errorf("subscription %s: more than %d events waiting", s.ID, MaxQueue))
					return
				}
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
				s.push(item{closed: e.Reason})
			}
		case *nostr.OKEnvelope:
			c.mu.Lock()
			ch := c.oks[e.EventID]
			delete(c.oks, e.EventID)
			c.mu.Unlock()
			if ch != nil {
				ch <- okAnswer{e.OK, e.Reason}
			}
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
		case *nostr.NoticeEnvelope:
			if c.notice != nil {
				c.notice(string(*e))
			}
		}
	}
}

func (c *Conn) write(ctx context.Context, env interface{ MarshalJSON() ([]byte, error) }) error {
	b, err := env.MarshalJSON()
	if err != nil {
		return err
	}
	if err := c.ws.WriteMessage(ctx, b); err != nil {
		c.fail(fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}

// Challenge waits for the relay's NIP-42 challenge.
func (c *Conn) Challenge(ctx context.Context) (string, error) {
	select {
	case <-c.gotChal:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.challenge, nil
	case <-ctx.Done():
		return "", fmt.Errorf("no AUTH challenge from %s: %w", c.URL, ctx.Err())
	case <-c.ctx.Done():
		return "", fmt.Errorf("no AUTH challenge from %s: %w", c.URL, c.Err())
	}
}

// Auth answers the relay's challenge with a kind-22242 event signed by sk and waits for OK.
func (c *Conn) Auth(ctx context.Context, sk string) error {
	ch, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	ev := nostr.Event{Kind: nostr.KindClientAuthentication, CreatedAt: nostr.Now(),
		Tags: nostr.Tags{{"relay", c.URL}, {"challenge", ch}}}
	if err := ev.Sign(sk); err != nil {
		return errors.New("sign AUTH event failed") // go-nostr's message may repeat the key
	}
	if err := c.send(ctx, ev.ID, &nostr.AuthEnvelope{Event: ev}); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	return nil
}

// Publish sends ev and waits for the relay's OK; a refusal is an error carrying its reason.
func (c *Conn) Publish(ctx context.Context, ev nostr.Event) error {
	return c.send(ctx, ev.ID, &nostr.EventEnvelope{Event: ev})
}

func (c *Conn) send(ctx context.Context, id string, env interface{ MarshalJSON() ([]byte, error) }) error {
	ch := make(chan okAnswer, 1)
	c.mu.Lock()
	c.oks[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.oks, id)
		c.mu.Unlock()
	}()
	if err := c.write(ctx, env); err != nil {
		return err
	}
	select {
	case a := <-ch:
		if !a.ok {
			return fmt.Errorf("refused: %s", clip(a.reason))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no OK: %w", ctx.Err())
	case <-c.ctx.Done():
		return fmt.Errorf("no OK: %w", c.Err())
	}
}

// Sub is one subscription.
type Sub struct {
	ID string
	c  *Conn

	mu     sync.Mutex
	queue  []item
	notify chan struct{}
	ended  bool
}

type item struct {
	ev     *nostr.Event
	eose   bool
	closed string // the relay's CLOSED reason, or why the connection ended
}

// push queues an item; false when the queue is full.
func (s *Sub) push(it item) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return true
	}
	if it.ev != nil && len(s.queue) >= MaxQueue {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, it)
	if it.closed != "" {
		s.ended = true
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return true
}

// Subscribe sends a REQ.
func (c *Conn) Subscribe(ctx context.Context, label string, filters ...nostr.Filter) (*Sub, error) {
	s := &Sub{ID: label + ":" + strconv.FormatInt(subCounter.Add(1), 10), c: c, notify: make(chan struct{}, 1)}
	c.mu.Lock()
	c.subs[s.ID] = s
	c.mu.Unlock()
	if err := c.write(ctx, nostr.ReqEnvelope{SubscriptionID: s.ID, Filters: filters}); err != nil {
		c.mu.Lock()
		delete(c.subs, s.ID)
		c.mu.Unlock()
		return nil, fmt.Errorf("REQ to %s: %w", c.URL, err)
	}
	return s, nil
}

// Next waits for the subscription's next event or its end of stored events (eose=true).
// A subscription the relay closed, or whose connection ended, returns an error with the
// reason.
func (s *Sub) Next(ctx context.Context) (ev *nostr.Event, eose bool, err error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			s.queue[0] = item{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			if it.closed != "" {
				return nil, false, &ClosedError{Reason: it.closed}
			}
			return it.ev, it.eose, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-s.c.ctx.Done():
			// The connection ended; take anything queued before saying so.
			s.mu.Lock()
			empty := len(s.queue) == 0
			s.mu.Unlock()
			if empty {
				return nil, false, &ClosedError{Reason: "connection ended: " + s.c.Err().Error()}
			}
		}
	}
}

// Close sends CLOSE and forgets the subscription.
func (s *Sub) Close() {
	s.c.mu.Lock()
	_, live := s.c.subs[s.ID]
	delete(s.c.subs, s.ID)
	s.c.mu.Unlock()
	if live && s.c.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(s.c.ctx, defaultWriteTimeout)
		defer cancel()
		s.c.write(ctx, nostr.CloseEnvelope(s.ID))
	}
}

// ClosedError is a subscription the relay closed (CLOSED) or whose connection ended.
type ClosedError struct{ Reason string }

func (e *ClosedError) Error() string { return "subscription closed: " + clip(e.Reason) }

// defaultWriteTimeout bounds a CLOSE sent while tearing a subscription down.
const defaultWriteTimeout = 10 * time.Second
