package kimaiemu

import (
	"crypto/sha256"
	"crypto/subtle"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// tokenPattern is what Symfony's header access-token extractor accepts.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

var bearerHeader = regexp.MustCompile(`^Bearer ([A-Za-z0-9\-._~+/]+=*)$`)

const (
	legacyFailureLimit  = 5
	legacyFailureWindow = time.Minute
)

// authenticate resolves the request's user or writes Kimai's refusal.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*User, bool) {
	if m := bearerHeader.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		if u := s.userForToken(m[1]); u != nil {
			return u, true
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token",error_description="Invalid credentials."`)
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	}
	login, secret := r.Header.Get("X-AUTH-USER"), r.Header.Get("X-AUTH-TOKEN")
	if login != "" && secret != "" {
		return s.legacyAuthenticate(w, r, login, secret)
	}
	writeError(w, http.StatusUnauthorized, "Unauthorized")
	return nil, false
}

// userForToken compares digests in constant time against every user so the
// response time does not reveal how much of a token matched.
func (s *Server) userForToken(token string) *User {
	sum := sha256.Sum256([]byte(token))
	var found *User
	for _, u := range s.users {
		h, ok := s.tokenHash[u.ID]
		if ok && subtle.ConstantTimeCompare(h[:], sum[:]) == 1 {
			found = u
		}
	}
	if found == nil || found.Disabled {
		return nil
	}
	if found.APITokenExpires != nil && !s.now().Before(*found.APITokenExpires) {
		return nil
	}
	return found
}

// legacyAuthenticate is the deprecated X-AUTH-USER/X-AUTH-TOKEN login: every
// request is slowed down, failures answer 403, and after five failures
// within a minute from one IP address every legacy login from it is refused
// with 400 until the window has passed.
func (s *Server) legacyAuthenticate(w http.ResponseWriter, r *http.Request, login, secret string) (*User, bool) {
	s.legacyDelay(r)
	ip := clientIP(r)
	now := s.now()
	s.throttleMu.Lock()
	recent := s.failures[ip][:0]
	for _, t := range s.failures[ip] {
		if now.Sub(t) < legacyFailureWindow {
			recent = append(recent, t)
		}
	}
	s.failures[ip] = recent
	throttled := len(recent) >= legacyFailureLimit
	s.throttleMu.Unlock()
	if throttled {
		writeError(w, http.StatusBadRequest, "Too many failed login attempts, please try again in 1 minute.")
		return nil, false
	}

	u := s.byLogin[strings.ToLower(login)]
	sum := sha256.Sum256([]byte(secret))
	ok := false
	if u != nil {
		if h, has := s.legacyHash[u.ID]; has && subtle.ConstantTimeCompare(h[:], sum[:]) == 1 && !u.Disabled {
			ok = true
		}
	}
	if !ok {
		s.throttleMu.Lock()
		s.failures[ip] = append(s.failures[ip], now)
		s.throttleMu.Unlock()
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Invalid credentials"})
		return nil, false
	}
	return u, true
}

func (s *Server) legacyDelay(r *http.Request) {
	if s.delayMax <= 0 {
		return
	}
	d := s.delayMin
	if span := s.delayMax - s.delayMin; span > 0 {
		d += rand.N(span)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
