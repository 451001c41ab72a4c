// Package daemon wires the DVM together: store, relay inbox, ingest pool, roster, the
// Kimai hooks, and an HTTP server for /healthz, /readyz, /metrics and whatever else is
// mounted on its mux (the work diary).
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pow.do/dvm/inbox"
	"pow.do/dvm/ingest"
	"pow.do/dvm/roster"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/blossom"
	"pow.do/shared/nip86"
	"pow.do/shared/proto"
)

// Options plug optional parts in. Nil fields take the no-op defaults (static catalogue
// from the configuration).
type Options struct {
	// Store, if set, is used instead of opening SQLite in the data directory (the daemon
	// then does not close it).
	Store     store.Store
	Segments  SegmentSink
	Sessions  SessionSink
	Catalogue CatalogueSource
	// Background tasks run beside the daemon and are stopped with it (Kimai sync,
	// catalogue polling). An error ends the daemon.
	Background []func(ctx context.Context) error
	Logger     *slog.Logger
	Now        func() time.Time
}

var _ CatalogueSender = (*Daemon)(nil)

// Daemon is a configured DVM.
type Daemon struct {
	cfg       Config
	sk, pub   string
	st        store.Store
	ownStore  bool
	inbox     *inbox.Inbox
	pool      *ingest.Pool
	proc      *ingest.Processor
	roster    *roster.Manager
	metrics   *metrics
	mux       *http.ServeMux
	log       *slog.Logger
	bg        []func(ctx context.Context) error
	addr      chan string
	startedAt time.Time
	deletions chan deletion
	linger    chan struct{} // closed once ingest has drained: relay connections may close
}

// deletion is a processed wrap seen again on a relay, to be deleted there.
type deletion struct{ relay, wrapID string }

// New builds the daemon: it reads the key (refusing a group- or world-readable file),
// opens the store and prepares every part. Run starts it.
func New(cfg Config, opts Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sk, err := ReadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	pub, _ := proto.PublicKey(sk)
	d := &Daemon{cfg: cfg, sk: sk, pub: pub, log: log, mux: http.NewServeMux(), addr: make(chan string, 1), bg: opts.Background,
		deletions: make(chan deletion, 256), linger: make(chan struct{})}
	d.st = opts.Store
	if d.st == nil {
		db, err := sqlite.Open(cfg.DataDir, sqlite.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		d.st, d.ownStore = db, true
	}
	cat := opts.Catalogue
	if cat == nil {
		cat = StaticCatalogue{Projects: cfg.Projects, Activities: cfg.Activities, Policy: cfg.Policy, Names: d.workerName}
	}
	d.roster = &roster.Manager{Store: d.st, Admin: &nip86.Client{SecretKey: sk}, Relays: cfg.Relays,
		Blossoms: cfg.Blossoms, SecretKey: sk, Log: log, Now: now}
	d.proc = &ingest.Processor{
		SecretKey: sk,
		Store:     d.st,
		Opener:    &inbox.Opener{SecretKey: sk, Roster: d.st},
		Fetcher: &ingest.Fetcher{
			Client: blossom.New("http://127.0.0.1", "", blossom.WithLogger(log), blossom.WithTempDir(cfg.DataDir),
				blossom.WithHTTPClient(fetchClient(cfg.BlossomHosts()))),
			AllowedHosts: cfg.BlossomHosts(),
		},
		Catalogue: cat,
		Segments:  opts.Segments,
		Sessions:  opts.Sessions,
		Joiner:    d.roster,
		Policy:    cfg.IngestPolicy(),
		Log:       log,
		Now:       now,
		Backoff:   ingest.Backoff(cfg.RetryMin.D(), cfg.RetryMax.D()),
	}
	d.pool = ingest.NewPool(cfg.Workers, cfg.Queue, d.proc.Handle)
	var cfgs []inbox.Config
	for _, r := range cfg.Relays {
		cfgs = append(cfgs, inbox.Config{
			URL: r, SecretKey: sk, Store: d.st, Sink: d.pool, Log: log, Now: now, Linger: d.linger,
			MinBackoff: cfg.ReconnectMin.D(), MaxBackoff: cfg.ReconnectMax.D(),
			OnWrap:   func(relay string) { d.metrics.wrap(relay) },
			OnReplay: d.replayed,
		})
	}
	if d.inbox, err = inbox.New(cfgs); err != nil {
		d.pool.Close(0)
		d.closeStore()
		return nil, err
	}
	d.proc.Publisher = d.inbox
	d.metrics = newMetrics(d.st, func() float64 { return float64(d.pool.InFlight()) }, d.connectedRelays)
	d.proc.Observer = d.metrics
	if err := d.proc.Init(); err != nil {
		d.pool.Close(0)
		d.closeStore()
		return nil, err
	}
	d.mux.HandleFunc("GET /healthz", d.healthz)
	d.mux.HandleFunc("GET /readyz", d.readyz)
	d.mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	return d, nil
}

// fetchClient follows at most two redirects, and only to allowed hosts: a worker must not
// be able to point the DVM at internal services through a redirect.
func fetchClient(hosts []string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 2 {
			return errors.New("too many redirects")
		}
		if hosts != nil && !slices.Contains(hosts, strings.ToLower(req.URL.Host)) {
			return fmt.Errorf("redirect to %s: not an allowed Blossom server", req.URL.Host)
		}
		return nil
	}}
}

func (d *Daemon) workerName(ctx context.Context, pub string) string {
	w, err := d.st.Worker(ctx, pub)
	if err != nil {
		return ""
	}
	return w.Name
}

func (d *Daemon) closeStore() {
	if d.ownStore {
		d.st.Close()
	}
}

// PublicKey is the DVM's pubkey (hex).
func (d *Daemon) PublicKey() string { return d.pub }

// Store is the daemon's store.
func (d *Daemon) Store() store.Store { return d.st }

// Roster is the daemon's roster manager.
func (d *Daemon) Roster() *roster.Manager { return d.roster }

// Mux is the HTTP mux served on --listen: mount more handlers on it before Run.
func (d *Daemon) Mux() *http.ServeMux { return d.mux }

// Registerer lets other parts add Prometheus series to /metrics.
func (d *Daemon) Registerer() prometheus.Registerer { return d.metrics.reg }

// Addr waits for and returns the HTTP listener's address once Run has bound it.
func (d *Daemon) Addr(ctx context.Context) (string, error) {
	select {
	case a := <-d.addr:
		d.addr <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// SendCatalogue sends the worker its current catalogue (CatalogueSender).
func (d *Daemon) SendCatalogue(ctx context.Context, worker string) error {
	return d.proc.SendCatalogue(ctx, worker)
}

// NotifyCatalogue sends the worker the given catalogue; its signature matches the
// catalogue package's NotifyFunc.
func (d *Daemon) NotifyCatalogue(ctx context.Context, worker string, c proto.Catalogue) error {
	return d.proc.PublishCatalogue(ctx, worker, c)
}

// Run serves until ctx ends, then shuts down gracefully: relays stop being read,
// in-flight ingest finishes (up to ShutdownGrace), background tasks stop, the store closes.
func (d *Daemon) Run(ctx context.Context) error {
	d.startedAt = time.Now()
	defer d.closeStore()
	var srv *http.Server
	serveErr := make(chan error, 1)
	if d.cfg.Listen != "" {
		ln, err := net.Listen("tcp", d.cfg.Listen)
		if err != nil {
			d.pool.Close(0)
			return fmt.Errorf("listen %s: %w", d.cfg.Listen, err)
		}
		d.addr <- ln.Addr().String()
		srv = &http.Server{Handler: d.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
		go func() { serveErr <- srv.Serve(ln) }()
	}
	d.log.Info("powdo-dvm started", "pubkey", d.pub, "relays", d.cfg.Relays, "listen", d.cfg.Listen, "workers", d.cfg.Workers)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	bgErr := make(chan error, len(d.bg)+1)
	for _, task := range d.bg {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := task(runCtx); err != nil && runCtx.Err() == nil {
				bgErr <- err
			}
		}()
	}
	inboxDone := make(chan struct{})
	go func() {
		defer close(inboxDone)
		d.inbox.Run(runCtx)
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.maintain(runCtx)
	}()
	go func() {
		defer wg.Done()
		d.deleteReplays(runCtx)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-bgErr:
		d.log.Error("background task failed; stopping", "err", err)
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	d.log.Info("shutting down: finishing in-flight ingest", "grace", d.cfg.ShutdownGrace.D())
	stop() // relays stop being read; their connections stay for the receipts
	d.pool.Close(d.cfg.ShutdownGrace.D())
	close(d.linger)
	<-inboxDone
	wg.Wait()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
	}
	d.log.Info("powdo-dvm stopped")
	return err
}

// maintain prunes the processed-wrap set (wraps older than relays keep them cannot come
// back) and sweeps files left by failed inserts.
func (d *Daemon) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := d.st.PruneWraps(ctx, time.Now().Add(-60*24*time.Hour)); err != nil && ctx.Err() == nil {
			d.log.Warn("prune processed wraps", "err", err)
		} else if n > 0 {
			d.log.Info("pruned processed wraps", "count", n)
		}
		if n, err := d.st.SweepFiles(ctx, time.Now().Add(-time.Hour)); err != nil && ctx.Err() == nil {
			d.log.Warn("sweep unreferenced files", "err", err)
		} else if n > 0 {
			d.log.Info("swept unreferenced files", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// replayed counts a wrap seen again and asks its relay to delete it (once more).
func (d *Daemon) replayed(relay, wrapID string) {
	d.metrics.replay(relay)
	select {
	case d.deletions <- deletion{relay, wrapID}:
	default: // full: the next listing brings it up again
	}
}

func (d *Daemon) deleteReplays(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case del := <-d.deletions:
			d.proc.RequestDeletion(ctx, del.wrapID, del.relay)
		}
	}
}

func (d *Daemon) connectedRelays() float64 {
	n := 0
	for _, s := range d.inbox.Status() {
		if s.Connected {
			n++
		}
	}
	return float64(n)
}

type health struct {
	Status   string         `json:"status"`
	Pubkey   string         `json:"pubkey"`
	Uptime   string         `json:"uptime"`
	Relays   []inbox.Status `json:"relays"`
	InFlight int            `json:"in_flight"`
	Parked   int            `json:"waiting_retry"`
	Error    string         `json:"error,omitempty"`
}

func (d *Daemon) health() health {
	return health{Status: "ok", Pubkey: d.pub, Uptime: time.Since(d.startedAt).Round(time.Second).String(),
		Relays: d.inbox.Status(), InFlight: d.pool.InFlight(), Parked: d.pool.Parked()}
}

// healthz: the process is alive and serving.
func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.health())
}

// readyz: the store answers and at least one relay has listed its stored wraps.
func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	h := d.health()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if _, err := d.st.WrapProcessed(ctx, "0000000000000000000000000000000000000000000000000000000000000000"); err != nil {
		h.Status, h.Error = "unavailable", "store: "+err.Error()
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	for _, s := range h.Relays {
		if s.Ready {
			writeJSON(w, http.StatusOK, h)
			return
		}
	}
	h.Status, h.Error = "unavailable", "no relay subscription is up yet"
	writeJSON(w, http.StatusServiceUnavailable, h)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return
	}
}
