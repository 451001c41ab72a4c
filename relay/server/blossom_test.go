package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pow.do/shared/blossom"
)

// raw sends a hand-written HTTP request (head lines without the final blank line, then
// body) and returns the first response, for what net/http's client refuses to send.
func raw(t *testing.T, s *Server, head []string, body []byte) answer {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	req := strings.Join(head, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.Write(body) // the server may answer and close before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("X-Reason"), b, resp.Header}
}

func tmpEmpty(t *testing.T, s *Server) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.cfg.DataDir, "blobs", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%d partial files left in blobs/tmp", len(ents))
	}
}

// stillServing proves the server survived: health, an upload, a download, a websocket AUTH.
func stillServing(t *testing.T, s *Server, k key) {
	t.Helper()
	if a := do(t, http.MethodGet, s.URL()+"/healthz", "", nil, nil); a.status != 200 {
		t.Fatalf("healthz: %v", a)
	}
	data := randomBytes(t, 3000)
	if a := upload(t, s, &k, data); a.status != http.StatusCreated {
		t.Fatalf("upload after the attack: %v", a)
	}
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(data), "", nil, nil); a.status != 200 || string(a.body) != string(data) {
		t.Fatalf("download after the attack: %v", a)
	}
	dial(t, s, &k)
}

func TestDoSCases(t *testing.T) {
	s := start(t, "", func(c *Config) { c.MaxBlobBytes = 1 << 20 })
	k := newKey(t)
	allow(t, s, k)
	addr := s.Addr()

	t.Run("huge Content-Length", func(t *testing.T) {
		data := randomBytes(t, 1000)
		for _, auth := range []string{"", token(t, k, "upload", sha(data))} {
			head := []string{"PUT /upload HTTP/1.1", "Host: " + addr, "Content-Length: 1000000000000", "X-SHA-256: " + sha(data)}
			if auth != "" {
				head = append(head, "Authorization: "+auth)
			}
			a := raw(t, s, head, data)
			if a.status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(a.reason, "too big") {
				t.Fatalf("Content-Length 10^12 (auth=%v): %v", auth != "", a)
			}
		}
		tmpEmpty(t, s)
	})

	t.Run("body longer than Content-Length", func(t *testing.T) {
		body := randomBytes(t, 5000)
		// Declared hash of all 5000 bytes; only the declared 1000 are read: mismatch.
		a := raw(t, s, []string{"PUT /upload HTTP/1.1", "Host: " + addr, "Content-Length: 1000",
			"X-SHA-256: " + sha(body), "Authorization: " + token(t, k, "upload", sha(body))}, body)
		if a.status != http.StatusConflict || a.reason == "" {
			t.Fatalf("longer body, hash of all of it: %v", a)
		}
		if _, ok := s.Blobs().Stat(sha(body)); ok {
			t.Fatal("stored although the hash did not match")
		}
		// Token for the declared 1000 bytes: exactly those are stored, the rest is not a blob.
		a = raw(t, s, []string{"PUT /upload HTTP/1.1", "Host: " + addr, "Content-Length: 1000",
			"X-SHA-256: " + sha(body[:1000]), "Authorization: " + token(t, k, "upload", sha(body[:1000]))}, body)
		if a.status != http.StatusCreated {
			t.Fatalf("longer body, hash of the declared part: %v", a)
		}
		if m, ok := s.Blobs().Stat(sha(body[:1000])); !ok || m.Size != 1000 {
			t.Fatalf("stored %+v, want exactly the 1000 declared bytes", m)
		}
		tmpEmpty(t, s)
	})

	t.Run("mirror of an arbitrary URL", func(t *testing.T) {
		var hits atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		defer target.Close()
		data := randomBytes(t, 100)
		body, _ := json.Marshal(map[string]string{"url": target.URL + "/" + sha(data)})
		a := do(t, http.MethodPut, s.URL()+"/mirror", token(t, k, "upload", sha(data)), body, nil)
		if a.status != http.StatusForbidden || !strings.Contains(a.reason, "mirroring is turned off") {
			t.Fatalf("mirror with mirroring off: %v", a)
		}
		if hits.Load() != 0 {
			t.Fatal("the server fetched the URL")
		}
	})

	t.Run("delete without a token", func(t *testing.T) {
		data := randomBytes(t, 100)
		upload(t, s, &k, data)
		for _, auth := range []string{"", "Nostr !!!notbase64", "Nostr " + base64.StdEncoding.EncodeToString([]byte(`{"kind":24242}`)), "Bearer abc"} {
			a := do(t, http.MethodDelete, s.URL()+"/"+sha(data), auth, nil, nil)
			if a.status != http.StatusUnauthorized || a.reason == "" {
				t.Fatalf("delete with auth %q: %v", auth, a)
			}
		}
		if _, ok := s.Blobs().Stat(sha(data)); !ok {
			t.Fatal("blob deleted without a valid token")
		}
	})

	t.Run("token x differs from the body", func(t *testing.T) {
		claimed, actual := randomBytes(t, 800), randomBytes(t, 800)
		a := do(t, http.MethodPut, s.URL()+"/upload", token(t, k, "upload", sha(claimed)), actual, map[string]string{"X-SHA-256": sha(claimed)})
		if a.status != http.StatusConflict || a.reason == "" {
			t.Fatalf("body differs from X-SHA-256 and token: %v", a)
		}
		a = do(t, http.MethodPut, s.URL()+"/upload", token(t, k, "upload", sha(claimed)), actual, nil)
		if a.status != http.StatusForbidden || !strings.Contains(a.reason, "does not cover") {
			t.Fatalf("body not covered by the token (no X-SHA-256): %v", a)
		}
		a = do(t, http.MethodPut, s.URL()+"/upload", token(t, k, "upload", sha(claimed)), actual, map[string]string{"X-SHA-256": sha(actual)})
		if a.status != http.StatusForbidden || !strings.Contains(a.reason, "does not cover") {
			t.Fatalf("X-SHA-256 not covered by the token: %v", a)
		}
		for _, h := range []string{sha(claimed), sha(actual)} {
			if _, ok := s.Blobs().Stat(h); ok {
				t.Fatal("a mismatched upload was stored")
			}
		}
		tmpEmpty(t, s)
	})

	t.Run("client gone mid-upload", func(t *testing.T) {
		data := randomBytes(t, 100_000)
		before := testutil.ToFloat64(s.metrics.uploads.WithLabelValues("400"))
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nX-SHA-256: %s\r\nAuthorization: %s\r\n\r\n",
			addr, len(data), sha(data), token(t, k, "upload", sha(data)))
		conn.Write(data[:50_000])
		conn.Close()
		deadline := time.Now().Add(wait)
		for testutil.ToFloat64(s.metrics.uploads.WithLabelValues("400")) == before {
			if time.Now().After(deadline) {
				t.Fatal("the interrupted upload was never answered")
			}
			time.Sleep(5 * time.Millisecond) // polling a real condition with a deadline
		}
		tmpEmpty(t, s)
		if _, ok := s.Blobs().Stat(sha(data)); ok {
			t.Fatal("a half upload was stored")
		}
	})

	t.Run("no Content-Length", func(t *testing.T) {
		data := randomBytes(t, 100)
		pr, pw := io.Pipe()
		go func() { pw.Write(data); pw.Close() }()
		req, _ := http.NewRequest(http.MethodPut, s.URL()+"/upload", pr)
		req.Header.Set("Authorization", token(t, k, "upload", sha(data)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusLengthRequired || resp.Header.Get("X-Reason") == "" {
			t.Fatalf("chunked upload: %d %q", resp.StatusCode, resp.Header.Get("X-Reason"))
		}
	})

	stillServing(t, s, k)
}

func TestBlossomDetails(t *testing.T) {
	s := start(t, "", func(c *Config) { c.MaxBlobBytes = 10_000; c.UploadsPerMinutePubkey = 4 })
	k, other := newKey(t), newKey(t)
	allow(t, s, k)
	data := randomBytes(t, 5000)

	// BUD-06 preflight.
	pre := func(auth string, hdr map[string]string) answer {
		return do(t, http.MethodHead, s.URL()+"/upload", auth, nil, hdr)
	}
	good := map[string]string{"X-SHA-256": sha(data), "X-Content-Length": "5000", "X-Content-Type": "application/octet-stream"}
	for name, c := range map[string]struct {
		auth string
		hdr  map[string]string
		want int
	}{
		"ok":          {token(t, k, "upload", sha(data)), good, 200},
		"no token":    {"", good, 401},
		"unknown key": {token(t, other, "upload", sha(data)), good, 403},
		"too big":     {token(t, k, "upload", sha(data)), map[string]string{"X-SHA-256": sha(data), "X-Content-Length": "20000"}, 413},
		"no length":   {token(t, k, "upload", sha(data)), map[string]string{"X-SHA-256": sha(data)}, 411},
		"bad hash":    {token(t, k, "upload", sha(data)), map[string]string{"X-SHA-256": "abc", "X-Content-Length": "1"}, 400},
	} {
		if a := pre(c.auth, c.hdr); a.status != c.want || (c.want != 200) != (a.reason != "") {
			t.Errorf("HEAD /upload %s: %v, want %d", name, a, c.want)
		}
	}

	// Both token encodings: unpadded base64url (BUD-11) and padded standard base64.
	ev, _ := blossom.NewToken(k.sk, "upload", []string{sha(data)}, time.Minute, "")
	js, _ := json.Marshal(ev)
	a := do(t, http.MethodPut, s.URL()+"/upload", "Nostr "+base64.StdEncoding.EncodeToString(js), data, map[string]string{"X-SHA-256": sha(data), "Content-Type": "application/zip"})
	if a.status != http.StatusCreated {
		t.Fatalf("padded standard base64 token: %v", a)
	}
	a = do(t, http.MethodPut, s.URL()+"/upload", blossom.AuthHeader(ev), data, map[string]string{"X-SHA-256": sha(data)})
	if a.status != http.StatusOK {
		t.Fatalf("re-upload with a base64url token: %v, want 200 (exists)", a)
	}
	var d descriptor
	json.Unmarshal(a.body, &d)
	if d.SHA256 != sha(data) || d.Size != 5000 || d.Type != "application/zip" || a.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("descriptor %+v", d)
	}

	// Token checks: expired, wrong verb, other server, right server.
	expired := nostr.Event{Kind: 24242, CreatedAt: nostr.Now() - 100, Content: "Upload", Tags: nostr.Tags{{"t", "upload"}, {"x", sha(data)}, {"expiration", strconv.FormatInt(time.Now().Unix()-10, 10)}}}
	expired.Sign(k.sk)
	if a := do(t, http.MethodPut, s.URL()+"/upload", blossom.AuthHeader(expired), data, nil); a.status != 401 || !strings.Contains(a.reason, "expired") {
		t.Errorf("expired token: %v", a)
	}
	if a := do(t, http.MethodPut, s.URL()+"/upload", token(t, k, "delete", sha(data)), data, nil); a.status != 403 || !strings.Contains(a.reason, "not for upload") {
		t.Errorf("delete token used to upload: %v", a)
	}
	small := randomBytes(t, 10)
	otherSrv, _ := blossom.NewToken(k.sk, "upload", []string{sha(small)}, time.Minute, "cdn.example.com")
	if a := do(t, http.MethodPut, s.URL()+"/upload", blossom.AuthHeader(otherSrv), small, nil); a.status != 403 || !strings.Contains(a.reason, "another server") {
		t.Errorf("token bound to another server: %v", a)
	}
	thisSrv, _ := blossom.NewToken(k.sk, "upload", []string{sha(small)}, time.Minute, "127.0.0.1")
	if a := do(t, http.MethodPut, s.URL()+"/upload", blossom.AuthHeader(thisSrv), small, nil); a.status != 201 {
		t.Errorf("token bound to this server: %v", a)
	}

	// Upload rate per key: 4 per minute, 3 used above (refusals before the token was
	// accepted do not count against the key).
	if a := upload(t, s, &k, randomBytes(t, 10)); a.status != 201 {
		t.Errorf("4th upload in the minute: %v", a)
	}
	if a := upload(t, s, &k, randomBytes(t, 10)); a.status != 429 || !strings.HasPrefix(a.reason, "too often") {
		t.Errorf("upload over the per-key rate: %v", a)
	}

	// Range requests and extensions.
	a = do(t, http.MethodGet, s.URL()+"/"+sha(data)+".zip", "", nil, map[string]string{"Range": "bytes=100-199"})
	if a.status != http.StatusPartialContent || string(a.body) != string(data[100:200]) || a.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("range: %v, %d bytes", a, len(a.body))
	}
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(data), "", nil, map[string]string{"Range": "bytes=9000-9100"}); a.status != http.StatusRequestedRangeNotSatisfiable || a.reason == "" {
		t.Errorf("unsatisfiable range: %v", a)
	}
	if a := do(t, http.MethodHead, s.URL()+"/"+sha(data), "", nil, nil); a.status != 200 || a.header.Get("Content-Length") != "5000" || a.header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD blob: %v %v", a, a.header)
	}
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(randomBytes(t, 5)), "", nil, nil); a.status != 404 || a.reason == "" {
		t.Errorf("missing blob: %v", a)
	}
	// A present but bad token on an open GET is still checked.
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(data), token(t, k, "get", sha(small)), nil, nil); a.status != 403 {
		t.Errorf("GET with a token for another blob: %v", a)
	}
	// Listing someone else's blobs.
	if a := do(t, http.MethodGet, s.URL()+"/list/"+other.pk, token(t, k, "list"), nil, nil); a.status != 403 {
		t.Errorf("listing another key's blobs: %v", a)
	}
}

func TestMirrorFromAllowedHost(t *testing.T) {
	src := start(t, "", nil)
	k := newKey(t)
	allow(t, src, k)
	data := randomBytes(t, 4000)
	if a := upload(t, src, &k, data); a.status != 201 {
		t.Fatal(a)
	}
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.Write(data) }))
	defer elsewhere.Close()
	dst := start(t, "", func(c *Config) { c.MirrorHosts = []string{src.Addr()} })
	allow(t, dst, k)

	body, _ := json.Marshal(map[string]string{"url": elsewhere.URL + "/" + sha(data)})
	if a := do(t, http.MethodPut, dst.URL()+"/mirror", token(t, k, "upload", sha(data)), body, nil); a.status != 403 || !strings.Contains(a.reason, "not allowed") {
		t.Fatalf("mirror from a host not on the list: %v", a)
	}
	if hits.Load() != 0 {
		t.Fatal("fetched from a host not on the list")
	}
	body, _ = json.Marshal(map[string]string{"url": src.URL() + "/" + sha(data)})
	if a := do(t, http.MethodPut, dst.URL()+"/mirror", "", body, nil); a.status != 401 {
		t.Fatalf("mirror without a token: %v", a)
	}
	a := do(t, http.MethodPut, dst.URL()+"/mirror", token(t, k, "upload", sha(data)), body, nil)
	if a.status != 201 {
		t.Fatalf("mirror from the allowed host: %v", a)
	}
	if got := do(t, http.MethodGet, dst.URL()+"/"+sha(data), "", nil, nil); string(got.body) != string(data) {
		t.Fatal("mirrored blob differs")
	}
}

func TestShutdownLetsUploadsFinish(t *testing.T) {
	s := start(t, "", nil)
	k := newKey(t)
	allow(t, s, k)
	data := randomBytes(t, 200_000)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/upload", pr)
	req.ContentLength = int64(len(data))
	req.Header.Set("Authorization", token(t, k, "upload", sha(data)))
	req.Header.Set("X-SHA-256", sha(data))
	status := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	pw.Write(data[:100_000])
	// The handler is streaming once its temp file exists.
	deadline := time.Now().Add(wait)
	for {
		ents, _ := os.ReadDir(filepath.Join(s.cfg.DataDir, "blobs", "tmp"))
		if len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("upload never started")
		}
		time.Sleep(5 * time.Millisecond) // polling a real condition with a deadline
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	// Shutdown has begun once the listener refuses new connections.
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open")
		}
		time.Sleep(5 * time.Millisecond) // polling a real condition with a deadline
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) with an upload in flight", err)
	default:
	}
	pw.Write(data[100_000:])
	pw.Close()
	if st := <-status; st != http.StatusCreated {
		t.Fatalf("in-flight upload answered %d", st)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Blobs().Stat(sha(data)); !ok {
		t.Fatal("upload finished during shutdown but not stored")
	}
}

// TestSharedBlossomClient runs pow.do's own Blossom client (pow.do/shared/blossom) against
// the server: preflight, upload, re-upload, download, list, delete.
func TestSharedBlossomClient(t *testing.T) {
	s := start(t, "", nil)
	k := newKey(t)
	allow(t, s, k)
	c := blossom.New(s.URL(), k.sk)
	ctx := context.Background()
	data := randomBytes(t, 50_000)
	d, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), sha(data))
	if err != nil || !d.Created || d.SHA256 != sha(data) {
		t.Fatalf("upload: %+v %v", d, err)
	}
	if d, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), sha(data)); err != nil || d.Created {
		t.Fatalf("re-upload: %+v %v", d, err)
	}
	var got bytes.Buffer
	if err := c.Get(ctx, sha(data), 1<<20, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("get: %v", err)
	}
	if list, err := c.List(ctx, k.pk); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := c.Delete(ctx, sha(data)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, ok := s.Blobs().Stat(sha(data)); ok {
		t.Fatal("deleted through the client but still stored")
	}
	// A key the server does not know is refused with the server's reason.
	if _, err := blossom.New(s.URL(), newKey(t).sk).Upload(ctx, bytes.NewReader(data), int64(len(data)), sha(data)); err == nil || !strings.Contains(err.Error(), "whitelist") {
		t.Fatalf("unknown key upload: %v", err)
	}
}
