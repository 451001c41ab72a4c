// Package diary is the work diary: the reviewers' web page and versioned JSON API
// (/api/v1/...) over the DVM's store. Reviewers log in with accounts made by
// `powdo-dvm reviewer add`; every page, API answer and screenshot needs a session.
//
// Mount it at the root of the daemon's HTTP server, or under a prefix with
// http.StripPrefix and Options.BasePath set to the same prefix:
//
//	mux.Handle("/diary/", http.StripPrefix("/diary", diary.New(st, diary.Options{BasePath: "/diary", ...})))
//
// The API is described in API.md beside this file.
package diary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
	"pow.do/shared/proto"
)

// Options configure the diary. CacheDir is required.
type Options struct {
	// CacheDir holds generated thumbnails and the reviewers' choice of each worker's time
	// zone. It is created with mode 0700; files in it are 0600.
	CacheDir string
	// BasePath is the URL path prefix the handler is mounted under ("" for the root),
	// without a trailing slash. Links and cookies use it.
	BasePath string
	// SecretKey is the DVM's secret key (hex). It is used only for evidence exports: to
	// sign the export and to include each worker's NIP-44 conversation key with the DVM,
	// which lets anyone tie the stored rumor to the worker's signed seal. Empty: exports
	// are unsigned and `powdo-dvm verify` reports them as unverifiable.
	SecretKey string
	// SessionTTL is how long a login lasts (default 12 h).
	SessionTTL time.Duration
	// TrustProxy takes the client address from X-Forwarded-For (for the login rate
	// limit). Set it only behind a reverse proxy that sets the header.
	// X-Forwarded-Proto: https always makes cookies Secure.
	TrustProxy bool
	// LoginFailures failed logins per LoginWindow, per client address and per username,
	// before logins are refused with 429 (defaults 5 and 15 minutes).
	LoginFailures int
	LoginWindow   time.Duration
	// PasswordParams is the argon2id cost of the stand-in hash checked for unknown
	// usernames; keep it equal to the cost reviewers' passwords were hashed with
	// (default password.Default, what `powdo-dvm reviewer add` uses).
	PasswordParams password.Params
	// ThumbWidth is the thumbnail width in pixels (default 320).
	ThumbWidth int
	// DefaultZone is the worker time zone used until a reviewer picks one (default UTC).
	DefaultZone *time.Location
	Log         *slog.Logger
	// Now is the clock for sessions and rate limits (default time.Now).
	Now func() time.Time
}

// Diary is the work-diary HTTP handler.
type Diary struct {
	st      store.Store
	opt     Options
	log     *slog.Logger
	mux     *http.ServeMux
	limiter *limiter
	thumbs  *thumbCache
	zones   *zoneStore
	dvmPub  string
	argon   chan struct{} // bounds concurrent password checks (each takes 64 MiB)

	dummyOnce sync.Once
	dummyHash string
}

// New returns the diary's handler. A configuration error is logged and every request
// then gets 503 with the reason, so a broken diary cannot take the daemon down with it.
func New(st store.Store, opt Options) http.Handler {
	d, err := Open(st, opt)
	if err != nil {
		log := opt.Log
		if log == nil {
			log = slog.Default()
		}
		log.Error("work diary disabled", "err", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			setCommonHeaders(w.Header())
			http.Error(w, "work diary unavailable: "+err.Error(), http.StatusServiceUnavailable)
		})
	}
	return d
}

// Open checks the options and prepares the diary.
func Open(st store.Store, opt Options) (*Diary, error) {
	if st == nil {
		return nil, errors.New("diary: no store")
	}
	if opt.CacheDir == "" {
		return nil, errors.New("diary: no cache directory")
	}
	opt.BasePath = strings.TrimRight(opt.BasePath, "/")
	if opt.BasePath != "" && !strings.HasPrefix(opt.BasePath, "/") {
		return nil, fmt.Errorf("diary: base path %q must start with /", opt.BasePath)
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 12 * time.Hour
	}
	if opt.LoginFailures <= 0 {
		opt.LoginFailures = 5
	}
	if opt.LoginWindow <= 0 {
		opt.LoginWindow = 15 * time.Minute
	}
	if opt.PasswordParams == (password.Params{}) {
		opt.PasswordParams = password.Default
	}
	if err := opt.PasswordParams.Validate(); err != nil {
		return nil, fmt.Errorf("diary: password parameters: %w", err)
	}
	if opt.ThumbWidth <= 0 {
		opt.ThumbWidth = 320
	}
	if opt.DefaultZone == nil {
		opt.DefaultZone = time.UTC
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	d := &Diary{st: st, opt: opt, log: opt.Log, argon: make(chan struct{}, 2)}
	if opt.SecretKey != "" {
		pub, err := proto.PublicKey(opt.SecretKey)
		if err != nil {
			return nil, errors.New("diary: the DVM secret key is not valid") // never echo the key
		}
		d.dvmPub = pub
	}
	if err := os.MkdirAll(opt.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("diary: cache dir: %w", err)
	}
	if err := os.Chmod(opt.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("diary: cache dir: %w", err)
	}
	var err error
	if d.thumbs, err = newThumbCache(st, filepath.Join(opt.CacheDir, "thumbs"), opt.ThumbWidth); err != nil {
		return nil, err
	}
	if d.zones, err = openZones(filepath.Join(opt.CacheDir, "worker-zones.json")); err != nil {
		return nil, err
	}
	d.limiter = newLimiter(opt.LoginFailures, opt.LoginWindow)
	d.routes()
	return d, nil
}

func (d *Diary) routes() {
	m := http.NewServeMux()
	// Public: the login form and the static assets.
	m.HandleFunc("GET /login", d.loginForm)
	m.HandleFunc("POST /login", d.login)
	m.Handle("GET /static/", staticHandler())

	page := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, d.requirePage(h)) }
	api := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, d.requireAPI(h)) }

	page("POST /logout", d.logout)
	page("GET /{$}", d.pageIndex)
	page("GET /workers/{pk}", d.pageWorker)
	page("GET /workers/{pk}/days/{day}", d.pageDay)
	page("POST /workers/{pk}/zone", d.setWorkerZone)
	page("GET /segments/{id}", d.pageSegment)
	page("GET /timesheets/{id}", d.pageTimesheet)

	api("GET /api/v1/me", d.apiMe)
	api("GET /api/v1/workers", d.apiWorkers)
	api("GET /api/v1/workers/{pk}", d.apiWorker)
	api("GET /api/v1/workers/{pk}/days", d.apiDays)
	api("GET /api/v1/workers/{pk}/days/{day}", d.apiDay)
	api("GET /api/v1/workers/{pk}/weeks/{day}", d.apiWeek)
	api("GET /api/v1/workers/{pk}/days/{day}/export.csv", d.exportCSV(false))
	api("GET /api/v1/workers/{pk}/weeks/{day}/export.csv", d.exportCSV(true))
	api("GET /api/v1/workers/{pk}/days/{day}/export.zip", d.exportZIP(false))
	api("GET /api/v1/workers/{pk}/weeks/{day}/export.zip", d.exportZIP(true))
	api("GET /api/v1/segments/{id}", d.apiSegment)
	api("GET /api/v1/timesheets/{id}", d.apiTimesheet)
	api("GET /api/v1/screenshots/{sha}", d.screenshot)
	api("GET /api/v1/screenshots/{sha}/thumb", d.thumbnail)
	api("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such API endpoint")
	})
	d.mux = m
}

// ServeHTTP serves the diary with its security headers on every answer.
func (d *Diary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w.Header())
	d.mux.ServeHTTP(w, r)
}

// setCommonHeaders: nothing the diary serves may be cached by a shared cache or kept on
// disk by the browser (screenshots are personal data), framed, or sniffed.
func setCommonHeaders(h http.Header) {
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// path is an absolute URL path under the base path.
func (d *Diary) path(p string) string { return d.opt.BasePath + p }

// ctxKey keys request-scoped values.
type ctxKey int

const sessionKey ctxKey = 1

// sessionFrom returns the logged-in session of a request that passed require*.
func sessionFrom(ctx context.Context) store.WebSession {
	s, _ := ctx.Value(sessionKey).(store.WebSession)
	return s
}
