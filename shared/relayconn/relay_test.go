package relayconn

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fiatjaf/khatru"
	"github.com/nbd-wtf/go-nostr"
)

// The client is tested against khatru, the relay library powdo-relay is built on,
// served in-process on 127.0.0.1 with an in-memory store. (pow.do/shared must not
// import pow.do/relay; the tracker's and the DVM's tests run against powdo-relay itself.)

type relayConfig struct {
	challenge bool     // send the NIP-42 challenge on connect, as powdo-relay does
	allow     []string // when not nil: only these AUTHed keys may publish and read
}

type testRelay struct {
	URL   string
	srv   *httptest.Server
	conns *trackingListener

	mu     sync.Mutex
	events []*nostr.Event
	dups   int // publishes refused as "duplicate:"
}

func startRelay(t *testing.T, cfg relayConfig) *testRelay {
	t.Helper()
	rl := khatru.NewRelay()
	rl.Log = log.New(io.Discard, "", 0)
	tr := &testRelay{}
	srv := httptest.NewUnstartedServer(rl)
	tr.URL = "ws://" + srv.Listener.Addr().String()
	rl.ServiceURL = tr.URL
	if cfg.challenge {
		rl.OnConnect = append(rl.OnConnect, khatru.RequestAuth)
	}
	gate := func(ctx context.Context) (bool, string) {
		if cfg.allow == nil {
			return false, ""
		}
		who := khatru.GetAuthed(ctx)
		if who == "" {
			return true, "auth-required: authenticate first"
		}
		if !slices.Contains(cfg.allow, who) {
			return true, "restricted: your key is not on this relay's whitelist"
		}
		return false, ""
	}
	rl.RejectEvent = append(rl.RejectEvent, func(ctx context.Context, _ *nostr.Event) (bool, string) { return gate(ctx) })
	rl.RejectFilter = append(rl.RejectFilter, func(ctx context.Context, f nostr.Filter) (bool, string) {
		if slices.Contains(f.Kinds, 4) {
			return true, "blocked: kind 4 is not served here"
		}
		return gate(ctx)
	})
	rl.StoreEvent = append(rl.StoreEvent, func(_ context.Context, ev *nostr.Event) error {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, have := range tr.events {
			if have.ID == ev.ID {
				tr.dups++
				return errors.New("duplicate: already have this event")
			}
		}
		tr.events = append(tr.events, ev)
		return nil
	})
	rl.QueryEvents = append(rl.QueryEvents, func(_ context.Context, f nostr.Filter) (chan *nostr.Event, error) {
		tr.mu.Lock()
		var out []*nostr.Event
		for _, ev := range tr.events {
			if f.Matches(ev) {
				out = append(out, ev)
			}
		}
		tr.mu.Unlock()
		ch := make(chan *nostr.Event, len(out))
		for _, ev := range out {
			ch <- ev
		}
		close(ch)
		return ch, nil
	})
	tr.conns = &trackingListener{Listener: srv.Listener}
	srv.Listener = tr.conns
	srv.Start()
	tr.srv = srv
	t.Cleanup(func() {
		tr.conns.killAll()
		srv.Close()
	})
	return tr
}

// trackingListener remembers accepted connections so a test can cut them: httptest
// forgets a connection once it is hijacked for a websocket.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) killAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (r *testRelay) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

type key struct{ sk, pk string }

func newKey() key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return key{sk, pk}
}

func note(t *testing.T, k key, text string) nostr.Event {
	t.Helper()
	ev := nostr.Event{Kind: 1, CreatedAt: nostr.Now(), Content: text, Tags: nostr.Tags{}}
	if err := ev.Sign(k.sk); err != nil {
		t.Fatal(err)
	}
	return ev
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func dial(t *testing.T, ctx context.Context, url, sk string, opts Options) *Conn {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	c, err := Dial(ctx, url, sk, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next reads the subscription's next item and fails the test on an error.
func next(t *testing.T, ctx context.Context, s *Sub) (*nostr.Event, bool) {
	t.Helper()
	ev, eose, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("sub %s: %v", s.ID, err)
	}
	return ev, eose
}
