// Package publisher delivers the outbox to the DVM and listens for its answers.
//
// The sender takes ready items in order (outbox.Ready keeps each session in order),
// uploads a segment's ciphertext to every configured Blossom server (BUD-06 preflight,
// then PUT), builds the kind-15 rumor (first server = primary URL, the others as
// fallbacks), gift-wraps it to the DVM and publishes the wrap to the relays with NIP-42
// AUTH as the worker. Session start/stop and catalogue requests go the same way. Failures
// retry with exponential backoff and jitter; a segment without a receipt after
// ReceiptTimeout is sent again (same rumor, new wrap: the DVM answers "duplicate" if it
// already has it).
//
// The listener keeps one connection per relay with its own connect/AUTH/subscribe loop
// for kind-1059 wraps p-tagged to the worker since cursor − 2 days (wraps are backdated),
// skipping wraps in the outbox's durable processed set. It applies receipts to the outbox
// and hands catalogues to OnCatalogue.
package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/engineapi"
	"pow.do/app/outbox"
	"pow.do/shared/blossom"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

// Defaults for Config.
const (
	DefaultReceiptTimeout = 20 * time.Minute // 2 × the default segment length
	DefaultMinBackoff     = 5 * time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMirrorAttempts = 3
	DefaultUploadTimeout  = 5 * time.Minute
	// WrapBackdate is how far NIP-59 lets a wrap's created_at lie in the past, plus slack.
	WrapBackdate = 2*24*time.Hour + 10*time.Minute
)

// Config is what a Publisher needs.
type Config struct {
	Outbox    *outbox.Outbox
	SecretKey string   // the worker's hex secret key: signs seals, AUTH and Blossom tokens
	DVM       string   // the DVM's hex pubkey
	Relays    []string // ws:// or wss://
	Blossoms  []string // http:// or https://; the first is primary, the others mirrors

	// ReceiptTimeout: a segment sent this long ago without a receipt is sent again.
	// Use about twice the policy's segment length.
	ReceiptTimeout time.Duration
	MinBackoff     time.Duration
	MaxBackoff     time.Duration
	// MirrorAttempts: a segment waits this many failed rounds for a mirror that is down
	// (temporarily) before it goes out with the servers that have it.
	MirrorAttempts int
	UploadTimeout  time.Duration

	// OnCatalogue receives every catalogue the DVM sends (called from the listener).
	OnCatalogue func(proto.Catalogue)
	// OnStatus receives the connection status whenever it changes. It must return
	// quickly and not call back into the publisher.
	OnStatus func(Status)

	HTTPClient *http.Client // for Blossom; nil: a default client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Status is what the worker sees about the network.
type Status struct {
	Relays      []engineapi.Endpoint
	Blossoms    []engineapi.Endpoint
	DVMLastSeen time.Time // zero until the DVM's first message
	// Problem is the most pressing thing the worker should act on, nil when all is well.
	Problem *engineapi.Problem
}

// Publisher runs the sender and the listeners. Create with New, start with Run.
type Publisher struct {
	cfg    Config
	pk     string
	log    *slog.Logger
	now    func() time.Time
	ob     *outbox.Outbox
	blobs  []*blossom.Client
	kick   chan struct{}
	closed chan struct{}

	mu         sync.Mutex
	relayState map[string]*endpointState
	blobState  map[string]*endpointState
	dvmSeen    time.Time

	connMu sync.Mutex
	conns  map[string]*relayconn.Conn // the sender's connections
}

type endpointState struct {
	status     engineapi.EndpointStatus
	err        string
	notAllowed bool
}

// New checks the configuration.
func New(cfg Config) (*Publisher, error) {
	if cfg.Outbox == nil {
		return nil, errors.New("publisher: no outbox")
	}
	pk, err := proto.PublicKey(cfg.SecretKey)
	if err != nil {
		return nil, errors.New("publisher: invalid worker secret key")
	}
	if !proto.ValidPubkey(cfg.DVM) {
		return nil, fmt.Errorf("publisher: DVM pubkey %q is not a valid hex pubkey", cfg.DVM)
	}
	if len(cfg.Relays) == 0 || len(cfg.Blossoms) == 0 {
		return nil, errors.New("publisher: need at least one relay and one Blossom server")
	}
	if len(cfg.Blossoms) > proto.MaxFallbacks+1 {
		return nil, fmt.Errorf("publisher: at most %d Blossom servers", proto.MaxFallbacks+1)
	}
	for _, r := range cfg.Relays {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return nil, fmt.Errorf("publisher: relay %q is not a ws:// or wss:// URL", r)
		}
	}
	for _, b := range cfg.Blossoms {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("publisher: Blossom server %q is not an http(s) URL", b)
		}
	}
	if cfg.ReceiptTimeout <= 0 {
		cfg.ReceiptTimeout = DefaultReceiptTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.MirrorAttempts <= 0 {
		cfg.MirrorAttempts = DefaultMirrorAttempts
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Publisher{
		cfg: cfg, pk: pk, log: cfg.Logger, now: cfg.Now, ob: cfg.Outbox,
		kick: make(chan struct{}, 1), closed: make(chan struct{}),
		relayState: map[string]*endpointState{}, blobState: map[string]*endpointState{},
		conns: map[string]*relayconn.Conn{},
	}
	opts := []blossom.Option{blossom.WithLogger(cfg.Logger), blossom.WithTimeout(cfg.UploadTimeout)}
	if cfg.HTTPClient != nil {
		opts = append(opts, blossom.WithHTTPClient(cfg.HTTPClient))
	}
	for _, b := range cfg.Blossoms {
		p.blobs = append(p.blobs, blossom.New(b, cfg.SecretKey, opts...))
		p.blobState[b] = &endpointState{status: engineapi.EndpointConnecting}
	}
	for _, r := range cfg.Relays {
		p.relayState[r] = &endpointState{status: engineapi.EndpointConnecting}
	}
	return p, nil
}

// PublicKey is the worker's pubkey.
func (p *Publisher) PublicKey() string { return p.pk }

// Run sends and listens until ctx ends. It returns ctx's error.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range p.cfg.Relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.listen(ctx, r)
		}()
	}
	p.sendLoop(ctx)
	wg.Wait()
	p.connMu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = map[string]*relayconn.Conn{}
	p.connMu.Unlock()
	return ctx.Err()
}

// Kick wakes the sender: call it after adding to the outbox.
func (p *Publisher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Enqueue adds a sealed segment to the outbox and wakes the sender. ErrQuotaExceeded
// and other outbox errors come back unchanged (nothing was queued).
func (p *Publisher) Enqueue(ctx context.Context, s outbox.Segment) (outbox.Item, error) {
	it, err := p.ob.AddSegment(ctx, s)
	if err != nil {
		return it, err
	}
	p.Kick()
	return it, nil
}

// SendSessionStart queues a session start (kind 7700) for the DVM.
func (p *Publisher) SendSessionStart(ctx context.Context, s proto.SessionStart) (outbox.Item, error) {
	s.To = p.cfg.DVM
	if err := s.Validate(); err != nil {
		return outbox.Item{}, fmt.Errorf("session start: %w", err)
	}
	return p.queueMessage(ctx, s.Session, s.Rumor(p.pk))
}

// SendSessionStop queues a session stop (kind 7701) for the DVM.
func (p *Publisher) SendSessionStop(ctx context.Context, s proto.SessionStop) (outbox.Item, error) {
	s.To = p.cfg.DVM
	if err := s.Validate(); err != nil {
		return outbox.Item{}, fmt.Errorf("session stop: %w", err)
	}
	return p.queueMessage(ctx, s.Session, s.Rumor(p.pk))
}

// RequestCatalogue queues a catalogue request (kind 7704); the answer arrives through
// OnCatalogue.
func (p *Publisher) RequestCatalogue(ctx context.Context) (outbox.Item, error) {
	r := proto.CatalogueRequest{To: p.cfg.DVM}
	if err := r.Validate(); err != nil {
		return outbox.Item{}, fmt.Errorf("catalogue request: %w", err)
	}
	return p.queueMessage(ctx, "", r.Rumor(p.pk))
}

func (p *Publisher) queueMessage(ctx context.Context, session string, rumor nostr.Event) (outbox.Item, error) {
	it, err := p.ob.AddMessage(ctx, session, rumor)
	if err != nil {
		return it, err
	}
	p.Kick()
	return it, nil
}

// Status is the current connection status.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusLocked()
}

func (p *Publisher) statusLocked() Status {
	var st Status
	offline := 0
	notAllowed := ""
	for _, r := range p.cfg.Relays {
		e := p.relayState[r]
		st.Relays = append(st.Relays, engineapi.Endpoint{URL: r, Status: e.status, Error: e.err})
		if e.status == engineapi.EndpointOffline {
			offline++
		}
		if e.notAllowed && notAllowed == "" {
			notAllowed = r
		}
	}
	blobDown := 0
	for _, b := range p.cfg.Blossoms {
		e := p.blobState[b]
		st.Blossoms = append(st.Blossoms, engineapi.Endpoint{URL: b, Status: e.status, Error: e.err})
		if e.status == engineapi.EndpointOffline {
			blobDown++
		}
		if e.notAllowed && notAllowed == "" {
			notAllowed = b
		}
	}
	st.DVMLastSeen = p.dvmSeen
	switch {
	case notAllowed != "":
		st.Problem = engineapi.Fail(engineapi.ProblemKeyNotAllowed,
			"this key is not allowed on "+hostOf(notAllowed),
			"Ask your employer for a new invite link, then join again.", nil)
	case offline == len(p.cfg.Relays):
		st.Problem = engineapi.Fail(engineapi.ProblemRelayUnreachable, p.relayState[p.cfg.Relays[0]].err,
			"Check your network connection; pow.do keeps your work and retries on its own.", nil)
	case blobDown == len(p.cfg.Blossoms):
		st.Problem = engineapi.Fail(engineapi.ProblemBlossomUnreachable,
			"no Blossom server takes uploads ("+p.blobState[p.cfg.Blossoms[0]].err+")",
			"Check your network connection; pow.do keeps your work and retries on its own.", nil)
	}
	return st
}

// setRelay and setBlob update one endpoint and report the status when it changed.
func (p *Publisher) setRelay(r string, s engineapi.EndpointStatus, msg string, notAllowed bool) {
	p.setEndpoint(p.relayState, r, s, msg, notAllowed)
}

func (p *Publisher) setBlob(b string, s engineapi.EndpointStatus, msg string, notAllowed bool) {
	p.setEndpoint(p.blobState, b, s, msg, notAllowed)
}

func (p *Publisher) setEndpoint(m map[string]*endpointState, key string, s engineapi.EndpointStatus, msg string, notAllowed bool) {
	p.mu.Lock()
	e := m[key]
	if e == nil || (e.status == s && e.err == msg && e.notAllowed == notAllowed) {
		p.mu.Unlock()
		return
	}
	e.status, e.err, e.notAllowed = s, msg, notAllowed
	st := p.statusLocked()
	p.mu.Unlock()
	if s == engineapi.EndpointOffline {
		p.log.Warn("endpoint offline", "url", key, "err", msg)
	} else {
		p.log.Info("endpoint status", "url", key, "status", s)
	}
	if p.cfg.OnStatus != nil {
		p.cfg.OnStatus(st)
	}
}

func (p *Publisher) sawDVM() {
	p.mu.Lock()
	p.dvmSeen = p.now()
	st := p.statusLocked()
	p.mu.Unlock()
	if p.cfg.OnStatus != nil {
		p.cfg.OnStatus(st)
	}
}

// backoff is exponential from MinBackoff, capped at MaxBackoff, with jitter in
// [d/2, d): clients that failed together do not retry together.
func (p *Publisher) backoff(attempts int) time.Duration {
	d := p.cfg.MinBackoff
	for i := 0; i < attempts && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// describe turns an error into words for the worker (never a key: errors from the
// packages used here carry none).
func describe(err error) string {
	var be *blossom.Error
	if errors.As(err, &be) {
		if be.Status == 0 {
			return "unreachable — check your network"
		}
		if be.Reason != "" {
			return fmt.Sprintf("HTTP %d: %s", be.Status, be.Reason)
		}
		return fmt.Sprintf("HTTP %d", be.Status)
	}
	var rf *relayconn.Refusal
	if errors.As(err, &rf) {
		return rf.Reason
	}
	s := err.Error()
	if strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") || strings.Contains(s, "i/o timeout") {
		return "unreachable — check your network"
	}
	return s
}
