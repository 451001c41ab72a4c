// Package blossom is pow.do's Blossom client (BUD-01/02/04/06 with BUD-11 tokens) and the
// token checks a server reuses. Uploads stream from an io.Reader; downloads are verified
// against their sha256 before a single byte reaches the caller.
package blossom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
)

// Defaults; each can be changed with an Option.
const (
	DefaultTimeout   = 10 * time.Minute
	DefaultTokenTTL  = 5 * time.Minute
	DefaultUserAgent = "pow.do-blossom/1"
	// ContentType is what pow.do uploads: AES-GCM ciphertext.
	ContentType = "application/octet-stream"

	// maxSmallBody bounds the bodies read whole: descriptors and error pages.
	maxSmallBody = 1 << 20
	// maxListBody bounds a /list answer.
	maxListBody = 16 << 20
)

// Descriptor is a BUD-02 blob descriptor.
type Descriptor struct {
	URL      string `json:"url"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Type     string `json:"type,omitempty"`
	Uploaded int64  `json:"uploaded"`
	// Created is true when the server answered 201 (a new blob) rather than 200.
	Created bool `json:"-"`
}

// Client talks to one Blossom server. It is safe for concurrent use. The secret key is
// kept only to sign tokens; it is never logged nor put in a URL.
type Client struct {
	base    string // scheme://host[:port][/prefix], no trailing slash
	server  string // host name for the token's server tag
	baseErr error

	sk     string // hex; empty for an anonymous client
	pub    string
	keyErr error

	rc       *resty.Client
	log      *slog.Logger
	tempDir  string
	tokenTTL time.Duration
}

type config struct {
	timeout   time.Duration
	hc        *http.Client
	userAgent string
	log       *slog.Logger
	tempDir   string
	tokenTTL  time.Duration
}

// Option configures a Client.
type Option func(*config)

// WithTimeout bounds each whole request, body included (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithHTTPClient uses hc's transport, redirect policy and jar; the client is copied, not
// modified.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.hc = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// WithLogger sends the client's debug and warning lines to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithTempDir is where downloads are spooled while their hash is checked (default os.TempDir()).
func WithTempDir(dir string) Option { return func(c *config) { c.tempDir = dir } }

// WithTokenTTL sets how long signed tokens stay valid; capped at MaxTokenLifetime.
func WithTokenTTL(d time.Duration) Option { return func(c *config) { c.tokenTTL = d } }

// streamKey carries a request's real body past resty: resty v2.16.5 reads any io.Reader
// body fully into memory (getBodyCopy) before sending, so uploads leave resty's body empty
// and the pre-request hook attaches the stream to the raw request instead.
type streamKey struct{}

type streamBody struct {
	r io.Reader
	n int64 // -1: unknown, sent chunked
}

// New returns a client for the server at baseURL, signing tokens with sk (hex or nsec).
// An empty sk gives an anonymous client that sends no Authorization header. A malformed
// baseURL or sk is reported by the first call that needs it.
func New(baseURL string, sk string, opts ...Option) *Client {
	cfg := config{timeout: DefaultTimeout, userAgent: DefaultUserAgent, tokenTTL: DefaultTokenTTL}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	if cfg.tokenTTL <= 0 || cfg.tokenTTL > MaxTokenLifetime {
		cfg.tokenTTL = min(max(cfg.tokenTTL, time.Minute), MaxTokenLifetime)
	}

	c := &Client{log: cfg.log, tempDir: cfg.tempDir, tokenTTL: cfg.tokenTTL}
	c.base, c.server, c.baseErr = parseBase(baseURL)
	if sk != "" {
		c.sk, c.pub, c.keyErr = parseSecret(sk)
	}

	var hc http.Client
	if cfg.hc != nil {
		hc = *cfg.hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = time.Minute
		hc.Transport = tr
	}
	hc.Timeout = cfg.timeout
	c.rc = resty.NewWithClient(&hc).
		SetLogger(restyLogger{cfg.log}).
		SetHeader("User-Agent", cfg.userAgent).
		SetResponseBodyLimit(maxSmallBody).
		SetPreRequestHook(func(_ *resty.Client, hr *http.Request) error {
			if sb, ok := hr.Context().Value(streamKey{}).(*streamBody); ok {
				hr.Body = io.NopCloser(sb.r)
				hr.ContentLength = sb.n
				if sb.n == 0 {
					hr.Body = http.NoBody
				}
				hr.GetBody = nil // not replayable: a redirect or retry must fail, not resend garbage
			}
			return nil
		})
	return c
}

func parseBase(raw string) (base, server string, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", fmt.Errorf("blossom server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("blossom server URL %q is not an http(s) URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("blossom server URL %q must not carry credentials, a query or a fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), strings.ToLower(u.Hostname()), nil
}

func parseSecret(sk string) (hexSK, pub string, err error) {
	sk = strings.TrimSpace(sk)
	if strings.HasPrefix(sk, "nsec1") {
		prefix, v, err := nip19.Decode(sk)
		if err != nil || prefix != "nsec" {
			return "", "", errors.New("blossom: signing key is not a valid nsec")
		}
		sk = v.(string)
	}
	if !nostr.IsValid32ByteHex(sk) {
		return "", "", errors.New("blossom: signing key is not 64 hex characters")
	}
	pub, err = nostr.GetPublicKey(sk)
	if err != nil {
		return "", "", errors.New("blossom: signing key is invalid")
	}
	return sk, pub, nil
}

// PublicKey is the hex pubkey tokens are signed with; empty for an anonymous client.
func (c *Client) PublicKey() string { return c.pub }

// Server is the host name the client puts in its tokens' server tag.
func (c *Client) Server() string { return c.server }

// BlobURL is the BUD-01 URL of a blob on this client's server.
func (c *Client) BlobURL(sha256hex string) string { return c.base + "/" + sha256hex }

// authHeader signs a token, or returns "" for an anonymous client.
func (c *Client) authHeader(verb string, hashes ...string) (string, error) {
	if c.sk == "" {
		if c.keyErr != nil {
			return "", c.keyErr
		}
		return "", nil
	}
	ev, err := NewToken(c.sk, verb, hashes, c.tokenTTL, c.server)
	if err != nil {
		return "", err
	}
	return AuthHeader(ev), nil
}

func (c *Client) request(ctx context.Context, verb string, hashes ...string) (*resty.Request, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	req := c.rc.R().SetContext(ctx)
	if verb != "" {
		h, err := c.authHeader(verb, hashes...)
		if err != nil {
			return nil, err
		}
		if h != "" {
			req.SetHeader("Authorization", h)
		}
	}
	return req, nil
}

// Upload streams size bytes from r to the server (BUD-06 preflight, then BUD-02 PUT /upload)
// and returns the server's descriptor, whose sha256 and size must equal ours. r is read
// once, never buffered whole; size < 0 sends the body chunked (most servers refuse that
// with 411).
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64, sha256hex string) (Descriptor, error) {
	if !isHash(sha256hex) {
		return Descriptor{}, fmt.Errorf("upload: sha256 %q is not 64 lowercase hex characters", sha256hex)
	}
	if err := c.preflight(ctx, size, sha256hex); err != nil {
		return Descriptor{}, fmt.Errorf("upload %s: %w", sha256hex, err)
	}

	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(r, h)}
	sctx := context.WithValue(ctx, streamKey{}, &streamBody{r: counted, n: size})
	req, err := c.request(sctx, "upload", sha256hex)
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload %s: %w", sha256hex, err)
	}
	req.SetHeader("Content-Type", ContentType).SetHeader("X-SHA-256", sha256hex)
	const op = "PUT /upload"
	resp, err := req.Put(c.base + "/upload")
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	if resp.StatusCode() != http.StatusOK && resp.StatusCode() != http.StatusCreated {
		return Descriptor{}, fmt.Errorf("upload %s: %w", sha256hex, statusError(op, resp))
	}
	// The server vouched for the hash; make sure our reader produced what we declared.
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256hex || (size >= 0 && counted.n != size) {
		return Descriptor{}, fmt.Errorf("upload %s: sent %d bytes hashing to %s: %w", sha256hex, counted.n, got, ErrHashMismatch)
	}
	d, err := c.descriptor(resp, sha256hex, counted.n)
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload %s: %w", sha256hex, err)
	}
	c.log.Debug("blossom upload", "server", c.server, "sha256", sha256hex, "size", counted.n, "created", d.Created)
	return d, nil
}

// preflight asks HEAD /upload whether the upload would be accepted (BUD-06). A server
// without the endpoint (404, 405, 501) is not an error: the PUT decides.
func (c *Client) preflight(ctx context.Context, size int64, sha256hex string) error {
	req, err := c.request(ctx, "upload", sha256hex)
	if err != nil {
		return err
	}
	req.SetHeader("X-SHA-256", sha256hex).SetHeader("X-Content-Type", ContentType)
	if size >= 0 {
		req.SetHeader("X-Content-Length", strconv.FormatInt(size, 10))
	}
	const op = "HEAD /upload"
	resp, err := req.Head(c.base + "/upload")
	if err != nil {
		return c.transportError(ctx, op, err)
	}
	switch resp.StatusCode() {
	case http.StatusOK, http.StatusNoContent:
		return nil
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		c.log.Debug("blossom preflight unsupported", "server", c.server, "status", resp.StatusCode())
		return nil
	}
	return statusError(op, resp)
}

// UploadFile hashes the file at path, then streams it with Upload.
func (c *Client) UploadFile(ctx context.Context, path string) (Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return Descriptor{}, fmt.Errorf("upload file %s: not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Descriptor{}, fmt.Errorf("upload file %s: hash: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Descriptor{}, fmt.Errorf("upload file %s: %w", path, err)
	}
	return c.Upload(ctx, f, n, hex.EncodeToString(h.Sum(nil)))
}

// Download fetches rawURL and writes the blob to w only after its sha256 matched: the body
// is spooled to a private temp file while hashing, capped at maxSize, and copied to w once
// verified. The temp file is removed in every case. A blob over maxSize fails with
// ErrTooLarge, a wrong hash with ErrHashMismatch; in both cases w gets nothing.
func (c *Client) Download(ctx context.Context, rawURL, sha256hex string, maxSize int64, w io.Writer) error {
	if !isHash(sha256hex) {
		return fmt.Errorf("download: sha256 %q is not 64 lowercase hex characters", sha256hex)
	}
	if maxSize <= 0 {
		return fmt.Errorf("download %s: maxSize must be positive", sha256hex)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("download %s: %q is not an http(s) URL", sha256hex, rawURL)
	}
	op := "GET " + u.Host
	resp, err := c.rc.R().SetContext(ctx).SetDoNotParseResponse(true).Get(rawURL)
	if err != nil {
		return fmt.Errorf("download %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	body := resp.RawBody()
	defer body.Close()
	if resp.StatusCode() != http.StatusOK {
		return fmt.Errorf("download %s: %w", sha256hex, rawStatusError(op, resp.RawResponse, body))
	}
	if cl := resp.RawResponse.ContentLength; cl > maxSize {
		return fmt.Errorf("download %s: server announces %d bytes, limit is %d: %w", sha256hex, cl, maxSize, ErrTooLarge)
	}

	tmp, err := os.CreateTemp(c.tempDir, "blossom-dl-*")
	if err != nil {
		return fmt.Errorf("download %s: spool: %w", sha256hex, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, maxSize+1))
	if err != nil {
		if isLocalWriteErr(err) {
			return fmt.Errorf("download %s: spool: %w", sha256hex, err)
		}
		return fmt.Errorf("download %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	if n > maxSize {
		return fmt.Errorf("download %s: more than %d bytes: %w", sha256hex, maxSize, ErrTooLarge)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256hex {
		return fmt.Errorf("download %s from %s: received %d bytes hashing to %s: %w", sha256hex, u.Host, n, got, ErrHashMismatch)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("download %s: spool: %w", sha256hex, err)
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return fmt.Errorf("download %s: write: %w", sha256hex, err)
	}
	c.log.Debug("blossom download", "host", u.Host, "sha256", sha256hex, "size", n)
	return nil
}

// isLocalWriteErr tells a failing temp file apart from a failing network read.
func isLocalWriteErr(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// Get downloads a blob by hash from this client's server; see Download.
func (c *Client) Get(ctx context.Context, sha256hex string, maxSize int64, w io.Writer) error {
	if c.baseErr != nil {
		return fmt.Errorf("get %s: %w", sha256hex, c.baseErr)
	}
	return c.Download(ctx, c.BlobURL(sha256hex), sha256hex, maxSize, w)
}

// Head asks whether the server has a blob (BUD-01 HEAD /<sha256>) and returns its size and
// type; a missing blob is ErrNotFound.
func (c *Client) Head(ctx context.Context, sha256hex string) (Descriptor, error) {
	if !isHash(sha256hex) {
		return Descriptor{}, fmt.Errorf("head: sha256 %q is not 64 lowercase hex characters", sha256hex)
	}
	req, err := c.request(ctx, "")
	if err != nil {
		return Descriptor{}, fmt.Errorf("head %s: %w", sha256hex, err)
	}
	const op = "HEAD /<sha256>"
	resp, err := req.Head(c.BlobURL(sha256hex))
	if err != nil {
		return Descriptor{}, fmt.Errorf("head %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	if resp.StatusCode() != http.StatusOK {
		return Descriptor{}, fmt.Errorf("head %s: %w", sha256hex, statusError(op, resp))
	}
	return Descriptor{
		URL:    c.BlobURL(sha256hex),
		SHA256: sha256hex,
		Size:   resp.RawResponse.ContentLength,
		Type:   resp.Header().Get("Content-Type"),
	}, nil
}

// Delete removes a blob (BUD-02 DELETE /<sha256>, token t=delete).
func (c *Client) Delete(ctx context.Context, sha256hex string) error {
	if !isHash(sha256hex) {
		return fmt.Errorf("delete: sha256 %q is not 64 lowercase hex characters", sha256hex)
	}
	req, err := c.request(ctx, "delete", sha256hex)
	if err != nil {
		return fmt.Errorf("delete %s: %w", sha256hex, err)
	}
	const op = "DELETE /<sha256>"
	resp, err := req.Delete(c.BlobURL(sha256hex))
	if err != nil {
		return fmt.Errorf("delete %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	if s := resp.StatusCode(); s != http.StatusOK && s != http.StatusNoContent && s != http.StatusAccepted {
		return fmt.Errorf("delete %s: %w", sha256hex, statusError(op, resp))
	}
	c.log.Debug("blossom delete", "server", c.server, "sha256", sha256hex)
	return nil
}

// List returns the blobs a pubkey uploaded (BUD-02 GET /list/<pubkey>, token t=list).
func (c *Client) List(ctx context.Context, pubkey string) ([]Descriptor, error) {
	if !nostr.IsValid32ByteHex(pubkey) {
		return nil, fmt.Errorf("list: pubkey %q is not 64 hex characters", pubkey)
	}
	req, err := c.request(ctx, "list")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", pubkey, err)
	}
	const op = "GET /list"
	resp, err := req.SetResponseBodyLimit(maxListBody).Get(c.base + "/list/" + pubkey)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", pubkey, c.transportError(ctx, op, err))
	}
	if resp.StatusCode() != http.StatusOK {
		return nil, fmt.Errorf("list %s: %w", pubkey, statusError(op, resp))
	}
	var out []Descriptor
	if err := json.Unmarshal(resp.Body(), &out); err != nil {
		return nil, fmt.Errorf("list %s: malformed answer: %w", pubkey, err)
	}
	for i, d := range out {
		if !isHash(d.SHA256) || d.Size < 0 {
			return nil, fmt.Errorf("list %s: entry %d is malformed (sha256 %q, size %d)", pubkey, i, d.SHA256, d.Size)
		}
	}
	return out, nil
}

// Mirror asks the server to fetch a blob from another server (BUD-04 PUT /mirror, token
// t=upload for sha256hex) and returns its descriptor, whose sha256 must equal ours.
func (c *Client) Mirror(ctx context.Context, blobURL, sha256hex string) (Descriptor, error) {
	if !isHash(sha256hex) {
		return Descriptor{}, fmt.Errorf("mirror: sha256 %q is not 64 lowercase hex characters", sha256hex)
	}
	if u, err := url.Parse(blobURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Descriptor{}, fmt.Errorf("mirror %s: %q is not an http(s) URL", sha256hex, blobURL)
	}
	req, err := c.request(ctx, "upload", sha256hex)
	if err != nil {
		return Descriptor{}, fmt.Errorf("mirror %s: %w", sha256hex, err)
	}
	body, _ := json.Marshal(struct {
		URL string `json:"url"`
	}{blobURL})
	const op = "PUT /mirror"
	resp, err := req.SetHeader("Content-Type", "application/json").
		SetHeader("X-SHA-256", sha256hex).
		SetBody(body).
		Put(c.base + "/mirror")
	if err != nil {
		return Descriptor{}, fmt.Errorf("mirror %s: %w", sha256hex, c.transportError(ctx, op, err))
	}
	if resp.StatusCode() != http.StatusOK && resp.StatusCode() != http.StatusCreated {
		return Descriptor{}, fmt.Errorf("mirror %s: %w", sha256hex, statusError(op, resp))
	}
	d, err := c.descriptor(resp, sha256hex, -1)
	if err != nil {
		return Descriptor{}, fmt.Errorf("mirror %s: %w", sha256hex, err)
	}
	c.log.Debug("blossom mirror", "server", c.server, "sha256", sha256hex, "created", d.Created)
	return d, nil
}

// descriptor decodes and checks a BUD-02 descriptor; size < 0 skips the size check.
func (c *Client) descriptor(resp *resty.Response, sha256hex string, size int64) (Descriptor, error) {
	var d Descriptor
	if err := json.Unmarshal(resp.Body(), &d); err != nil {
		return Descriptor{}, fmt.Errorf("malformed descriptor: %w", err)
	}
	if d.SHA256 != sha256hex {
		return Descriptor{}, fmt.Errorf("server descriptor names sha256 %q: %w", d.SHA256, ErrHashMismatch)
	}
	if size >= 0 && d.Size != size {
		return Descriptor{}, fmt.Errorf("server descriptor says %d bytes, we sent %d: %w", d.Size, size, ErrHashMismatch)
	}
	if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Descriptor{}, fmt.Errorf("server descriptor URL %q is not an http(s) URL", d.URL)
	}
	d.Created = resp.StatusCode() == http.StatusCreated
	return d, nil
}

// transportError wraps a failure without an HTTP answer. The caller's own cancellation is
// returned as is, so it is never mistaken for a temporary network problem.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("blossom %s: %w", op, ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL; Op already says where
	}
	if errors.Is(err, resty.ErrResponseBodyTooLarge) {
		// Not an *Error: a server sending oversized answers will not stop doing so.
		return fmt.Errorf("blossom %s: answer too large: %w", op, err)
	}
	return &Error{Op: op, Err: err}
}

// statusError turns a non-success answer into *Error.
func statusError(op string, resp *resty.Response) *Error {
	e := &Error{Op: op, Status: resp.StatusCode(), Reason: sanitizeReason(resp.Header().Get("X-Reason"))}
	if e.Reason == "" && len(resp.Body()) > 0 && strings.HasPrefix(resp.Header().Get("Content-Type"), "text/") {
		e.Reason = sanitizeReason(string(resp.Body()))
	}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header().Get("Retry-After"), time.Now())
	}
	return e
}

// rawStatusError is statusError for a response whose body was not read by resty.
func rawStatusError(op string, hr *http.Response, body io.Reader) *Error {
	e := &Error{Op: op, Status: hr.StatusCode, Reason: sanitizeReason(hr.Header.Get("X-Reason"))}
	if e.Reason == "" && strings.HasPrefix(hr.Header.Get("Content-Type"), "text/") {
		b, _ := io.ReadAll(io.LimitReader(body, maxReason+1))
		e.Reason = sanitizeReason(string(bytes.TrimSpace(b)))
	}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(hr.Header.Get("Retry-After"), time.Now())
	}
	return e
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// restyLogger routes resty's own messages to slog. resty's debug dumps are never enabled,
// so no header (and no token) reaches it.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) {
	r.l.Error("resty: " + fmt.Sprintf(format, v...))
}
func (r restyLogger) Warnf(format string, v ...any) { r.l.Warn("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
