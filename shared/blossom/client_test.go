package blossom_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/blossom"
)

func randomBlob(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func asError(t *testing.T, err error) *blossom.Error {
	t.Helper()
	var e *blossom.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) does not carry *blossom.Error", err, err)
	}
	return e
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("temp dir %s not cleaned: %d entries, first %s", dir, len(ents), ents[0].Name())
	}
}

func TestUploadRoundTrip(t *testing.T) {
	ts := newTestServer(t)
	sk := nostr.GeneratePrivateKey()
	c := blossom.New(ts.URL()+"/", sk, blossom.WithTempDir(t.TempDir()))
	ctx := ctxT(t)
	data, sha := randomBlob(t, 300_000)

	d, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), sha)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if d.SHA256 != sha || d.Size != int64(len(data)) || !d.Created || d.URL != ts.URL()+"/"+sha {
		t.Fatalf("descriptor %+v", d)
	}
	if d.Type != blossom.ContentType || d.Uploaded == 0 {
		t.Fatalf("descriptor type/uploaded %+v", d)
	}
	if got := ts.lastLength.Load(); got != int64(len(data)) {
		t.Fatalf("server saw Content-Length %d, want %d", got, len(data))
	}
	stored, err := os.ReadFile(filepath.Join(ts.dir, sha))
	if err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("server stored different bytes (err %v)", err)
	}

	again, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), sha)
	if err != nil || again.Created {
		t.Fatalf("second upload: created=%v err=%v, want existing blob (200)", again.Created, err)
	}

	h, err := c.Head(ctx, sha)
	if err != nil || h.Size != int64(len(data)) || h.Type != blossom.ContentType {
		t.Fatalf("head: %+v %v", h, err)
	}
	var out bytes.Buffer
	if err := c.Get(ctx, sha, 1<<20, &out); err != nil {
		t.Fatalf("get: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("downloaded bytes differ")
	}
	list, err := c.List(ctx, c.PublicKey())
	if err != nil || len(list) != 1 || list[0].SHA256 != sha || list[0].Size != int64(len(data)) {
		t.Fatalf("list: %+v %v", list, err)
	}

	if err := c.Delete(ctx, sha); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Head(ctx, sha); !errors.Is(err, blossom.ErrNotFound) {
		t.Fatalf("head after delete: %v, want ErrNotFound", err)
	}
	list, err = c.List(ctx, c.PublicKey())
	if err != nil || len(list) != 0 {
		t.Fatalf("list after delete: %+v %v", list, err)
	}
}

func TestUploadFile(t *testing.T) {
	ts := newTestServer(t)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	data, sha := randomBlob(t, 70_000)
	p := filepath.Join(t.TempDir(), "bundle.enc")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := c.UploadFile(ctxT(t), p)
	if err != nil || d.SHA256 != sha || d.Size != int64(len(data)) {
		t.Fatalf("upload file: %+v %v", d, err)
	}
	if _, err := c.UploadFile(ctxT(t), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("upload of a directory: %v", err)
	}
}

// gateReader hands out first, then blocks until the server has received most of it. A
// client that buffers the whole body before sending never gets past the gate.
type gateReader struct {
	ctx   context.Context
	first *bytes.Reader
	rest  *bytes.Reader
	gate  chan struct{}
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.first.Len() > 0 {
		return g.first.Read(p)
	}
	select {
	case <-g.gate:
	case <-g.ctx.Done():
		return 0, errors.New("server never saw the first half: the client buffered the body instead of streaming it")
	}
	return g.rest.Read(p)
}

func TestUploadStreams(t *testing.T) {
	ts := newTestServer(t)
	data, sha := randomBlob(t, 4<<20)
	half := len(data) / 2
	gate := make(chan struct{})
	var once sync.Once
	var seen int64
	ts.progress = func(n int64) {
		seen += n // one upload at a time: only the handler goroutine writes
		if seen >= int64(half/2) {
			once.Do(func() { close(gate) })
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	body := &gateReader{ctx: ctx, first: bytes.NewReader(data[:half]), rest: bytes.NewReader(data[half:]), gate: gate}

	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	d, err := c.Upload(ctx, body, int64(len(data)), sha)
	if err != nil {
		t.Fatalf("streaming upload: %v", err)
	}
	if d.Size != int64(len(data)) || ts.lastLength.Load() != int64(len(data)) {
		t.Fatalf("size %d, server Content-Length %d, want %d", d.Size, ts.lastLength.Load(), len(data))
	}
}

func TestUploadReaderShorterThanSize(t *testing.T) {
	ts := newTestServer(t)
	data, sha := randomBlob(t, 1000)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, err := c.Upload(ctxT(t), bytes.NewReader(data[:500]), int64(len(data)), sha)
	if err == nil {
		t.Fatal("upload of a short reader succeeded")
	}
	if _, statErr := os.Stat(filepath.Join(ts.dir, sha)); statErr == nil {
		t.Fatal("server kept a truncated blob")
	}
}

func TestPreflightRefusal413(t *testing.T) {
	ts := newTestServer(t)
	ts.maxSize = 1000
	data, sha := randomBlob(t, 5000)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, err := c.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha)
	if !errors.Is(err, blossom.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	e := asError(t, err)
	if e.Op != "HEAD /upload" || e.Status != 413 || !strings.Contains(e.Reason, "limit 1000") {
		t.Fatalf("error %+v, want the preflight's 413 with its reason", e)
	}
	if e.Temporary() {
		t.Fatal("413 reported as temporary")
	}
	if n := ts.puts.Load(); n != 0 {
		t.Fatalf("client sent %d PUTs after the preflight refused", n)
	}
}

// A server without BUD-06 answers the PUT itself, before reading a large body.
func TestNoPreflight(t *testing.T) {
	ts := newTestServer(t)
	ts.noPreflight = true
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	small, shaSmall := randomBlob(t, 1000)
	if d, err := c.Upload(ctxT(t), bytes.NewReader(small), 1000, shaSmall); err != nil || !d.Created {
		t.Fatalf("upload without preflight: %+v %v", d, err)
	}
	ts.maxSize = 1 << 20
	big, shaBig := randomBlob(t, 8<<20)
	_, err := c.Upload(ctxT(t), bytes.NewReader(big), int64(len(big)), shaBig)
	if !errors.Is(err, blossom.ErrTooLarge) || blossom.IsTemporary(err) {
		t.Fatalf("oversized PUT: %v, want permanent ErrTooLarge", err)
	}
	if e := asError(t, err); e.Op != "PUT /upload" || !strings.Contains(e.Reason, "limit") {
		t.Fatalf("error %+v", e)
	}
}

func TestMissingToken401(t *testing.T) {
	ts := newTestServer(t)
	data, sha := randomBlob(t, 100)
	c := blossom.New(ts.URL(), "") // anonymous
	_, err := c.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha)
	if !errors.Is(err, blossom.ErrUnauthorized) {
		t.Fatalf("err %v, want ErrUnauthorized", err)
	}
	if e := asError(t, err); e.Reason != "missing Authorization" {
		t.Fatalf("reason %q", e.Reason)
	}
}

func TestWrongKey403(t *testing.T) {
	ts := newTestServer(t)
	good := nostr.GeneratePrivateKey()
	goodPub, _ := nostr.GetPublicKey(good)
	ts.allowed = map[string]bool{goodPub: true}
	data, sha := randomBlob(t, 100)

	bad := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, err := bad.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha)
	if !errors.Is(err, blossom.ErrForbidden) || errors.Is(err, blossom.ErrUnauthorized) {
		t.Fatalf("err %v, want ErrForbidden only", err)
	}
	if e := asError(t, err); !strings.Contains(e.Reason, "not allowed") {
		t.Fatalf("reason %q", e.Reason)
	}
	if _, err := blossom.New(ts.URL(), good).Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha); err != nil {
		t.Fatalf("allowed key refused: %v", err)
	}
}

func TestNotFound404(t *testing.T) {
	ts := newTestServer(t)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey(), blossom.WithTempDir(t.TempDir()))
	_, sha := randomBlob(t, 10)
	var out bytes.Buffer
	if err := c.Get(ctxT(t), sha, 100, &out); !errors.Is(err, blossom.ErrNotFound) {
		t.Fatalf("get: %v", err)
	} else if e := asError(t, err); !strings.Contains(e.Reason, "not found") {
		t.Fatalf("reason %q", e.Reason)
	}
	if _, err := c.Head(ctxT(t), sha); !errors.Is(err, blossom.ErrNotFound) {
		t.Fatalf("head: %v", err)
	}
	if err := c.Delete(ctxT(t), sha); !errors.Is(err, blossom.ErrNotFound) {
		t.Fatalf("delete: %v", err)
	}
	if out.Len() != 0 {
		t.Fatal("bytes written for a missing blob")
	}
}

func TestConflict409(t *testing.T) {
	ts := newTestServer(t)
	data, _ := randomBlob(t, 1000)
	_, otherSHA := randomBlob(t, 1000)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, err := c.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), otherSHA)
	if !errors.Is(err, blossom.ErrConflict) {
		t.Fatalf("err %v, want ErrConflict", err)
	}
	if e := asError(t, err); !strings.Contains(e.Reason, "does not match") {
		t.Fatalf("reason %q", e.Reason)
	}
}

func TestLengthRequired411(t *testing.T) {
	ts := newTestServer(t)
	data, sha := randomBlob(t, 1000)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, err := c.Upload(ctxT(t), bytes.NewReader(data), -1, sha)
	if !errors.Is(err, blossom.ErrLengthRequired) {
		t.Fatalf("err %v, want ErrLengthRequired", err)
	}
	if e := asError(t, err); !strings.Contains(e.Reason, "X-Content-Length") {
		t.Fatalf("reason %q", e.Reason)
	}
}

func TestRateLimited429(t *testing.T) {
	ts := newTestServer(t)
	ts.rateLimit = 1
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	a, shaA := randomBlob(t, 100)
	b, shaB := randomBlob(t, 100)
	if _, err := c.Upload(ctxT(t), bytes.NewReader(a), 100, shaA); err != nil {
		t.Fatal(err)
	}
	_, err := c.Upload(ctxT(t), bytes.NewReader(b), 100, shaB)
	if !errors.Is(err, blossom.ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	e := asError(t, err)
	if e.RetryAfter != 7*time.Second || !e.Temporary() || !blossom.IsTemporary(err) {
		t.Fatalf("error %+v: want RetryAfter 7s and temporary", e)
	}
}

func TestTemporary(t *testing.T) {
	ts := newTestServer(t)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	_, sha := randomBlob(t, 10)

	ts.fail503 = true
	_, err := c.Head(ctxT(t), sha)
	if e := asError(t, err); e.Status != 503 || !e.Temporary() || e.RetryAfter != 3*time.Second || e.Reason != "maintenance" {
		t.Fatalf("503: %+v", e)
	}
	ts.fail503 = false

	ts.srv.Close() // nothing listens any more: a network error
	_, err = c.Head(ctxT(t), sha)
	if e := asError(t, err); e.Status != 0 || !e.Temporary() {
		t.Fatalf("network error: %+v temporary=%v", e, e.Temporary())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Head(ctx, sha)
	if err == nil || blossom.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v (temporary=%v)", err, blossom.IsTemporary(err))
	}
}

func TestDownloadHashMismatchWritesNothing(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		ts := newTestServer(t)
		tmp := t.TempDir()
		c := blossom.New(ts.URL(), nostr.GeneratePrivateKey(), blossom.WithTempDir(tmp))
		data, sha := randomBlob(t, 200_000)
		if _, err := c.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha); err != nil {
			t.Fatal(err)
		}
		ts.corrupt, ts.chunked = true, chunked
		var out bytes.Buffer
		err := c.Download(ctxT(t), ts.URL()+"/"+sha, sha, 1<<20, &out)
		if !errors.Is(err, blossom.ErrHashMismatch) {
			t.Fatalf("chunked=%v: err %v, want ErrHashMismatch", chunked, err)
		}
		if out.Len() != 0 {
			t.Fatalf("chunked=%v: %d bytes written before the hash was checked", chunked, out.Len())
		}
		emptyDir(t, tmp)

		ts.corrupt = false // the same request succeeds once the bytes are right
		if err := c.Download(ctxT(t), ts.URL()+"/"+sha, sha, 1<<20, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("chunked=%v: good download: %v", chunked, err)
		}
		emptyDir(t, tmp)
	}
}

func TestDownloadTooLarge(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		ts := newTestServer(t)
		tmp := t.TempDir()
		c := blossom.New(ts.URL(), nostr.GeneratePrivateKey(), blossom.WithTempDir(tmp))
		data, sha := randomBlob(t, 100_000)
		if _, err := c.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha); err != nil {
			t.Fatal(err)
		}
		ts.chunked = chunked
		var out bytes.Buffer
		err := c.Get(ctxT(t), sha, 99_999, &out)
		if !errors.Is(err, blossom.ErrTooLarge) {
			t.Fatalf("chunked=%v: err %v, want ErrTooLarge", chunked, err)
		}
		if out.Len() != 0 {
			t.Fatalf("chunked=%v: wrote %d bytes", chunked, out.Len())
		}
		emptyDir(t, tmp)
		if err := c.Get(ctxT(t), sha, 100_000, &out); err != nil || out.Len() != len(data) {
			t.Fatalf("chunked=%v: exact-size download: %v", chunked, err)
		}
	}
}

func TestMirror(t *testing.T) {
	origin, mirror := newTestServer(t), newTestServer(t)
	sk := nostr.GeneratePrivateKey()
	data, sha := randomBlob(t, 50_000)
	d, err := blossom.New(origin.URL(), sk).Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), sha)
	if err != nil {
		t.Fatal(err)
	}
	mc := blossom.New(mirror.URL(), sk)
	md, err := mc.Mirror(ctxT(t), d.URL, sha)
	if err != nil || md.SHA256 != sha || !md.Created || md.URL != mirror.URL()+"/"+sha {
		t.Fatalf("mirror: %+v %v", md, err)
	}
	var out bytes.Buffer
	if err := mc.Get(ctxT(t), sha, 1<<20, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get mirrored blob: %v", err)
	}
	_, wrong := randomBlob(t, 10)
	if _, err := mc.Mirror(ctxT(t), d.URL, wrong); !errors.Is(err, blossom.ErrConflict) {
		t.Fatalf("mirror under the wrong hash: %v, want ErrConflict", err)
	}
}

func TestBadInputs(t *testing.T) {
	ts := newTestServer(t)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	ctx := ctxT(t)
	if _, err := c.Upload(ctx, strings.NewReader("x"), 1, "NOTAHASH"); err == nil {
		t.Fatal("upload accepted a malformed hash")
	}
	_, sha := randomBlob(t, 1)
	if err := c.Download(ctx, "file:///etc/passwd", sha, 10, io.Discard); err == nil {
		t.Fatal("download accepted a file URL")
	}
	if err := c.Download(ctx, ts.URL()+"/"+sha, sha, 0, io.Discard); err == nil {
		t.Fatal("download accepted maxSize 0")
	}
	if _, err := blossom.New("ftp://x", "").Head(ctx, sha); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("ftp base URL: %v", err)
	}
	if _, err := blossom.New(ts.URL(), "zz").Upload(ctx, strings.NewReader("x"), 1, sha); err == nil || !strings.Contains(err.Error(), "signing key") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := c.List(ctx, "bob"); err == nil {
		t.Fatal("list accepted a malformed pubkey")
	}
}

func TestErrorDoesNotLeakToken(t *testing.T) {
	ts := newTestServer(t)
	ts.maxSize = 1
	sk := nostr.GeneratePrivateKey()
	var logs bytes.Buffer
	c := blossom.New(ts.URL(), sk, blossom.WithLogger(slogTo(&logs)))
	data, sha := randomBlob(t, 10)
	_, err := c.Upload(ctxT(t), bytes.NewReader(data), 10, sha)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, sk) || strings.Contains(s, "Nostr ") {
			t.Fatalf("secret material in %q", s)
		}
	}
	if _, err := c.Upload(ctxT(t), bytes.NewReader(data[:1]), 1, hexSHA(data[:1])); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "blossom upload") || strings.Contains(logs.String(), sk) {
		t.Fatalf("logs: %s", logs.String())
	}
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
