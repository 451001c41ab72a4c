package diary_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/store"
)

func sessionCookie(t *testing.T, c *http.Client, base string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "powdo_diary" {
			return ck
		}
	}
	return nil
}

func TestNoSessionNoData(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	c := browser(t)
	pk := f.data.Alice.Pub
	shot := sha(f.data.Sent[pk][0].Shots[0].JPEG)
	for _, p := range []string{
		"/api/v1/workers", "/api/v1/workers/" + pk, "/api/v1/workers/" + pk + "/days", "/api/v1/workers/" + pk + "/days/2026-11-16",
		"/api/v1/workers/" + pk + "/days/2026-11-16/export.zip", "/api/v1/workers/" + pk + "/weeks/2026-11-16/export.csv",
		"/api/v1/segments/1", "/api/v1/timesheets/501", "/api/v1/screenshots/" + shot, "/api/v1/screenshots/" + shot + "/thumb",
		"/api/v1/me", "/api/v1/nothing",
	} {
		resp, body := get(t, c, srv.URL+p)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), pk) {
			t.Errorf("GET %s without a session: status %d, body %.80s", p, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "private, no-store" {
			t.Errorf("GET %s: Cache-Control %q", p, cc)
		}
	}
	for _, p := range []string{"/", "/workers/" + pk, "/workers/" + pk + "/days/2026-11-16?tz=UTC", "/segments/1", "/timesheets/501"} {
		resp, body := get(t, c, srv.URL+p)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") ||
			strings.Contains(string(body), f.data.Alice.Name) || strings.Contains(string(body), "screenshots") {
			t.Errorf("GET %s without a session: status %d, Location %q", p, resp.StatusCode, loc)
			continue
		}
		if next, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/login?next=")); next != p {
			t.Errorf("GET %s: next=%q", p, next)
		}
	}
	resp, _ := postForm(t, c, srv.URL+"/logout", url.Values{"csrf": {"x"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /logout without a session: %d", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	c := login(t, srv.URL)
	for _, p := range []string{"/login", "/", "/api/v1/workers", "/workers/" + f.data.Bob.Pub} {
		resp, _ := get(t, c, srv.URL+p)
		h := resp.Header
		if h.Get("Cache-Control") != "private, no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: headers %v", p, h)
		}
	}
	// Assets need no login and carry no CDN reference.
	for _, p := range []string{"/static/diary.css", "/static/diary.js"} {
		resp, body := get(t, browser(t), srv.URL+p)
		if resp.StatusCode != http.StatusOK || len(body) < 100 || strings.Contains(string(body), "http") {
			t.Errorf("%s: status %d, %d bytes", p, resp.StatusCode, len(body))
		}
	}
}

func TestLoginLogout(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	ctx := context.Background()

	// Wrong password and unknown user: 401, the same message, no session.
	for _, tc := range []struct{ user, pw string }{{reviewer, reviewerPW + "!"}, {"nobody", reviewerPW}, {reviewer, ""}} {
		c := browser(t)
		resp, body := postLogin(t, c, srv.URL, tc.user, tc.pw)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") || sessionCookie(t, c, srv.URL) != nil {
			t.Fatalf("login %q/%q: status %d, session %v", tc.user, tc.pw, resp.StatusCode, sessionCookie(t, c, srv.URL))
		}
		if strings.Contains(body, tc.pw) && tc.pw != "" {
			t.Fatal("the login page echoes the password")
		}
	}

	c := browser(t)
	resp, _ := postLogin(t, c, srv.URL, reviewer, reviewerPW)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var raw *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "powdo_diary" {
			raw = ck
		}
	}
	if raw == nil || !raw.HttpOnly || raw.SameSite != http.SameSiteStrictMode || raw.Secure || raw.Path != "/" || raw.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", raw)
	}
	// The store keeps only the token's hash.
	sum := sha256.Sum256([]byte(raw.Value))
	if _, err := f.db.WebSession(ctx, hex.EncodeToString(sum[:])); err != nil {
		t.Fatalf("session by token hash: %v", err)
	}
	if _, err := f.db.WebSession(ctx, raw.Value); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session by raw token: %v", err)
	}
	getJSON(t, c, srv.URL+"/api/v1/workers", http.StatusOK, nil)

	// Logout needs the CSRF token; then the old cookie is worthless.
	resp, _ = postForm(t, c, srv.URL+"/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d", resp.StatusCode)
	}
	getJSON(t, c, srv.URL+"/api/v1/workers", http.StatusOK, nil)
	tok := formToken(t, c, srv.URL+"/")
	resp, _ = postForm(t, c, srv.URL+"/logout", url.Values{"csrf": {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	replay := browser(t)
	u, _ := url.Parse(srv.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "powdo_diary", Value: raw.Value}})
	getJSON(t, replay, srv.URL+"/api/v1/workers", http.StatusUnauthorized, nil)

	// Behind a TLS proxy the cookie is Secure.
	c = browser(t)
	tok = formToken(t, c, srv.URL+"/login")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"csrf": {tok}, "username": {reviewer}, "password": {reviewerPW}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := c.Do(req)
	must(t, err)
	resp.Body.Close()
	secure := false
	for _, ck := range resp.Cookies() {
		secure = secure || (ck.Name == "powdo_diary" && ck.Secure)
	}
	if resp.StatusCode != http.StatusSeeOther || !secure {
		t.Fatalf("login behind TLS: %d, Secure cookie %v", resp.StatusCode, secure)
	}
}

func TestSessionExpires(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, func(o *diary.Options) { o.SessionTTL = time.Hour })
	c := login(t, srv.URL)
	getJSON(t, c, srv.URL+"/api/v1/workers", http.StatusOK, nil)
	f.clock.Advance(61 * time.Minute)
	getJSON(t, c, srv.URL+"/api/v1/workers", http.StatusUnauthorized, nil)
}

func TestCSRF(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)

	// The login form: without its token, or with another browser's, it is refused.
	c := browser(t)
	resp, _ := postForm(t, c, srv.URL+"/login", url.Values{"username": {reviewer}, "password": {reviewerPW}})
	if resp.StatusCode != http.StatusForbidden || sessionCookie(t, c, srv.URL) != nil {
		t.Fatalf("login without CSRF token: %d", resp.StatusCode)
	}
	other := formToken(t, browser(t), srv.URL+"/login")
	formToken(t, c, srv.URL+"/login") // c gets its own cookie
	resp, _ = postForm(t, c, srv.URL+"/login", url.Values{"csrf": {other}, "username": {reviewer}, "password": {reviewerPW}})
	if resp.StatusCode != http.StatusForbidden || sessionCookie(t, c, srv.URL) != nil {
		t.Fatalf("login with another browser's CSRF token: %d", resp.StatusCode)
	}

	// A state change while logged in: the worker's zone.
	c = login(t, srv.URL)
	pk := f.data.Bob.Pub
	zoneOf := func() string {
		var w struct{ Zone string }
		getJSON(t, c, srv.URL+"/api/v1/workers/"+pk, http.StatusOK, &w)
		return w.Zone
	}
	before := zoneOf()
	resp, _ = postForm(t, c, srv.URL+"/workers/"+pk+"/zone", url.Values{"zone": {"Asia/Tokyo"}})
	if resp.StatusCode != http.StatusForbidden || zoneOf() != before {
		t.Fatalf("zone change without CSRF token: %d, zone %q", resp.StatusCode, zoneOf())
	}
	resp, _ = postForm(t, c, srv.URL+"/workers/"+pk+"/zone", url.Values{"zone": {"Asia/Tokyo"}, "csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden || zoneOf() != before {
		t.Fatalf("zone change with a wrong CSRF token: %d", resp.StatusCode)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	getJSON(t, c, srv.URL+"/api/v1/me", http.StatusOK, &me)
	// Right token, but the request comes from another site's page.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/workers/"+pk+"/zone", strings.NewReader(url.Values{"zone": {"Asia/Tokyo"}, "csrf": {me.CSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || zoneOf() != before {
		t.Fatalf("cross-origin zone change: %d", resp.StatusCode)
	}
	// The token in the header, from the API.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/workers/"+pk+"/zone", strings.NewReader(url.Values{"zone": {"Asia/Tokyo"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", me.CSRF)
	resp, err = c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || zoneOf() != "Asia/Tokyo" {
		t.Fatalf("zone change with the CSRF header: %d, zone %q", resp.StatusCode, zoneOf())
	}
	tok := formToken(t, c, srv.URL+"/workers/"+pk)
	resp, _ = postForm(t, c, srv.URL+"/workers/"+pk+"/zone", url.Values{"zone": {"Not/AZone"}, "csrf": {tok}})
	if resp.StatusCode != http.StatusBadRequest || zoneOf() != "Asia/Tokyo" {
		t.Fatalf("unknown zone: %d, zone %q", resp.StatusCode, zoneOf())
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := fixture(t)
	now := seed.NewClock(f.clock.Now())
	srv, _ := f.server(t, func(o *diary.Options) {
		o.LoginFailures = 3
		o.LoginWindow = 10 * time.Minute
		o.Now = now.Now
	})
	for i := 0; i < 3; i++ {
		resp, _ := postLogin(t, browser(t), srv.URL, reviewer, "wrong password")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, resp.StatusCode)
		}
	}
	// Now even the right password is refused, before it is checked.
	c := browser(t)
	resp, body := postLogin(t, c, srv.URL, reviewer, reviewerPW)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || sessionCookie(t, c, srv.URL) != nil ||
		!strings.Contains(body, "Too many failed logins") {
		t.Fatalf("after 3 failures: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another username from the same address is limited too (per-address count).
	resp, _ = postLogin(t, browser(t), srv.URL, "someone-else", "whatever")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("other user, same address: %d", resp.StatusCode)
	}
	now.Advance(10*time.Minute + time.Second)
	c = browser(t)
	resp, _ = postLogin(t, c, srv.URL, reviewer, reviewerPW)
	if resp.StatusCode != http.StatusSeeOther || sessionCookie(t, c, srv.URL) == nil {
		t.Fatalf("after the window: status %d", resp.StatusCode)
	}
}

func TestOpenRedirect(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	for next, want := range map[string]string{
		"//evil.example/x":      "/",
		"https://evil.example/": "/",
		"/workers/abc?tz=UTC":   "/workers/abc?tz=UTC",
		"\\\\evil.example":      "/",
		"javascript:alert(1)":   "/",
	} {
		c := browser(t)
		tok := formToken(t, c, srv.URL+"/login")
		resp, _ := postForm(t, c, srv.URL+"/login", url.Values{"csrf": {tok}, "username": {reviewer}, "password": {reviewerPW}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("next=%q: %d to %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// TestBasePath mounts the diary under /diary, as a daemon sharing its port would.
func TestBasePath(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, func(o *diary.Options) { o.BasePath = "/diary" })
	c := browser(t)
	resp, _ := get(t, c, srv.URL+"/diary/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/diary/login?next=%2Fdiary%2F") {
		t.Fatalf("GET /diary/: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok := formToken(t, c, srv.URL+"/diary/login")
	resp, _ = postForm(t, c, srv.URL+"/diary/login", url.Values{"csrf": {tok}, "username": {reviewer}, "password": {reviewerPW}, "next": {"/diary/workers/x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/diary/workers/x" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "powdo_diary" && ck.Path != "/diary" {
			t.Fatalf("cookie path %q", ck.Path)
		}
	}
	resp, body := get(t, c, srv.URL+"/diary/workers/"+f.data.Alice.Pub+"/days/2026-11-16")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `src="/diary/api/v1/screenshots/`) || !strings.Contains(string(body), `href="/diary/static/diary.css"`) {
		t.Fatalf("day page under /diary: %d", resp.StatusCode)
	}
}

func TestStaticHasNoListing(t *testing.T) {
	f := fixture(t)
	srv, _ := f.server(t, nil)
	follow := &http.Client{Timeout: 10 * time.Second} // follows the mux's path-cleaning redirect
	for _, p := range []string{"/static/", "/static/../diary.go", "/static/nothing.css", "/static/%2e%2e/diary.go"} {
		if resp, _ := get(t, follow, srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}
