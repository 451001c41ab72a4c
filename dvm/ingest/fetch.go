package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"pow.do/shared/blossom"
)

// Fetcher downloads a bundle's ciphertext from its URL, then from each fallback, keeping
// only bytes that hash to x (shared/blossom spools and verifies before handing anything
// out).
type Fetcher struct {
	Client *blossom.Client // anonymous client; any base URL (Download takes full URLs)
	// AllowedHosts, when not empty, lists the host[:port] values the DVM may fetch from;
	// other URLs in a message are skipped, so a worker cannot point the DVM at internal
	// services.
	AllowedHosts []string
	// Timeout bounds one download (default 2 minutes).
	Timeout time.Duration
}

// FetchError is a failed fetch from every source.
type FetchError struct {
	Temporary    bool // some source failed in a way that may pass (5xx, 429, timeout, network)
	NotFound     bool // no source had the blob (and none failed temporarily)
	HashMismatch bool // a source served bytes that do not hash to x
	Errs         []error
}

func (e *FetchError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "fetch blob: " + strings.Join(msgs, "; ")
}

func (e *FetchError) Unwrap() []error { return e.Errs }

// Fetch tries each URL in order and returns the first ciphertext of exactly size bytes that
// hashes to x.
func (f *Fetcher) Fetch(ctx context.Context, urls []string, x string, size int64) ([]byte, error) {
	fe := &FetchError{}
	notFound := 0
	for _, u := range urls {
		if err := f.allowed(u); err != nil {
			fe.Errs = append(fe.Errs, err)
			continue
		}
		data, err := f.one(ctx, u, x, size)
		if err == nil {
			return data, nil
		}
		fe.Errs = append(fe.Errs, err)
		switch {
		case ctx.Err() != nil:
			fe.Temporary = true
			return nil, fe
		case blossom.IsTemporary(err), errors.Is(err, context.DeadlineExceeded):
			fe.Temporary = true
		case errors.Is(err, blossom.ErrNotFound):
			notFound++
		case errors.Is(err, blossom.ErrHashMismatch):
			fe.HashMismatch = true
		}
	}
	if len(fe.Errs) == 0 {
		fe.Errs = append(fe.Errs, errors.New("no URL to fetch from"))
	}
	fe.NotFound = !fe.Temporary && notFound > 0
	return nil, fe
}

func (f *Fetcher) one(ctx context.Context, u, x string, size int64) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var buf bytes.Buffer
	if err := f.Client.Download(ctx, u, x, size, &buf); err != nil {
		return nil, fmt.Errorf("%s: %w", hostOf(u), err)
	}
	if int64(buf.Len()) != size {
		return nil, fmt.Errorf("%s: blob has %d bytes, the message says %d", hostOf(u), buf.Len(), size)
	}
	return buf.Bytes(), nil
}

func (f *Fetcher) allowed(raw string) error {
	if len(f.AllowedHosts) == 0 {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("blob URL is not a URL")
	}
	host := strings.ToLower(u.Host)
	for _, h := range f.AllowedHosts {
		if strings.EqualFold(h, host) {
			return nil
		}
	}
	return fmt.Errorf("%s: not an allowed Blossom server", host)
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "?"
}
