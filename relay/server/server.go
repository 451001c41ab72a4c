package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dbadger "github.com/dgraph-io/badger/v4"
	"github.com/fiatjaf/eventstore/badger"
	"github.com/fiatjaf/khatru"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pow.do/relay/access"
	"pow.do/relay/blobstore"
	"pow.do/relay/ratelimit"
	"pow.do/relay/sweeper"
)

// Version is reported in NIP-11 and /healthz.
var Version = "0.1.0"

// Server is one powdo-relay instance.
type Server struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	base string // configured public http(s) URL, or ""

	access  *access.Store
	blobs   *blobstore.Store
	db      *badger.BadgerBackend
	relay   *khatru.Relay
	metrics *metrics
	sweeper *sweeper.Sweeper
	kick    chan struct{}
	replay  replayGuard
	conns   *connTracker

	evPK, evIP, upPK, upIP, mgIP *ratelimit.Limiter
	mirrorClient                 *http.Client

	handler http.Handler
	httpSrv *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	closed  sync.Once
}

// New opens (or creates) the data directory and builds the server; Start serves it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	cfg.Admins = append([]string(nil), cfg.Admins...)
	cfg.Allow = append([]string(nil), cfg.Allow...)
	cfg.MirrorHosts = append([]string(nil), cfg.MirrorHosts...)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		now:   cfg.Now,
		base:  httpBase(cfg.PublicURL),
		kick:  make(chan struct{}, 1),
		conns: newConnTracker(cfg.MaxConnsPerIP),
		evPK:  ratelimit.New(cfg.EventsPerMinutePubkey, cfg.Now),
		evIP:  ratelimit.New(cfg.EventsPerMinuteIP, cfg.Now),
		upPK:  ratelimit.New(cfg.UploadsPerMinutePubkey, cfg.Now),
		upIP:  ratelimit.New(cfg.UploadsPerMinuteIP, cfg.Now),
		mgIP:  ratelimit.New(cfg.ManagePerMinuteIP, cfg.Now),
	}
	var err error
	s.access, err = access.Open(filepath.Join(cfg.DataDir, "access.json"), access.Options{
		Admins: cfg.Admins, Static: cfg.Allow, MaxInviteTTL: cfg.MaxInviteTTL, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	s.blobs, err = blobstore.Open(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	s.db = &badger.BadgerBackend{
		Path:     filepath.Join(cfg.DataDir, "events"),
		MaxLimit: maxQueryLimit,
		BadgerOptionsModifier: func(o dbadger.Options) dbadger.Options {
			// Modest memory: a relay of wraps needs little cache.
			return o.WithLogger(badgerLog{s.log}).WithMemTableSize(16 << 20).WithNumMemtables(2).
				WithBlockCacheSize(16 << 20).WithIndexCacheSize(8 << 20).WithValueLogFileSize(64 << 20).
				WithNumCompactors(2)
		},
	}
	if err := s.db.Init(); err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	s.metrics = newMetrics(s.blobs.Usage)
	s.relay = s.newRelay()
	s.mirrorClient = s.newMirrorClient()
	s.sweeper = &sweeper.Sweeper{
		Now: cfg.Now, Blobs: s.blobs, Events: s.db, Access: s.access,
		BlobTTL: cfg.BlobTTL, WrapTTL: cfg.WrapTTL, Quota: cfg.BlobQuotaBytes,
		Log: s.log, OnSweep: s.metrics.sweep,
	}
	s.handler = http.HandlerFunc(s.route)
	return s, nil
}

// badgerLog forwards badger's warnings and errors to slog and drops its chatter.
type badgerLog struct{ l *slog.Logger }

func (b badgerLog) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLog) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLog) Infof(string, ...any)  {}
func (b badgerLog) Debugf(string, ...any) {}

// Handler is the whole server as an http.Handler (relay, Blossom, management, health, metrics).
func (s *Server) Handler() http.Handler { return s.handler }

// Access exposes the whitelist (tests and tooling).
func (s *Server) Access() *access.Store { return s.access }

// Blobs exposes the blob store (tests and tooling).
func (s *Server) Blobs() *blobstore.Store { return s.blobs }

// Sweep runs one sweeper pass now.
func (s *Server) Sweep(ctx context.Context) (sweeper.Report, error) { return s.sweeper.Sweep(ctx) }

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	setCORS(w.Header())
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.serveWebsocket(w, r)
		return
	}
	if r.URL.Path != "/upload" {
		// Slow senders may not hold a connection; uploads set their own, longer deadline.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/nostr+json+rpc" {
		s.handleManagement(w, r)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		n, b := s.blobs.Usage()
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": Version, "blobs": n, "bytes": b, "connections": s.conns.count()})
		return
	case "/metrics":
		promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	case "/":
		if strings.Contains(r.Header.Get("Accept"), "application/nostr+json") {
			s.relay.HandleNIP11(w, r)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "powdo-relay %s: a whitelisted Nostr relay (connect with a websocket) and Blossom server.\n", Version)
			return
		}
	}
	if s.serveBlossom(w, r) {
		return
	}
	fail(w, http.StatusNotFound, "not found")
}

// Start listens on cfg.Listen and serves in the background; it returns the bound address.
func (s *Server) Start() (string, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.httpSrv.RegisterOnShutdown(s.conns.closeAll)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		s.sweeper.Run(ctx, s.cfg.SweepInterval, s.kick)
	}()
	s.log.Info("listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "public_url", s.base)
	return ln.Addr().String(), nil
}

// Addr is the bound address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is http://<bound address> after Start.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown stops accepting, closes websockets, waits for in-flight requests (uploads) up
// to ctx, stops the sweeper and closes the stores.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closed.Do(func() {
		if s.httpSrv != nil {
			if e := s.httpSrv.Shutdown(ctx); e != nil {
				err = fmt.Errorf("shutdown: %w", e)
				s.httpSrv.Close()
			}
		}
		s.conns.closeAll()
		if s.cancel != nil {
			s.cancel()
		}
		s.bg.Wait()
		s.db.Close()
		s.log.Info("stopped")
	})
	return err
}
