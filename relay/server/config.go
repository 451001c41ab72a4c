// Package server composes powdo-relay: a whitelisted Nostr relay (khatru with a badger event
// store) and a Blossom blob store on one HTTP port, with NIP-86 management, invites, abuse
// limits, metrics and a background sweeper.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"
)

// Config is everything the server needs; zero fields take the defaults of Defaults().
type Config struct {
	Listen    string // host:port; "127.0.0.1:0" picks a free port
	DataDir   string // events/, blobs/ and access.json live here
	PublicURL string // public base URL behind a TLS proxy (https:// or wss://); empty: from the Host header

	Name        string
	Description string
	Contact     string

	Admins []string // hex or npub; every right, not removable
	Allow  []string // hex or npub; always allowed (configuration)

	MaxEventBytes  int   // serialized event size limit
	MaxBlobBytes   int64 // upload size limit
	BlobQuotaBytes int64 // storage quota; oldest blobs go first
	BlobTTL        time.Duration
	WrapTTL        time.Duration
	SweepInterval  time.Duration
	MaxInviteTTL   time.Duration
	MinPoW         int // NIP-13 difficulty required on wraps; 0: none

	MaxConnsPerIP          int
	EventsPerMinutePubkey  int // also bounds REQs per pubkey
	EventsPerMinuteIP      int
	UploadsPerMinutePubkey int
	UploadsPerMinuteIP     int
	ManagePerMinuteIP      int

	BlossomList    string   // "own" (default) or "off"
	BlossomGetAuth bool     // require a BUD-11 get token from an allowed key on GET/HEAD
	MirrorHosts    []string // host[:port] BUD-04 may fetch from; empty: mirroring off

	UploadTimeout   time.Duration // per upload body
	ShutdownTimeout time.Duration // how long shutdown waits for in-flight uploads
	TrustProxy      bool          // take the client IP from X-Forwarded-For

	Now    func() time.Time // injected clock; nil for time.Now
	Logger *slog.Logger     // nil for slog.Default()

	// afterQuery, for tests, runs after a client's stored-events query has read the store.
	afterQuery func(nostr.Filter)
}

// Defaults returns the default configuration (DataDir and Listen still to be chosen).
func Defaults() Config {
	return Config{
		Listen:                 "127.0.0.1:3334",
		Name:                   "pow.do relay",
		Description:            "Whitelisted Nostr relay and Blossom store for pow.do: gift wraps and ciphertext only.",
		MaxEventBytes:          192 << 10,
		MaxBlobBytes:           100 << 20,
		BlobQuotaBytes:         10 << 30,
		BlobTTL:                7 * 24 * time.Hour,
		WrapTTL:                14 * 24 * time.Hour,
		SweepInterval:          10 * time.Minute,
		MaxInviteTTL:           30 * 24 * time.Hour,
		MaxConnsPerIP:          20,
		EventsPerMinutePubkey:  120,
		EventsPerMinuteIP:      600,
		UploadsPerMinutePubkey: 30,
		UploadsPerMinuteIP:     120,
		ManagePerMinuteIP:      60,
		BlossomList:            "own",
		UploadTimeout:          10 * time.Minute,
		ShutdownTimeout:        30 * time.Second,
	}
}

// withDefaults fills zero values from Defaults (negative limits mean "unlimited").
func (c Config) withDefaults() Config {
	d := Defaults()
	setS := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setI := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setI64 := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setS(&c.Listen, d.Listen)
	setS(&c.Name, d.Name)
	setS(&c.Description, d.Description)
	setS(&c.BlossomList, d.BlossomList)
	setI(&c.MaxEventBytes, d.MaxEventBytes)
	setI64(&c.MaxBlobBytes, d.MaxBlobBytes)
	setI64(&c.BlobQuotaBytes, d.BlobQuotaBytes)
	setD(&c.BlobTTL, d.BlobTTL)
	setD(&c.WrapTTL, d.WrapTTL)
	setD(&c.SweepInterval, d.SweepInterval)
	setD(&c.MaxInviteTTL, d.MaxInviteTTL)
	setI(&c.MaxConnsPerIP, d.MaxConnsPerIP)
	setI(&c.EventsPerMinutePubkey, d.EventsPerMinutePubkey)
	setI(&c.EventsPerMinuteIP, d.EventsPerMinuteIP)
	setI(&c.UploadsPerMinutePubkey, d.UploadsPerMinutePubkey)
	setI(&c.UploadsPerMinuteIP, d.UploadsPerMinuteIP)
	setI(&c.ManagePerMinuteIP, d.ManagePerMinuteIP)
	setD(&c.UploadTimeout, d.UploadTimeout)
	setD(&c.ShutdownTimeout, d.ShutdownTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ParsePubkey accepts a hex pubkey or an npub and returns lowercase hex.
func ParsePubkey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "npub1") {
		prefix, v, err := nip19.Decode(s)
		if err != nil || prefix != "npub" {
			return "", fmt.Errorf("pubkey %q: not a valid npub", s)
		}
		return v.(string), nil
	}
	s = strings.ToLower(s)
	if !nostr.IsValidPublicKey(s) {
		return "", fmt.Errorf("pubkey %q: want 64 hex characters or an npub", s)
	}
	return s, nil
}

func (c *Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	for i, pk := range c.Admins {
		v, err := ParsePubkey(pk)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
		c.Admins[i] = v
	}
	for i, pk := range c.Allow {
		v, err := ParsePubkey(pk)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow: %w", err))
		}
		c.Allow[i] = v
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || u.Host == "" || !map[string]bool{"http": true, "https": true, "ws": true, "wss": true}[u.Scheme] {
			errs = append(errs, fmt.Errorf("public URL %q: want https://host or wss://host", c.PublicURL))
		}
	}
	if c.BlossomList != "own" && c.BlossomList != "off" {
		errs = append(errs, fmt.Errorf("blossom list mode %q: want own or off", c.BlossomList))
	}
	if c.MaxEventBytes < 1024 {
		errs = append(errs, fmt.Errorf("max event size %d is below 1024 bytes", c.MaxEventBytes))
	}
	if c.MaxBlobBytes < 1 {
		errs = append(errs, fmt.Errorf("max blob size %d must be positive", c.MaxBlobBytes))
	}
	if c.MinPoW < 0 || c.MinPoW > 64 {
		errs = append(errs, fmt.Errorf("min PoW %d: want 0..64", c.MinPoW))
	}
	for i, h := range c.MirrorHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ ") {
			errs = append(errs, fmt.Errorf("mirror host %q: want host or host:port", c.MirrorHosts[i]))
		}
		c.MirrorHosts[i] = h
	}
	return errors.Join(errs...)
}

// httpBase turns the configured public URL into its http(s) form without a trailing slash.
func httpBase(public string) string {
	if public == "" {
		return ""
	}
	u, err := url.Parse(public)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
