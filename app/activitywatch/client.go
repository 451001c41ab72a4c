package activitywatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// Defaults for Config.
const (
	DefaultBaseURL      = "http://localhost:5600/api/0"
	DefaultAPIKeyHeader = "X-API-Key"
	DefaultTimeout      = 10 * time.Second
	DefaultMaxEvents    = 20000
	maxResponseBytes    = 64 << 20
)

// Bucket types of the watchers the tracker reads.
const (
	TypeWindow = "currentwindow"
	TypeAFK    = "afkstatus"
	TypeWeb    = "web.tab.current"
	TypeInput  = "os.hid.input"
)

// ErrNoBucket means the server has no bucket with the requested id.
var ErrNoBucket = errors.New("no such bucket")

// Config says where ActivityWatch listens.
type Config struct {
	BaseURL      string        // default DefaultBaseURL
	APIKey       string        // sent in APIKeyHeader when set; never logged
	APIKeyHeader string        // default DefaultAPIKeyHeader
	Timeout      time.Duration // per request; default DefaultTimeout
	Hostname     string        // whose buckets to use; default the server's hostname
	MaxEvents    int           // refuse larger answers rather than lose events; default DefaultMaxEvents
}

// Client talks to ActivityWatch's REST API.
type Client struct {
	rc  *resty.Client
	cfg Config
}

// New returns a client; it does not contact the server.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.APIKeyHeader == "" {
		cfg.APIKeyHeader = DefaultAPIKeyHeader
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	rc := resty.New().
		SetBaseURL(cfg.BaseURL).
		SetTimeout(cfg.Timeout).
		SetResponseBodyLimit(maxResponseBytes).
		SetHeader("Accept", "application/json")
	if cfg.APIKey != "" {
		rc.SetHeader(cfg.APIKeyHeader, cfg.APIKey)
	}
	return &Client{rc: rc, cfg: cfg}
}

// BaseURL is the API root in use.
func (c *Client) BaseURL() string { return c.cfg.BaseURL }

// Info is GET /info.
type Info struct {
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	Testing  bool   `json:"testing"`
	DeviceID string `json:"device_id"`
}

// Bucket is one entry of GET /buckets/.
type Bucket struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Type     string    `json:"type"`
	Client   string    `json:"client"`
	Hostname string    `json:"hostname"`
	Created  time.Time `json:"created"`
}

// HTTPError is a non-200 answer, with ActivityWatch's own message.
type HTTPError struct {
	Path    string
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("activitywatch GET %s: HTTP %d: %s", e.Path, e.Status, e.Message)
}

// apiError is ActivityWatch's error body.
type apiError struct {
	Message string `json:"message"`
}

// get fetches path into out, turning HTTP failures into errors that carry
// ActivityWatch's own message.
func (c *Client) get(ctx context.Context, path string, query map[string]string, out any) error {
	resp, err := c.rc.R().SetContext(ctx).SetQueryParams(query).Get(path)
	if err != nil {
		return fmt.Errorf("activitywatch GET %s: %w", path, err)
	}
	if resp.StatusCode() != http.StatusOK {
		var ae apiError
		msg := strings.TrimSpace(string(resp.Body()))
		if json.Unmarshal(resp.Body(), &ae) == nil && ae.Message != "" {
			msg = ae.Message
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return &HTTPError{Path: path, Status: resp.StatusCode(), Message: msg}
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return fmt.Errorf("activitywatch GET %s: decode: %w", path, err)
	}
	return nil
}

// Info returns the server's hostname and version.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	if err := c.get(ctx, "/info", nil, &info); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Available reports whether an ActivityWatch server answers.
func (c *Client) Available(ctx context.Context) bool {
	_, err := c.Info(ctx)
	return err == nil
}

// Buckets lists every bucket by id.
func (c *Client) Buckets(ctx context.Context) (map[string]Bucket, error) {
	var m map[string]Bucket
	if err := c.get(ctx, "/buckets/", nil, &m); err != nil {
		return nil, err
	}
	for id, b := range m {
		if b.ID == "" {
			b.ID = id
			m[id] = b
		}
	}
	return m, nil
}

// HostBuckets are the bucket ids of one host's watchers ("" when absent).
type HostBuckets struct {
	Hostname string
	Window   string
	AFK      string
	Input    string
	Web      []string // one per browser
}

// FindHostBuckets picks host's buckets by type. When a type has several
// buckets (say two window watchers) the most recently created wins, except
// web buckets, which are all kept (one per browser). Web watchers report
// their own hostname, which older versions set to "unknown": a web bucket
// of any host is used when no web bucket names this host.
func FindHostBuckets(buckets map[string]Bucket, host string) HostBuckets {
	hb := HostBuckets{Hostname: host}
	newest := map[string]Bucket{}
	var webHost, webAny []string
	for id, b := range buckets {
		if b.ID == "" {
			b.ID = id
		}
		if b.Type == TypeWeb {
			webAny = append(webAny, b.ID)
			if b.Hostname == host {
				webHost = append(webHost, b.ID)
			}
			continue
		}
		if b.Hostname != host {
			continue
		}
		if cur, ok := newest[b.Type]; !ok || b.Created.After(cur.Created) || (b.Created.Equal(cur.Created) && b.ID < cur.ID) {
			newest[b.Type] = b
		}
	}
	hb.Window, hb.AFK, hb.Input = newest[TypeWindow].ID, newest[TypeAFK].ID, newest[TypeInput].ID
	hb.Web = webHost
	if len(hb.Web) == 0 {
		hb.Web = webAny
	}
	sort.Strings(hb.Web)
	return hb
}

// FindBuckets finds this host's buckets: Config.Hostname, else the hostname
// the server reports for itself.
func (c *Client) FindBuckets(ctx context.Context) (HostBuckets, error) {
	host := c.cfg.Hostname
	if host == "" {
		info, err := c.Info(ctx)
		if err != nil {
			return HostBuckets{}, err
		}
		host = info.Hostname
	}
	all, err := c.Buckets(ctx)
	if err != nil {
		return HostBuckets{}, err
	}
	return FindHostBuckets(all, host), nil
}

// Events returns the bucket's events inside [start, end), clipped to it and
// oldest first (ActivityWatch answers newest first and includes events that
// merely touch the range).
func (c *Client) Events(ctx context.Context, bucket string, start, end time.Time) ([]Event, error) {
	if bucket == "" {
		return nil, errors.New("activitywatch events: empty bucket id")
	}
	if !end.After(start) {
		return nil, fmt.Errorf("activitywatch events %s: empty range %s..%s", bucket, start, end)
	}
	var events []Event
	q := map[string]string{
		"start": start.UTC().Format(time.RFC3339Nano),
		"end":   end.UTC().Format(time.RFC3339Nano),
		"limit": strconv.Itoa(c.cfg.MaxEvents + 1),
	}
	path := "/buckets/" + url.PathEscape(bucket) + "/events"
	if err := c.get(ctx, path, q, &events); err != nil {
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			return nil, fmt.Errorf("events of %s: %w: %w", bucket, ErrNoBucket, err)
		}
		return nil, fmt.Errorf("events of %s: %w", bucket, err)
	}
	if len(events) > c.cfg.MaxEvents {
		return nil, fmt.Errorf("activitywatch events %s: more than %d events in %s..%s", bucket, c.cfg.MaxEvents, start, end)
	}
	for _, e := range events {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("activitywatch events %s: %w", bucket, err)
		}
	}
	return Clip(events, start, end), nil
}
