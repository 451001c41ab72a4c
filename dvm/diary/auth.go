package diary

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
)

// Cookie names.
const (
	sessionCookie = "powdo_diary"
	loginCookie   = "powdo_diary_login" // the login form's CSRF token (double submit)
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
	maxFormBytes  = 16 << 10
)

// dummy is the hash checked when the username is unknown, so that a wrong username
// takes as long as a wrong password and does not reveal which accounts exist.
func (d *Diary) dummy() string {
	d.dummyOnce.Do(func() {
		h, err := password.Hash("no such reviewer, no such password", d.opt.PasswordParams)
		if err != nil {
			panic("diary: hash the stand-in password: " + err.Error()) // the params were checked in Open
		}
		d.dummyHash = h
	})
	return d.dummyHash
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("diary: crypto/rand failed: " + err.Error()) // the kernel's RNG does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func equalTokens(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether the browser reached us over TLS (directly or through a proxy).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *Diary) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	p := d.opt.BasePath
	if p == "" {
		p = "/"
	}
	return &http.Cookie{Name: name, Value: value, Path: p, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)}
}

// session finds the request's login session; ok=false when there is none or it expired.
func (d *Diary) session(r *http.Request) (store.WebSession, bool, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return store.WebSession{}, false, nil
	}
	s, err := d.st.WebSession(r.Context(), tokenHash(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return store.WebSession{}, false, nil
	}
	if err != nil {
		return store.WebSession{}, false, err
	}
	return s, true, nil
}

// requireAPI answers 401 without a session, and checks the CSRF token of anything but
// GET and HEAD.
func (d *Diary) requireAPI(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok, err := d.session(r)
		switch {
		case err != nil:
			d.log.Error("diary: read session", "err", err)
			apiError(w, http.StatusInternalServerError, "session store unavailable")
			return
		case !ok:
			apiError(w, http.StatusUnauthorized, "login required")
			return
		case !d.csrfOK(r, s):
			apiError(w, http.StatusForbidden, "missing or wrong CSRF token")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey, s)))
	})
}

// requirePage sends a browser without a session to the login form.
func (d *Diary) requirePage(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok, err := d.session(r)
		switch {
		case err != nil:
			d.log.Error("diary: read session", "err", err)
			http.Error(w, "session store unavailable", http.StatusInternalServerError)
			return
		case !ok && r.Method == http.MethodGet:
			next := d.path(r.URL.Path)
			if r.URL.RawQuery != "" {
				next += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, d.path("/login")+"?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		case !ok:
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		case !d.csrfOK(r, s):
			http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey, s)))
	})
}

// csrfOK checks state-changing requests: the session's token must come back in the form
// field or the X-CSRF-Token header, and a cross-site Origin is refused outright.
func (d *Diary) csrfOK(r *http.Request, s store.WebSession) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	if !sameOrigin(r) {
		return false
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return false
	}
	tok := r.Header.Get(csrfHeader)
	if tok == "" {
		tok = r.PostForm.Get(csrfField)
	}
	return equalTokens(tok, s.CSRF)
}

// sameOrigin refuses a request whose Origin header names another host. Browsers send
// Origin on every POST; its absence (curl, old browsers) leaves the token to decide.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = fh
	}
	return strings.EqualFold(u.Host, host)
}

// clientAddr is the address the login rate limit counts.
func (d *Diary) clientAddr(r *http.Request) string {
	if d.opt.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1]) // the address our proxy saw
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-login redirect on this site, under the base path.
func (d *Diary) safeNext(next string) string {
	home := d.path("/")
	if next == "" || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, home) {
		return home
	}
	return next
}

type loginView struct {
	layoutView
	CSRF  string
	Next  string
	User  string
	Error string
}

func (d *Diary) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := d.session(r); ok {
		http.Redirect(w, r, d.safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.renderLogin(w, r, http.StatusOK, "", "")
}

func (d *Diary) renderLogin(w http.ResponseWriter, r *http.Request, status int, user, msg string) {
	tok := randomToken()
	http.SetCookie(w, d.cookie(r, loginCookie, tok, 3600))
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	v := loginView{layoutView: d.layout(r, "Log in", store.WebSession{}), CSRF: tok, Next: d.safeNext(next), User: user, Error: msg}
	d.render(w, status, "login.html", v)
}

func (d *Diary) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equalTokens(r.PostForm.Get(csrfField), c.Value) {
		d.log.Warn("diary: login without a valid CSRF token", "addr", d.clientAddr(r))
		d.renderLogin(w, r, http.StatusForbidden, "", "The form expired or did not come from this site. Please try again.")
		return
	}
	user := r.PostForm.Get("username")
	pw := r.PostForm.Get("password")
	addr := d.clientAddr(r)
	logUser := clip(user) // attacker-chosen: keep log lines short
	now := d.opt.Now()
	if wait := d.limiter.blocked(now, "addr:"+addr, "user:"+user); wait > 0 {
		d.log.Warn("diary: login rate limited", "addr", addr, "user", logUser)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		d.renderLogin(w, r, http.StatusTooManyRequests, user, "Too many failed logins. Try again in "+wait.Round(time.Second).String()+".")
		return
	}
	ok, err := d.checkPassword(r.Context(), user, pw)
	if err != nil {
		d.log.Error("diary: check password", "user", logUser, "err", err)
		d.renderLogin(w, r, http.StatusInternalServerError, user, "Login is unavailable right now.")
		return
	}
	if !ok {
		d.limiter.fail(now, "addr:"+addr, "user:"+user)
		d.log.Warn("diary: failed login", "addr", addr, "user", logUser)
		d.renderLogin(w, r, http.StatusUnauthorized, user, "Wrong username or password.")
		return
	}
	d.limiter.reset("user:" + user)
	tok := randomToken()
	s := store.WebSession{TokenHash: tokenHash(tok), Reviewer: user, CSRF: randomToken(), CreatedAt: now, ExpiresAt: now.Add(d.opt.SessionTTL)}
	if err := d.st.CreateWebSession(r.Context(), s); err != nil {
		d.log.Error("diary: create session", "user", logUser, "err", err)
		d.renderLogin(w, r, http.StatusInternalServerError, user, "Login is unavailable right now.")
		return
	}
	if n, err := d.st.PruneWebSessions(r.Context()); err == nil && n > 0 {
		d.log.Debug("diary: pruned expired sessions", "n", n)
	}
	d.log.Info("diary: reviewer logged in", "user", logUser, "addr", addr)
	http.SetCookie(w, d.cookie(r, sessionCookie, tok, int(d.opt.SessionTTL.Seconds())))
	http.SetCookie(w, d.cookie(r, loginCookie, "", -1))
	http.Redirect(w, r, d.safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// checkPassword verifies user's password; an unknown user costs the same as a known one.
func (d *Diary) checkPassword(ctx context.Context, user, pw string) (bool, error) {
	select {
	case d.argon <- struct{}{}:
		defer func() { <-d.argon }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	hash := ""
	known := false
	if user != "" && len(user) <= store.MaxNameBytes {
		rv, err := d.st.Reviewer(ctx, user)
		switch {
		case err == nil:
			hash, known = rv.PasswordHash, true
		case !errors.Is(err, store.ErrNotFound):
			return false, err
		}
	}
	if !known {
		password.Verify(pw, d.dummy())
		return false, nil
	}
	ok, err := password.Verify(pw, hash)
	if err != nil {
		return false, err
	}
	return ok, nil
}

func (d *Diary) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	if err := d.st.DeleteWebSession(r.Context(), s.TokenHash); err != nil {
		d.log.Error("diary: logout", "err", err)
		http.Error(w, "logout failed", http.StatusInternalServerError)
		return
	}
	d.log.Info("diary: reviewer logged out", "user", s.Reviewer)
	http.SetCookie(w, d.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, d.path("/login"), http.StatusSeeOther)
}

// limiter counts failed logins per key in a sliding window.
type limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, fails: map[string][]time.Time{}}
}

// blocked returns how long until the first of keys may try again (0: now).
func (l *limiter) blocked(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		ts := l.recent(now, k)
		if len(ts) >= l.max {
			wait = max(wait, ts[len(ts)-l.max].Add(l.window).Sub(now))
		}
	}
	return wait
}

func (l *limiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100_000 {
		for k := range l.fails { // drop keys whose failures all aged out
			if len(l.recent(now, k)) == 0 {
				delete(l.fails, k)
			}
		}
	}
	for _, k := range keys {
		ts := append(l.recent(now, k), now)
		if len(ts) > l.max {
			ts = ts[len(ts)-l.max:]
		}
		l.fails[k] = ts
	}
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// recent drops key's failures older than the window; callers hold mu.
func (l *limiter) recent(now time.Time, key string) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.window)) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}
