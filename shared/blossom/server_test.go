package blossom_test

// A small Blossom server that follows the BUDs closely enough to exercise the client for
// real: blobs streamed to a temp dir while hashing, BUD-11 tokens checked with VerifyToken,
// X-Reason on every error, 201 for a new blob and 200 for an existing one.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pow.do/shared/blossom"
)

type blobMeta struct {
	size     int64
	typ      string
	uploaded int64
	owners   map[string]bool
}

type testServer struct {
	srv  *httptest.Server
	dir  string
	name string // server tag the tokens must carry

	mu          sync.Mutex
	blobs       map[string]*blobMeta
	allowed     map[string]bool // nil: any valid token
	maxSize     int64
	rateLimit   int // uploads per pubkey before 429; 0: none
	uploads     map[string]int
	corrupt     bool // serve wrong bytes on GET
	chunked     bool // serve GET without Content-Length
	fail503     bool // answer every request with 503
	noPreflight bool // no BUD-06: HEAD /upload is 404

	puts       atomic.Int64 // PUT /upload requests that reached the body stage
	progress   func(n int64)
	lastLength atomic.Int64 // Content-Length of the last PUT /upload
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ts := &testServer{
		dir:     t.TempDir(),
		name:    "127.0.0.1",
		blobs:   map[string]*blobMeta{},
		uploads: map[string]int{},
		maxSize: 64 << 20,
	}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *testServer) URL() string { return ts.srv.URL }

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("X-Reason", fmt.Sprintf(format, args...))
	w.WriteHeader(status)
}

// auth returns the token's pubkey, or writes 401/403 and returns "".
func (ts *testServer) auth(w http.ResponseWriter, r *http.Request, verb, x string) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		fail(w, http.StatusUnauthorized, "missing Authorization")
		return ""
	}
	ev, err := blossom.ParseAuthHeader(h)
	if err == nil {
		err = blossom.VerifyToken(ev, verb, x, ts.name, time.Now())
	}
	if err != nil {
		fail(w, http.StatusUnauthorized, "%v", err)
		return ""
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.allowed != nil && !ts.allowed[ev.PubKey] {
		fail(w, http.StatusForbidden, "pubkey %s is not allowed here", ev.PubKey[:8])
		return ""
	}
	return ev.PubKey
}

func isHex64(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && strings.ToLower(s) == s
}

func (ts *testServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	down := ts.fail503
	ts.mu.Unlock()
	if down {
		w.Header().Set("Retry-After", "3")
		fail(w, http.StatusServiceUnavailable, "maintenance")
		return
	}
	switch {
	case r.URL.Path == "/upload" && r.Method == http.MethodHead && !ts.noPreflight:
		ts.preflight(w, r)
	case r.URL.Path == "/upload" && r.Method == http.MethodPut:
		ts.upload(w, r)
	case r.URL.Path == "/mirror" && r.Method == http.MethodPut:
		ts.mirror(w, r)
	case strings.HasPrefix(r.URL.Path, "/list/") && r.Method == http.MethodGet:
		ts.list(w, r)
	case isHex64(strings.TrimPrefix(r.URL.Path, "/")):
		sha := strings.TrimPrefix(r.URL.Path, "/")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			ts.get(w, r, sha)
		case http.MethodDelete:
			ts.delete(w, r, sha)
		default:
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		}
	default:
		fail(w, http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path)
	}
}

// limitOK applies the rate limit to pubkey, writing 429 when exceeded.
func (ts *testServer) limitOK(w http.ResponseWriter, pub string, count bool) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.rateLimit > 0 && ts.uploads[pub] >= ts.rateLimit {
		w.Header().Set("Retry-After", "7")
		fail(w, http.StatusTooManyRequests, "at most %d uploads per minute", ts.rateLimit)
		return false
	}
	if count {
		ts.uploads[pub]++
	}
	return true
}

func (ts *testServer) preflight(w http.ResponseWriter, r *http.Request) {
	sha := r.Header.Get("X-SHA-256")
	if !isHex64(sha) {
		fail(w, http.StatusBadRequest, "X-SHA-256 is not a sha256")
		return
	}
	cl := r.Header.Get("X-Content-Length")
	if cl == "" {
		fail(w, http.StatusLengthRequired, "X-Content-Length is required")
		return
	}
	n, err := strconv.ParseInt(cl, 10, 64)
	if err != nil || n < 0 {
		fail(w, http.StatusBadRequest, "X-Content-Length %q is not a size", cl)
		return
	}
	ts.mu.Lock()
	maxSize := ts.maxSize
	ts.mu.Unlock()
	if n > maxSize {
		fail(w, http.StatusRequestEntityTooLarge, "blob too large: %d bytes, limit %d", n, maxSize)
		return
	}
	pub := ts.auth(w, r, "upload", sha)
	if pub == "" || !ts.limitOK(w, pub, false) {
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (ts *testServer) upload(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 {
		fail(w, http.StatusLengthRequired, "Content-Length is required")
		return
	}
	ts.mu.Lock()
	maxSize := ts.maxSize
	ts.mu.Unlock()
	if r.ContentLength > maxSize {
		fail(w, http.StatusRequestEntityTooLarge, "blob too large: %d bytes, limit %d", r.ContentLength, maxSize)
		return
	}
	want := r.Header.Get("X-SHA-256")
	if !isHex64(want) {
		fail(w, http.StatusBadRequest, "X-SHA-256 is not a sha256")
		return
	}
	pub := ts.auth(w, r, "upload", want)
	if pub == "" || !ts.limitOK(w, pub, true) {
		return
	}
	ts.puts.Add(1)
	ts.lastLength.Store(r.ContentLength)
	ts.store(w, r.Body, r.ContentLength, want, r.Header.Get("Content-Type"), pub)
}

// store streams body to disk while hashing, then keeps it under its hash.
func (ts *testServer) store(w http.ResponseWriter, body io.Reader, size int64, want, typ, pub string) {
	tmp, err := os.CreateTemp(ts.dir, "up-*")
	if err != nil {
		fail(w, http.StatusInternalServerError, "spool: %v", err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	var dst io.Writer = io.MultiWriter(tmp, h)
	if ts.progress != nil {
		dst = io.MultiWriter(dst, progressWriter(ts.progress))
	}
	n, err := io.Copy(dst, io.LimitReader(body, size+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "reading body: %v", err)
		return
	}
	if n != size {
		fail(w, http.StatusBadRequest, "body is %d bytes, Content-Length said %d", n, size)
		return
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		fail(w, http.StatusConflict, "body sha256 %s does not match %s", got, want)
		return
	}
	if err := tmp.Close(); err != nil {
		fail(w, http.StatusInternalServerError, "spool: %v", err)
		return
	}
	ts.mu.Lock()
	meta, exists := ts.blobs[got]
	if !exists {
		if err := os.Rename(tmp.Name(), filepath.Join(ts.dir, got)); err != nil {
			ts.mu.Unlock()
			fail(w, http.StatusInternalServerError, "store: %v", err)
			return
		}
		meta = &blobMeta{size: n, typ: typ, uploaded: time.Now().Unix(), owners: map[string]bool{}}
		ts.blobs[got] = meta
	}
	meta.owners[pub] = true
	d := ts.descriptor(got, meta)
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if exists {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	_ = json.NewEncoder(w).Encode(d)
}

type progressWriter func(n int64)

func (p progressWriter) Write(b []byte) (int, error) { p(int64(len(b))); return len(b), nil }

func (ts *testServer) descriptor(sha string, m *blobMeta) blossom.Descriptor {
	return blossom.Descriptor{URL: ts.srv.URL + "/" + sha, SHA256: sha, Size: m.size, Type: m.typ, Uploaded: m.uploaded}
}

func (ts *testServer) get(w http.ResponseWriter, r *http.Request, sha string) {
	ts.mu.Lock()
	meta, ok := ts.blobs[sha]
	corrupt, chunked := ts.corrupt, ts.chunked
	ts.mu.Unlock()
	if !ok {
		fail(w, http.StatusNotFound, "blob %s not found", sha[:8])
		return
	}
	data, err := os.ReadFile(filepath.Join(ts.dir, sha))
	if err != nil {
		fail(w, http.StatusInternalServerError, "read: %v", err)
		return
	}
	if corrupt && len(data) > 0 {
		data[0] ^= 0xff
	}
	w.Header().Set("Content-Type", meta.typ)
	if !chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if chunked {
		// Flushing before the end forces chunked encoding: no Content-Length to trust.
		half := len(data) / 2
		_, _ = w.Write(data[:half])
		w.(http.Flusher).Flush()
		data = data[half:]
	}
	_, _ = w.Write(data)
}

func (ts *testServer) delete(w http.ResponseWriter, r *http.Request, sha string) {
	pub := ts.auth(w, r, "delete", sha)
	if pub == "" {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	meta, ok := ts.blobs[sha]
	if !ok {
		fail(w, http.StatusNotFound, "blob %s not found", sha[:8])
		return
	}
	if !meta.owners[pub] {
		fail(w, http.StatusForbidden, "not your blob")
		return
	}
	delete(meta.owners, pub)
	if len(meta.owners) == 0 {
		delete(ts.blobs, sha)
		_ = os.Remove(filepath.Join(ts.dir, sha))
	}
	w.WriteHeader(http.StatusOK)
}

func (ts *testServer) list(w http.ResponseWriter, r *http.Request) {
	pub := ts.auth(w, r, "list", "")
	if pub == "" {
		return
	}
	who := strings.TrimPrefix(r.URL.Path, "/list/")
	if who != pub {
		fail(w, http.StatusForbidden, "may only list your own blobs")
		return
	}
	ts.mu.Lock()
	out := []blossom.Descriptor{}
	for sha, m := range ts.blobs {
		if m.owners[who] {
			out = append(out, ts.descriptor(sha, m))
		}
	}
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (ts *testServer) mirror(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "body is not {\"url\":...}: %v", err)
		return
	}
	// The token's x names the blob; the test server only fetches from loopback.
	ev, err := blossom.ParseAuthHeader(r.Header.Get("Authorization"))
	if err != nil {
		fail(w, http.StatusUnauthorized, "%v", err)
		return
	}
	var want string
	for _, tag := range ev.Tags {
		if len(tag) >= 2 && tag[0] == "x" {
			want = tag[1]
		}
	}
	pub := ts.auth(w, r, "upload", want)
	if pub == "" {
		return
	}
	if !strings.HasPrefix(req.URL, "http://127.0.0.1:") {
		fail(w, http.StatusBadRequest, "only loopback mirrors in this test server")
		return
	}
	resp, err := http.Get(req.URL)
	if err != nil {
		fail(w, http.StatusBadGateway, "fetch: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		fail(w, http.StatusBadGateway, "origin answered %d", resp.StatusCode)
		return
	}
	ts.store(w, resp.Body, resp.ContentLength, want, resp.Header.Get("Content-Type"), pub)
}
