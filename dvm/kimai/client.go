// Package kimai is pow.do's client for the Kimai 2.x REST API, limited to
// the endpoints and rules written down in KIMAI-API.md: catalogue reads,
// timesheet writes in the Kimai user's local time, tags. Every failure is
// an *APIError whose Temporary method tells a retrying queue whether to
// try again. The API token is sent in a header only and never logged.
package kimai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"

	// Kimai users name IANA zones; embed the database so converting to
	// their local time works on hosts without tzdata.
	_ "time/tzdata"
)

// Config configures a Client. Give either Token (Kimai ≥ 2.14, preferred)
// or Username and Password (the deprecated X-AUTH headers with the user's
// API password).
type Config struct {
	// BaseURL is Kimai's root, e.g. https://kimai.example.com; the client
	// appends /api/… itself (a trailing /api is tolerated).
	BaseURL  string
	Token    string
	Username string
	Password string
	// Timeout bounds each request (default 30 s).
	Timeout time.Duration
	// HTTPClient is copied; redirects are never followed, so the
	// credentials cannot be carried to another host.
	HTTPClient *http.Client
	// MaxResponseBytes caps a response body (default 32 MiB).
	MaxResponseBytes int
	Logger           *slog.Logger
	UserAgent        string
}

// LogValue keeps secrets out of logs when a Config is logged.
func (c Config) LogValue() slog.Value {
	auth := "none"
	switch {
	case c.Token != "":
		auth = "bearer"
	case c.Username != "":
		auth = "legacy:" + c.Username
	}
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("auth", auth))
}

// Client talks to one Kimai instance as one Kimai user. It is safe for
// concurrent use.
type Client struct {
	rc        *resty.Client
	setAuth   func(*resty.Request)
	timeout   time.Duration
	log       *slog.Logger
	locMu     sync.Mutex
	loc       *time.Location
	pageLimit int
}

// New checks cfg and builds a client. It does not contact Kimai.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{timeout: cfg.Timeout, log: log, pageLimit: 100000}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	switch {
	case cfg.Token != "":
		if !headerSafe(cfg.Token) {
			return nil, errors.New("kimai: API token contains characters a header cannot carry")
		}
		token := cfg.Token
		c.setAuth = func(r *resty.Request) { r.SetHeader("Authorization", "Bearer "+token) }
	case cfg.Username != "" && cfg.Password != "":
		if !headerSafe(cfg.Username) || !headerSafe(cfg.Password) {
			return nil, errors.New("kimai: username or API password contains characters a header cannot carry")
		}
		user, pass := cfg.Username, cfg.Password
		c.setAuth = func(r *resty.Request) {
			r.SetHeader("X-AUTH-USER", user)
			r.SetHeader("X-AUTH-TOKEN", pass)
		}
	default:
		return nil, errors.New("kimai: no credentials: set an API token, or username and API password")
	}
	if base.Scheme == "http" && !isLoopback(base.Hostname()) {
		log.Warn("kimai: API credentials will travel unencrypted; use https", "host", base.Host)
	}

	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	// X-AUTH-TOKEN is not among the headers Go strips on cross-host
	// redirects: answer the 3xx to the caller instead of following it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	limit := cfg.MaxResponseBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "pow.do-dvm"
	}
	c.rc = resty.NewWithClient(hc).
		SetBaseURL(base.String()).
		SetRetryCount(0). // the sync queue owns retries
		SetResponseBodyLimit(limit).
		SetLogger(restyLogger{log}).
		SetHeader("Accept", "application/json").
		SetHeader("User-Agent", ua)
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("kimai base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("kimai base URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("kimai base URL %q: no host", raw)
	}
	if u.User != nil {
		return nil, errors.New("kimai base URL: credentials in the URL are refused; use the token setting")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("kimai base URL %q: query or fragment not allowed", raw)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api")
	u.RawPath = ""
	return u, nil
}

func headerSafe(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
func (r restyLogger) Warnf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}

// call performs one request. body (if not nil) is sent as JSON; a 2xx
// answer is decoded into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := c.rc.R().SetContext(ctx)
	c.setAuth(req)
	if len(query) > 0 {
		req.SetQueryParamsFromValues(query)
	}
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, &APIError{Method: method, Path: path, Message: "encode request", Err: err}
		}
		req.SetHeader("Content-Type", "application/json").SetBody(data)
	}
	start := time.Now()
	resp, err := req.Execute(method, path)
	if err != nil {
		e := &APIError{Method: method, Path: path, Err: transportError(err)}
		if errors.Is(err, resty.ErrResponseBodyTooLarge) {
			e.Err = errTooLarge
		}
		c.log.Debug("kimai request failed", "method", method, "path", path, "err", e.Err)
		return nil, e
	}
	status := resp.StatusCode()
	c.log.Debug("kimai request", "method", method, "path", path, "status", status, "took", time.Since(start))
	if status < 200 || status > 299 {
		return resp.Header(), errorFromResponse(method, path, status, resp.Header(), resp.Body())
	}
	if out != nil && status != http.StatusNoContent {
		if err := json.Unmarshal(resp.Body(), out); err != nil {
			return resp.Header(), &APIError{Method: method, Path: path, Status: status,
				Message: "undecodable answer: " + snippet(resp.Body()), Err: err}
		}
	}
	return resp.Header(), nil
}

// transportError drops the URL from net/url errors (it is in APIError
// already) but keeps the cause for errors.Is.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Ping checks that Kimai answers and accepts the credentials.
func (c *Client) Ping(ctx context.Context) error {
	var out struct {
		Message string `json:"message"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/api/ping", nil, nil, &out); err != nil {
		return err
	}
	if out.Message != "pong" {
		return &APIError{Method: http.MethodGet, Path: "/api/ping", Status: http.StatusOK,
			Message: fmt.Sprintf("unexpected answer %q", out.Message)}
	}
	return nil
}

// Version returns Kimai's version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	_, err := c.call(ctx, http.MethodGet, "/api/version", nil, nil, &v)
	return v, err
}

// Me returns the authenticated user, with timezone and roles.
func (c *Client) Me(ctx context.Context) (User, error) {
	var w userWire
	if _, err := c.call(ctx, http.MethodGet, "/api/users/me", nil, nil, &w); err != nil {
		return User{}, err
	}
	return w.user(), nil
}

// User returns one Kimai user's entity, which (unlike the list) carries the time zone.
// Reading anyone but oneself needs view_user.
func (c *Client) User(ctx context.Context, id int64) (User, error) {
	var w userWire
	if _, err := c.call(ctx, http.MethodGet, fmt.Sprintf("/api/users/%d", id), nil, nil, &w); err != nil {
		return User{}, err
	}
	return w.user(), nil
}

// Location is the authenticated Kimai user's time zone, in which Kimai
// reads every local date-time the client sends. It is fetched once and
// cached for the client's lifetime.
func (c *Client) Location(ctx context.Context) (*time.Location, error) {
	c.locMu.Lock()
	defer c.locMu.Unlock()
	if c.loc != nil {
		return c.loc, nil
	}
	me, err := c.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("kimai user's time zone: %w", err)
	}
	loc, err := time.LoadLocation(me.Timezone)
	if err != nil || me.Timezone == "" {
		return nil, fmt.Errorf("kimai user %s has time zone %q, which is unknown here: %v", me.Username, me.Timezone, err)
	}
	c.loc = loc
	return loc, nil
}

// Users lists Kimai users (needs Kimai's view_user permission) so workers
// can be mapped to Kimai accounts.
func (c *Client) Users(ctx context.Context, vis Visibility) ([]User, error) {
	q := url.Values{}
	if err := setVisibility(q, vis); err != nil {
		return nil, err
	}
	var ws []userWire
	if _, err := c.call(ctx, http.MethodGet, "/api/users", q, nil, &ws); err != nil {
		return nil, err
	}
	out := make([]User, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.user())
	}
	return out, nil
}

// TimesheetConfig returns Kimai's timesheet rules.
func (c *Client) TimesheetConfig(ctx context.Context) (TimesheetConfig, error) {
	var tc TimesheetConfig
	_, err := c.call(ctx, http.MethodGet, "/api/config/timesheet", nil, nil, &tc)
	return tc, err
}

func setVisibility(q url.Values, vis Visibility) error {
	v, err := vis.param()
	if err != nil {
		return err
	}
	if v != "" {
		q.Set("visible", v)
	}
	return nil
}

// Customers lists customers.
func (c *Client) Customers(ctx context.Context, vis Visibility) ([]Customer, error) {
	q := url.Values{}
	if err := setVisibility(q, vis); err != nil {
		return nil, err
	}
	var ws []customerWire
	if _, err := c.call(ctx, http.MethodGet, "/api/customers", q, nil, &ws); err != nil {
		return nil, err
	}
	out := make([]Customer, 0, len(ws))
	for _, w := range ws {
		out = append(out, Customer{ID: w.ID, Name: w.Name, Number: string(w.Number), Comment: string(w.Comment),
			Color: string(w.Color), Currency: string(w.Currency), Visible: w.Visible, Billable: w.Billable})
	}
	return out, nil
}

// ProjectFilter narrows Projects.
type ProjectFilter struct {
	Customers  []int64
	Visibility Visibility
}

// Projects lists projects regardless of their start/end dates
// (ignoreDates=1): without it Kimai hides projects outside their range.
func (c *Client) Projects(ctx context.Context, f ProjectFilter) ([]Project, error) {
	q := url.Values{"ignoreDates": {"1"}}
	if err := setVisibility(q, f.Visibility); err != nil {
		return nil, err
	}
	addIDs(q, "customers[]", f.Customers)
	var ws []projectWire
	if _, err := c.call(ctx, http.MethodGet, "/api/projects", q, nil, &ws); err != nil {
		return nil, err
	}
	out := make([]Project, 0, len(ws))
	for _, w := range ws {
		out = append(out, Project{ID: w.ID, Customer: int64(w.Customer), Name: w.Name, ParentTitle: string(w.ParentTitle),
			Number: string(w.Number), Comment: string(w.Comment), Color: string(w.Color), Visible: w.Visible,
			Billable: w.Billable, GlobalActivities: w.GlobalActivities, Start: w.Start.t, End: w.End.t})
	}
	return out, nil
}

// ActivityFilter narrows Activities. With Projects set, Kimai lists those
// projects' activities plus the global ones the projects accept.
type ActivityFilter struct {
	Projects    []int64
	GlobalsOnly bool
	Visibility  Visibility
}

// Activities lists activities; Activity.Project 0 marks a global one.
func (c *Client) Activities(ctx context.Context, f ActivityFilter) ([]Activity, error) {
	q := url.Values{}
	if err := setVisibility(q, f.Visibility); err != nil {
		return nil, err
	}
	addIDs(q, "projects[]", f.Projects)
	if f.GlobalsOnly {
		q.Set("globals", "true")
	}
	var ws []activityWire
	if _, err := c.call(ctx, http.MethodGet, "/api/activities", q, nil, &ws); err != nil {
		return nil, err
	}
	out := make([]Activity, 0, len(ws))
	for _, w := range ws {
		out = append(out, Activity{ID: w.ID, Project: int64(w.Project), Name: w.Name, ParentTitle: string(w.ParentTitle),
			Number: string(w.Number), Comment: string(w.Comment), Color: string(w.Color), Visible: w.Visible, Billable: w.Billable})
	}
	return out, nil
}

func addIDs(q url.Values, key string, ids []int64) {
	for _, id := range ids {
		q.Add(key, fmt.Sprint(id))
	}
}

// EnsureTag makes sure a tag exists: Kimai silently drops unknown tag
// names from timesheets, so create tags before using them. An existing tag
// (Kimai answers "This value is already used.") is success.
func (c *Client) EnsureTag(ctx context.Context, name string) error {
	if err := checkTagName(name); err != nil {
		return err
	}
	_, err := c.call(ctx, http.MethodPost, "/api/tags", nil, map[string]any{"name": name}, nil)
	if v, ok := IsValidation(err); ok && len(v.Global) == 0 && len(v.Fields) == 1 {
		if msgs := v.Fields["name"]; len(msgs) == 1 && msgs[0] == "This value is already used." {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("ensure tag %q: %w", name, err)
	}
	return nil
}

func checkTagName(name string) error {
	switch {
	case strings.TrimSpace(name) != name || name == "":
		return fmt.Errorf("kimai tag %q: empty or padded with spaces", name)
	case strings.Contains(name, ","):
		return fmt.Errorf("kimai tag %q: commas separate tags in Kimai", name)
	case len([]rune(name)) > 100:
		return fmt.Errorf("kimai tag %q: longer than 100 characters", name)
	}
	return nil
}
