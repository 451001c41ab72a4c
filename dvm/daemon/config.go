package daemon

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"pow.do/dvm/ingest"
	"pow.do/shared/proto"
)

// Config is the daemon's configuration: defaults, then the config file, then POWDO_DVM_*
// environment variables, then flags (each overriding the one before).
type Config struct {
	DataDir  string   `json:"data_dir"`
	Relays   []string `json:"relays"`   // ws(s):// URLs
	Blossoms []string `json:"blossoms"` // http(s):// Blossom servers besides the relays' own
	KeyFile  string   `json:"key_file"` // empty: $CREDENTIALS_DIRECTORY/dvm-key
	Listen   string   `json:"listen"`   // health/metrics (and diary) HTTP; "" disables

	KimaiURL        string `json:"kimai_url"`
	KimaiTokenFile  string `json:"kimai_token_file"`
	KimaiLegacyUser string `json:"kimai_legacy_user"` // set: X-AUTH-USER/X-AUTH-TOKEN instead of a bearer token
	DiaryURL        string `json:"diary_url"`         // public URL of the work diary, for Kimai descriptions

	Workers int `json:"workers"` // ingest pool size
	Queue   int `json:"queue"`   // wraps waiting for a worker before relays stop being read

	// Capture policy sent to workers, and the static catalogue used without Kimai.
	Policy     proto.Policy     `json:"policy"`
	Projects   []proto.Project  `json:"projects"`
	Activities []proto.Activity `json:"activities"`

	Ingest IngestConfig `json:"ingest"`

	RetryMin      Duration `json:"retry_min"`      // first retry delay after a transient ingest failure
	RetryMax      Duration `json:"retry_max"`      // longest retry delay
	ReconnectMin  Duration `json:"reconnect_min"`  // relay reconnect backoff bounds
	ReconnectMax  Duration `json:"reconnect_max"`  //
	ShutdownGrace Duration `json:"shutdown_grace"` // in-flight ingest may finish for this long
	LogLevel      string   `json:"log_level"`      // debug, info, warn, error
	LogFormat     string   `json:"log_format"`     // text or json
}

// IngestConfig is the file form of ingest.Policy.
type IngestConfig struct {
	MaxBlobBytes   int64    `json:"max_blob_bytes"`
	FutureSkew     Duration `json:"future_skew"`
	MaxAge         Duration `json:"max_age"`
	MaxScreenshots int      `json:"max_screenshots"`
	KeepBundles    *bool    `json:"keep_bundles"`
	GiveUpAfter    Duration `json:"give_up_after"`
	// BlossomHosts lists extra host[:port] the DVM may download from; "*" allows any.
	BlossomHosts []string `json:"blossom_hosts"`
}

// Duration reads "90s", "2m" and the like from JSON.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultConfig is the configuration before any file, environment or flag.
func DefaultConfig() Config {
	return Config{
		DataDir:       "/var/lib/powdo-dvm",
		Listen:        "127.0.0.1:8089",
		Workers:       4,
		Queue:         16,
		Policy:        proto.DefaultPolicy(),
		RetryMin:      Duration(2 * time.Second),
		RetryMax:      Duration(5 * time.Minute),
		ReconnectMin:  Duration(time.Second),
		ReconnectMax:  Duration(2 * time.Minute),
		ShutdownGrace: Duration(30 * time.Second),
		LogLevel:      "info",
		LogFormat:     "text",
	}
}

// Flags are the command-line flags shared by run, invite and workers.
type Flags struct {
	fs                                           *flag.FlagSet
	config, dataDir, keyFile, listen             *string
	kimaiURL, kimaiTokenFile, kimaiLegacy, diary *string
	logLevel, logFormat                          *string
	workers                                      *int
	relays, blossoms                             *listFlag
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// RegisterFlags adds the configuration flags to fs; daemon=false leaves out those only
// `run` needs.
func RegisterFlags(fs *flag.FlagSet, daemon bool) *Flags {
	f := &Flags{fs: fs, relays: &listFlag{}, blossoms: &listFlag{}}
	f.config = fs.String("config", "", "JSON configuration `file` (env POWDO_DVM_CONFIG)")
	f.dataDir = fs.String("data-dir", "", "data `dir`ectory: database, screenshots, bundles (env POWDO_DVM_DATA_DIR; default /var/lib/powdo-dvm)")
	f.keyFile = fs.String("key-file", "", "`file` with the DVM's secret key, mode 0600 (env POWDO_DVM_KEY_FILE; default $CREDENTIALS_DIRECTORY/dvm-key)")
	fs.Var(f.relays, "relay", "relay `URL` (ws:// or wss://), repeatable (env POWDO_DVM_RELAYS, comma-separated)")
	fs.Var(f.blossoms, "blossom", "extra Blossom server `URL` to download from and put in invite links, repeatable (env POWDO_DVM_BLOSSOMS)")
	f.logLevel = fs.String("log-level", "", "debug, info, warn or error (env POWDO_DVM_LOG_LEVEL)")
	f.logFormat = fs.String("log-format", "", "text or json (env POWDO_DVM_LOG_FORMAT)")
	if daemon {
		f.listen = fs.String("listen", "", "`host:port` for /healthz, /readyz, /metrics and the work diary; \"off\" disables (env POWDO_DVM_LISTEN; default 127.0.0.1:8089)")
		f.kimaiURL = fs.String("kimai-url", "", "Kimai base `URL`; empty: no Kimai sync, static catalogue from the config file (env POWDO_DVM_KIMAI_URL)")
		f.kimaiTokenFile = fs.String("kimai-token-file", "", "`file` with the Kimai API token, mode 0600 (env POWDO_DVM_KIMAI_TOKEN_FILE)")
		f.kimaiLegacy = fs.String("kimai-legacy-user", "", "Kimai `user`name for the legacy X-AUTH-USER/X-AUTH-TOKEN login (env POWDO_DVM_KIMAI_LEGACY_USER)")
		f.diary = fs.String("diary-url", "", "public `URL` of the work diary, linked from Kimai descriptions (env POWDO_DVM_DIARY_URL)")
		f.workers = fs.Int("workers", 0, "ingest workers (env POWDO_DVM_WORKERS; default 4)")
	}
	return f
}

// Resolve builds the configuration from defaults, the file, getenv and the parsed flags.
func (f *Flags) Resolve(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	pick := func(flagName, envName string, flagVal *string, dst *string) {
		if flagVal != nil && set[flagName] {
			*dst = *flagVal
		} else if v := getenv(envName); v != "" {
			*dst = v
		}
	}

	path := getenv("POWDO_DVM_CONFIG")
	if set["config"] {
		path = *f.config
	}
	if path != "" {
		if err := loadFile(path, &c); err != nil {
			return Config{}, err
		}
	}

	pick("data-dir", "POWDO_DVM_DATA_DIR", f.dataDir, &c.DataDir)
	pick("key-file", "POWDO_DVM_KEY_FILE", f.keyFile, &c.KeyFile)
	pick("log-level", "POWDO_DVM_LOG_LEVEL", f.logLevel, &c.LogLevel)
	pick("log-format", "POWDO_DVM_LOG_FORMAT", f.logFormat, &c.LogFormat)
	pick("listen", "POWDO_DVM_LISTEN", f.listen, &c.Listen)
	pick("kimai-url", "POWDO_DVM_KIMAI_URL", f.kimaiURL, &c.KimaiURL)
	pick("kimai-token-file", "POWDO_DVM_KIMAI_TOKEN_FILE", f.kimaiTokenFile, &c.KimaiTokenFile)
	pick("kimai-legacy-user", "POWDO_DVM_KIMAI_LEGACY_USER", f.kimaiLegacy, &c.KimaiLegacyUser)
	pick("diary-url", "POWDO_DVM_DIARY_URL", f.diary, &c.DiaryURL)
	if set["relay"] {
		c.Relays = append([]string(nil), *f.relays...)
	} else if v := getenv("POWDO_DVM_RELAYS"); v != "" {
		c.Relays = splitList(v)
	}
	if set["blossom"] {
		c.Blossoms = append([]string(nil), *f.blossoms...)
	} else if v := getenv("POWDO_DVM_BLOSSOMS"); v != "" {
		c.Blossoms = splitList(v)
	}
	if f.workers != nil && set["workers"] {
		c.Workers = *f.workers
	} else if v := getenv("POWDO_DVM_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("POWDO_DVM_WORKERS=%q: not a number", v)
		}
		c.Workers = n
	}
	if c.Listen == "off" {
		c.Listen = ""
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func loadFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// anyPubkey is a valid pubkey (the generator point's) for validating a catalogue shape.
const anyPubkey = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

// Validate checks the configuration and normalises relay URLs.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if len(c.Relays) == 0 {
		errs = append(errs, errors.New("at least one --relay is required"))
	}
	for i, r := range c.Relays {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("relay %q: want ws://host[:port] or wss://host[:port]", r))
			continue
		}
		c.Relays[i] = strings.TrimRight(u.String(), "/")
	}
	for _, b := range c.Blossoms {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("blossom %q: want http(s)://host[:port]", b))
		}
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: want host:port", c.Listen))
		}
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers %d: want 1..256", c.Workers))
	}
	if c.Queue < 0 {
		errs = append(errs, fmt.Errorf("queue %d: must not be negative", c.Queue))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	} else if len(c.Projects) > 0 || len(c.Activities) > 0 {
		// The static catalogue must be one a worker would accept.
		cat := proto.Catalogue{To: anyPubkey, UpdatedAt: time.Now().UTC().Truncate(time.Second),
			Projects: c.Projects, Activities: c.Activities, Policy: c.Policy}
		if err := cat.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("projects and activities: %w", err))
		}
	}
	if c.KimaiURL != "" && c.KimaiTokenFile == "" {
		errs = append(errs, errors.New("--kimai-url needs --kimai-token-file"))
	}
	if _, err := c.LogLevelValue(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log format %q: want text or json", c.LogFormat))
	}
	if c.RetryMin.D() <= 0 || c.RetryMax.D() < c.RetryMin.D() || c.ReconnectMin.D() <= 0 || c.ReconnectMax.D() < c.ReconnectMin.D() {
		errs = append(errs, errors.New("retry and reconnect delays must be positive, min ≤ max"))
	}
	return errors.Join(errs...)
}

// LogLevelValue parses LogLevel.
func (c *Config) LogLevelValue() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// Logger builds the configured logger, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	lvl, _ := c.LogLevelValue()
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// IngestPolicy is the ingest policy the configuration gives.
func (c *Config) IngestPolicy() ingest.Policy {
	p := ingest.DefaultPolicy()
	ic := c.Ingest
	if ic.MaxBlobBytes > 0 {
		p.MaxBlobBytes = ic.MaxBlobBytes
	}
	if ic.FutureSkew > 0 {
		p.FutureSkew = ic.FutureSkew.D()
	}
	if ic.MaxAge > 0 {
		p.MaxAge = ic.MaxAge.D()
	}
	if ic.MaxScreenshots > 0 {
		p.MaxScreenshots = ic.MaxScreenshots
	}
	if ic.KeepBundles != nil {
		p.KeepBundles = *ic.KeepBundles
	}
	if ic.GiveUpAfter > 0 {
		p.GiveUpAfter = ic.GiveUpAfter.D()
	}
	return p
}

// BlossomHosts lists the host[:port] values ingest may download from: the relays' own,
// the configured Blossom servers' and ingest.blossom_hosts. nil means any ("*").
func (c *Config) BlossomHosts() []string {
	var hosts []string
	add := func(raw string) {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			hosts = append(hosts, strings.ToLower(u.Host))
		}
	}
	for _, r := range c.Relays {
		add(r)
	}
	for _, b := range c.Blossoms {
		add(b)
	}
	for _, h := range c.Ingest.BlossomHosts {
		if h == "*" {
			return nil
		}
		hosts = append(hosts, strings.ToLower(h))
	}
	return hosts
}
