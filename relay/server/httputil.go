package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
)

// fail answers an HTTP error the Blossom way: the status the BUDs name, and the reason in
// X-Reason (clients show it) and in the body for humans.
func fail(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set("X-Reason", reason)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, reason+"\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "Authorization, *")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, DELETE, POST, OPTIONS")
	h.Set("Access-Control-Expose-Headers", "X-Reason, Content-Length, Content-Range, Accept-Ranges")
	h.Set("Access-Control-Max-Age", "86400")
}

// reasonWriter adds an X-Reason to error answers written by code that does not set one
// (http.ServeContent's 416, for instance), so every error carries it.
type reasonWriter struct {
	http.ResponseWriter
	status int
}

func (rw *reasonWriter) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
		if code >= 400 && rw.Header().Get("X-Reason") == "" {
			rw.Header().Set("X-Reason", http.StatusText(code))
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *reasonWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for blob downloads.
func (rw *reasonWriter) ReadFrom(r io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(rw.ResponseWriter, r)
}

func (rw *reasonWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *reasonWriter) code() int {
	if rw.status == 0 {
		return http.StatusOK
	}
	return rw.status
}

// clientIP is the peer address, or the first public X-Forwarded-For entry when the operator
// said a proxy is in front (otherwise that header is trivially forged).
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			for _, v := range strings.Split(xff, ",") {
				if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
					return ip.String()
				}
			}
		}
		if xr := net.ParseIP(strings.TrimSpace(r.Header.Get("X-Real-Ip"))); xr != nil {
			return xr.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// baseURL is the public http(s) base URL: configured, or derived from the request.
func (s *Server) baseURL(r *http.Request) string {
	if s.base != "" {
		return s.base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if s.cfg.TrustProxy {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
	}
	return scheme + "://" + r.Host
}

// hostMatches reports whether a BUD-11 server tag value names this server.
func (s *Server) hostMatches(r *http.Request, tag string) bool {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.Index(tag, "://"); i >= 0 {
		tag = tag[i+3:]
	}
	tag = strings.TrimSuffix(strings.SplitN(tag, "/", 2)[0], ".")
	host := strings.ToLower(strings.SplitN(strings.SplitN(s.baseURL(r), "://", 2)[1], "/", 2)[0])
	if tag == host {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	return err == nil && tag == h
}
