package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/relay/blobstore"
)

// descriptor is a BUD-02 blob descriptor.
type descriptor struct {
	URL      string `json:"url"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Type     string `json:"type,omitempty"`
	Uploaded int64  `json:"uploaded"`
}

func (s *Server) descriptor(r *http.Request, m blobstore.Meta) descriptor {
	return descriptor{URL: s.baseURL(r) + "/" + m.SHA256, SHA256: m.SHA256, Size: m.Size, Type: m.Type, Uploaded: m.Uploaded}
}

// blobPath splits "/<sha256>[.ext]".
func blobPath(p string) (hash, ext string, ok bool) {
	p = strings.TrimPrefix(p, "/")
	hash, ext, _ = strings.Cut(p, ".")
	if !blobstore.IsHash(hash) || strings.Contains(ext, "/") {
		return "", "", false
	}
	return hash, ext, true
}

// serveBlossom routes the BUD endpoints; it reports false for paths that are not Blossom's.
func (s *Server) serveBlossom(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/upload":
		switch r.Method {
		case http.MethodPut:
			s.handleUpload(w, r)
		case http.MethodHead:
			s.handleUploadPreflight(w, r)
		default:
			fail(w, http.StatusMethodNotAllowed, "use PUT /upload to upload, HEAD /upload to ask first")
		}
	case r.URL.Path == "/mirror":
		if r.Method != http.MethodPut {
			fail(w, http.StatusMethodNotAllowed, "use PUT /mirror")
			return true
		}
		s.handleMirror(w, r)
	case strings.HasPrefix(r.URL.Path, "/list/"):
		if r.Method != http.MethodGet {
			fail(w, http.StatusMethodNotAllowed, "use GET /list/<pubkey>")
			return true
		}
		s.handleList(w, r)
	default:
		hash, ext, ok := blobPath(r.URL.Path)
		if !ok {
			return false
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleGet(w, r, hash, ext)
		case http.MethodDelete:
			s.handleDelete(w, r, hash)
		default:
			fail(w, http.StatusMethodNotAllowed, "use GET, HEAD or DELETE on a blob")
		}
	}
	return true
}

// uploader runs the checks every upload path shares: per-IP limit, token, whitelist,
// per-pubkey limit. It answers the refusal itself and returns "" then.
func (s *Server) uploader(w http.ResponseWriter, r *http.Request, hash string) (string, *nostr.Event) {
	if !s.upIP.Allow(s.clientIP(r)) {
		s.refuseUpload(w, http.StatusTooManyRequests, fmt.Sprintf("too often: at most %d uploads per minute from one address", s.cfg.UploadsPerMinuteIP))
		return "", nil
	}
	tok, aerr := s.verifyBlossomToken(r, "upload", hash)
	if aerr != nil {
		s.refuseUpload(w, aerr.status, aerr.reason)
		return "", nil
	}
	if who := s.blossomWho(tok.PubKey); who != "" {
		s.refuseUpload(w, http.StatusForbidden, who)
		return "", nil
	}
	if !s.upPK.Allow(tok.PubKey) {
		s.refuseUpload(w, http.StatusTooManyRequests, fmt.Sprintf("too often: at most %d uploads per minute per key", s.cfg.UploadsPerMinutePubkey))
		return "", nil
	}
	return tok.PubKey, tok
}

func (s *Server) blossomWho(pk string) string {
	if s.access.IsBanned(pk) {
		return "your key is banned from this server"
	}
	if !s.access.IsAllowed(pk) {
		return "your key is not on this server's whitelist"
	}
	return ""
}

func (s *Server) refuseUpload(w http.ResponseWriter, status int, reason string) {
	s.metrics.uploads.WithLabelValues(strconv.Itoa(status)).Inc()
	fail(w, status, reason)
}

func contentType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || len(mt) > 100 {
		return "application/octet-stream"
	}
	return mt
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	want := strings.ToLower(strings.TrimSpace(r.Header.Get("X-SHA-256")))
	if want != "" && !blobstore.IsHash(want) {
		s.refuseUpload(w, http.StatusBadRequest, "X-SHA-256 must be 64 lowercase hex characters")
		return
	}
	// Size checks come before anything is read, and before the token is even parsed.
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		s.refuseUpload(w, http.StatusLengthRequired, "Content-Length is required")
		return
	}
	if r.ContentLength > s.cfg.MaxBlobBytes {
		s.refuseUpload(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("too big: %d bytes, the limit is %d", r.ContentLength, s.cfg.MaxBlobBytes))
		return
	}
	if r.ContentLength == 0 {
		s.refuseUpload(w, http.StatusBadRequest, "empty body")
		return
	}
	pk, ev := s.uploader(w, r, want)
	if pk == "" {
		return
	}
	if want == "" && ev.Tags.Find("x") == nil {
		s.refuseUpload(w, http.StatusForbidden, "the upload token carries no x tag")
		return
	}
	// An upload of a blob already stored is still read and hashed: the uploader proves it
	// has the bytes before it becomes an owner (and may delete its copy).
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.UploadTimeout))
	m, created, err := s.blobs.Put(r.Body, blobstore.PutOptions{
		Size:    r.ContentLength,
		MaxSize: s.cfg.MaxBlobBytes,
		Expect:  want,
		Check: func(h string) error {
			if !tokenCovers(ev, h) {
				return fmt.Errorf("the token does not cover the body's sha256 %s", h)
			}
			return nil
		},
		Owner:    pk,
		Type:     contentType(r.Header.Get("Content-Type")),
		Uploaded: s.now(),
	})
	s.finishUpload(w, r, m, created, err, pk)
}

func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, m blobstore.Meta, created bool, err error, pk string) {
	if err != nil {
		status, reason := http.StatusBadRequest, err.Error()
		switch {
		case errors.Is(err, blobstore.ErrTooLarge):
			status, reason = http.StatusRequestEntityTooLarge, fmt.Sprintf("too big: the body exceeds its Content-Length or the limit of %d bytes", s.cfg.MaxBlobBytes)
		case errors.Is(err, blobstore.ErrHashMismatch):
			status, reason = http.StatusConflict, "the body's sha256 differs from X-SHA-256"
		case errors.Is(err, blobstore.ErrRejected):
			status, reason = http.StatusForbidden, "the token does not cover the body's sha256"
		case errors.Is(err, blobstore.ErrShort):
			reason = "the body is shorter than its Content-Length"
		case errors.Is(err, context.DeadlineExceeded) || strings.Contains(reason, "timeout"):
			status, reason = http.StatusRequestTimeout, "upload took too long"
		default:
			reason = "upload failed while reading the body"
		}
		s.log.Info("upload refused", "pubkey", pk, "status", status, "err", err, "ip", s.clientIP(r))
		s.refuseUpload(w, status, reason)
		return
	}
	if created {
		s.metrics.uploads.WithLabelValues("created").Inc()
		s.metrics.uploadBytes.Add(float64(m.Size))
		s.log.Info("blob stored", "sha256", m.SHA256, "size", m.Size, "pubkey", pk)
		if _, total := s.blobs.Usage(); s.cfg.BlobQuotaBytes > 0 && total > s.cfg.BlobQuotaBytes {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		writeJSON(w, http.StatusCreated, s.descriptor(r, m))
		return
	}
	s.metrics.uploads.WithLabelValues("existing").Inc()
	writeJSON(w, http.StatusOK, s.descriptor(r, m))
}

// handleUploadPreflight is BUD-06 HEAD /upload: would this upload be accepted?
func (s *Server) handleUploadPreflight(w http.ResponseWriter, r *http.Request) {
	want := strings.ToLower(strings.TrimSpace(r.Header.Get("X-SHA-256")))
	if !blobstore.IsHash(want) {
		fail(w, http.StatusBadRequest, "X-SHA-256 must be 64 lowercase hex characters")
		return
	}
	lv := r.Header.Get("X-Content-Length")
	if lv == "" {
		fail(w, http.StatusLengthRequired, "X-Content-Length is required")
		return
	}
	n, err := strconv.ParseInt(lv, 10, 64)
	if err != nil || n < 0 {
		fail(w, http.StatusBadRequest, "X-Content-Length must be a byte count")
		return
	}
	if n > s.cfg.MaxBlobBytes {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("too big: %d bytes, the limit is %d", n, s.cfg.MaxBlobBytes))
		return
	}
	if !s.upIP.Peek(s.clientIP(r)) {
		fail(w, http.StatusTooManyRequests, "too often: wait before uploading")
		return
	}
	tok, aerr := s.verifyBlossomToken(r, "upload", want)
	if aerr != nil {
		fail(w, aerr.status, aerr.reason)
		return
	}
	if who := s.blossomWho(tok.PubKey); who != "" {
		fail(w, http.StatusForbidden, who)
		return
	}
	if !s.upPK.Peek(tok.PubKey) {
		fail(w, http.StatusTooManyRequests, "too often: wait before uploading")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, hash, ext string) {
	status := http.StatusOK
	defer func() { s.metrics.blobRequests.WithLabelValues("get", strconv.Itoa(status)).Inc() }()
	if s.cfg.BlossomGetAuth || r.Header.Get("Authorization") != "" {
		tok, aerr := s.verifyBlossomToken(r, "get", hash)
		if aerr != nil {
			status = aerr.status
			fail(w, status, aerr.reason)
			return
		}
		if who := s.blossomWho(tok.PubKey); s.cfg.BlossomGetAuth && who != "" {
			status = http.StatusForbidden
			fail(w, status, who)
			return
		}
	}
	f, m, err := s.blobs.Open(hash)
	if err != nil {
		status = http.StatusNotFound
		fail(w, status, "blob not found")
		return
	}
	defer f.Close()
	ct := m.Type
	if ct == "" || ct == "application/octet-stream" {
		if t := mime.TypeByExtension("." + ext); ext != "" && t != "" {
			ct = t
		}
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	if s.cfg.BlossomGetAuth {
		h.Set("Cache-Control", "private, max-age=3600")
	} else {
		h.Set("Cache-Control", "public, max-age=3600, immutable")
	}
	h.Set("ETag", `"`+hash+`"`)
	rw := &reasonWriter{ResponseWriter: w}
	http.ServeContent(rw, r, "", time.Unix(m.Uploaded, 0), f)
	status = rw.code()
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, hash string) {
	status := http.StatusOK
	defer func() { s.metrics.blobRequests.WithLabelValues("delete", strconv.Itoa(status)).Inc() }()
	tok, aerr := s.verifyBlossomToken(r, "delete", hash)
	if aerr != nil {
		status = aerr.status
		fail(w, status, aerr.reason)
		return
	}
	pk := tok.PubKey
	if who := s.blossomWho(pk); who != "" {
		status = http.StatusForbidden
		fail(w, status, who)
		return
	}
	m, ok := s.blobs.Stat(hash)
	if !ok {
		status = http.StatusNotFound
		fail(w, status, "blob not found")
		return
	}
	switch {
	case s.access.IsAdmin(pk):
		if err := s.blobs.Delete(hash); err != nil {
			status = http.StatusInternalServerError
			s.log.Error("delete blob", "sha256", hash, "err", err)
			fail(w, status, "delete failed")
			return
		}
	case slices.Contains(m.Owners, pk):
		if _, err := s.blobs.RemoveOwner(hash, pk); err != nil {
			status = http.StatusInternalServerError
			s.log.Error("delete blob", "sha256", hash, "err", err)
			fail(w, status, "delete failed")
			return
		}
	default:
		status = http.StatusForbidden
		fail(w, status, "only an uploader of this blob or an admin may delete it")
		return
	}
	s.log.Info("blob deleted on request", "sha256", hash, "by", pk)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": hash})
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	defer func() { s.metrics.blobRequests.WithLabelValues("list", strconv.Itoa(status)).Inc() }()
	if s.cfg.BlossomList == "off" {
		status = http.StatusForbidden
		fail(w, status, "listing is turned off on this server")
		return
	}
	who, err := ParsePubkey(strings.TrimPrefix(r.URL.Path, "/list/"))
	if err != nil {
		status = http.StatusBadRequest
		fail(w, status, "want /list/<hex pubkey>")
		return
	}
	tok, aerr := s.verifyBlossomToken(r, "list", "")
	if aerr != nil {
		status = aerr.status
		fail(w, status, aerr.reason)
		return
	}
	if tok.PubKey != who {
		status = http.StatusForbidden
		fail(w, status, "you may list only your own blobs")
		return
	}
	if msg := s.blossomWho(who); msg != "" {
		status = http.StatusForbidden
		fail(w, status, msg)
		return
	}
	var since, until int64
	for name, dst := range map[string]*int64{"since": &since, "until": &until} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				status = http.StatusBadRequest
				fail(w, status, name+" must be a unix time")
				return
			}
			*dst = n
		}
	}
	out := []descriptor{}
	for _, m := range s.blobs.List(who, since, until) {
		out = append(out, s.descriptor(r, m))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMirror is BUD-04, limited to configured hosts: it never fetches a URL before the
// host is known to be allowed and the token is valid.
func (s *Server) handleMirror(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.MirrorHosts) == 0 {
		s.refuseUpload(w, http.StatusForbidden, "mirroring is turned off on this server")
		return
	}
	if r.ContentLength > 4096 {
		s.refuseUpload(w, http.StatusRequestEntityTooLarge, "too big: a mirror request is a small JSON object")
		return
	}
	var req struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		s.refuseUpload(w, http.StatusBadRequest, "want a JSON body {\"url\": ...}")
		return
	}
	src, err := url.Parse(req.URL)
	if err != nil || (src.Scheme != "https" && src.Scheme != "http") || src.Host == "" {
		s.refuseUpload(w, http.StatusBadRequest, "url must be an http(s) URL")
		return
	}
	if !s.mirrorHostAllowed(src) {
		s.refuseUpload(w, http.StatusForbidden, fmt.Sprintf("mirroring from %s is not allowed on this server", src.Host))
		return
	}
	hash, _, ok := blobPath(path.Base(src.Path))
	if !ok {
		s.refuseUpload(w, http.StatusBadRequest, "url must end in /<sha256>[.ext]")
		return
	}
	pk, _ := s.uploader(w, r, hash)
	if pk == "" {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.UploadTimeout)
	defer cancel()
	greq, err := http.NewRequestWithContext(ctx, http.MethodGet, src.String(), nil)
	if err != nil {
		s.refuseUpload(w, http.StatusBadRequest, "bad url")
		return
	}
	resp, err := s.mirrorClient.Do(greq)
	if err != nil {
		s.log.Info("mirror fetch failed", "url", src.Redacted(), "err", err)
		s.refuseUpload(w, http.StatusBadGateway, "could not fetch the blob from its source")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.refuseUpload(w, http.StatusBadGateway, fmt.Sprintf("the source answered %d", resp.StatusCode))
		return
	}
	if resp.ContentLength > s.cfg.MaxBlobBytes {
		s.refuseUpload(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("too big: %d bytes, the limit is %d", resp.ContentLength, s.cfg.MaxBlobBytes))
		return
	}
	m, created, err := s.blobs.Put(resp.Body, blobstore.PutOptions{
		Size:     resp.ContentLength,
		MaxSize:  s.cfg.MaxBlobBytes,
		Expect:   hash,
		Owner:    pk,
		Type:     contentType(resp.Header.Get("Content-Type")),
		Uploaded: s.now(),
	})
	s.finishUpload(w, r, m, created, err, pk)
}

func (s *Server) mirrorHostAllowed(u *url.URL) bool {
	return slices.Contains(s.cfg.MirrorHosts, strings.ToLower(u.Host))
}

func (s *Server) newMirrorClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if !s.mirrorHostAllowed(req.URL) {
				return fmt.Errorf("redirect to %s is not an allowed mirror host", req.URL.Host)
			}
			return nil
		},
	}
}
