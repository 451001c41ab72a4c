// Package kimaiemu is an emulator of the parts of Kimai 2.x's REST API that
// pow.do uses, written rule by rule from KIMAI-API.md (itself read from
// Kimai 2.66's controllers, forms and API tests). It is a stand-in for
// tests and demos on machines where Kimai itself cannot be installed; it is
// not Kimai. Point the DVM at a real Kimai in production.
package kimaiemu

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure an emulated instance.
type Options struct {
	Seed Seed
	// StatePath, when set, is a JSON file holding timesheets and tags. It
	// is read at start and replaced atomically after every change, so a
	// killed emulator restarts with its records.
	StatePath string
	// LegacyDelayMin/Max bound the random slowdown Kimai adds to every
	// X-AUTH request (200–500 ms upstream). Zero disables it (tests).
	LegacyDelayMin, LegacyDelayMax time.Duration
	// Now is the server clock (default time.Now); tests inject one to
	// step over the legacy login throttle window deterministically.
	Now func() time.Time
	// Version reported by /api/version (default 2.66.0).
	Version string
	Logger  *slog.Logger
}

// DefaultOptions are the demo seed with Kimai's legacy-login slowdown.
func DefaultOptions() Options {
	return Options{
		Seed:           DemoSeed(),
		LegacyDelayMin: 200 * time.Millisecond,
		LegacyDelayMax: 500 * time.Millisecond,
	}
}

// Server is the emulator; it implements http.Handler.
type Server struct {
	now      func() time.Time
	log      *slog.Logger
	version  string
	settings Settings
	delayMin time.Duration
	delayMax time.Duration

	users      []*User
	userByID   map[int64]*User
	byLogin    map[string]*User
	tokenHash  map[int64][32]byte
	legacyHash map[int64][32]byte
	perms      map[int64]map[string]bool

	customers  map[int64]*Customer
	projects   map[int64]*Project
	activities map[int64]*Activity
	metaFields map[string]bool

	throttleMu sync.Mutex
	failures   map[string][]time.Time

	routeTable []route

	mu        sync.Mutex
	statePath string
	st        *state
	lastSaved []byte
}

// New builds an emulator from opts, loading opts.StatePath if it exists.
func New(opts Options) (*Server, error) {
	if err := opts.Seed.Validate(); err != nil {
		return nil, fmt.Errorf("kimai emulator seed: %w", err)
	}
	if opts.LegacyDelayMax < opts.LegacyDelayMin || opts.LegacyDelayMin < 0 {
		return nil, errors.New("kimai emulator: legacy delay range is inverted or negative")
	}
	s := &Server{
		now:        opts.Now,
		log:        opts.Logger,
		version:    opts.Version,
		settings:   opts.Seed.Settings,
		delayMin:   opts.LegacyDelayMin,
		delayMax:   opts.LegacyDelayMax,
		userByID:   map[int64]*User{},
		byLogin:    map[string]*User{},
		tokenHash:  map[int64][32]byte{},
		legacyHash: map[int64][32]byte{},
		perms:      map[int64]map[string]bool{},
		customers:  map[int64]*Customer{},
		projects:   map[int64]*Project{},
		activities: map[int64]*Activity{},
		metaFields: map[string]bool{},
		failures:   map[string][]time.Time{},
		statePath:  opts.StatePath,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.version == "" {
		s.version = "2.66.0"
	}
	for i := range opts.Seed.Users {
		u := opts.Seed.Users[i]
		u.Roles = append([]string{}, u.Roles...)
		s.users = append(s.users, &u)
		s.userByID[u.ID] = &u
		s.byLogin[strings.ToLower(u.Username)] = &u
		if u.Email != "" {
			s.byLogin[strings.ToLower(u.Email)] = &u
		}
		if u.APIToken != "" {
			s.tokenHash[u.ID] = sha256.Sum256([]byte(u.APIToken))
		}
		if u.APIPassword != "" {
			s.legacyHash[u.ID] = sha256.Sum256([]byte(u.APIPassword))
		}
		p := map[string]bool{}
		for _, r := range append([]string{RoleUser}, u.Roles...) {
			for _, perm := range rolePermissions[r] {
				p[perm] = true
			}
		}
		for _, perm := range u.Permissions {
			p[perm] = true
		}
		s.perms[u.ID] = p
	}
	sort.Slice(s.users, func(i, j int) bool { return s.users[i].ID < s.users[j].ID })
	for i := range opts.Seed.Customers {
		c := opts.Seed.Customers[i]
		s.customers[c.ID] = &c
	}
	for i := range opts.Seed.Projects {
		p := opts.Seed.Projects[i]
		s.projects[p.ID] = &p
	}
	for i := range opts.Seed.Activities {
		a := opts.Seed.Activities[i]
		s.activities[a.ID] = &a
	}
	for _, m := range opts.Seed.MetaFields {
		s.metaFields[m] = true
	}

	st := &state{Format: stateFormat, NextTimesheetID: 1, NextTagID: 1}
	if s.statePath != "" {
		loaded, err := loadState(s.statePath)
		if err != nil {
			return nil, fmt.Errorf("kimai emulator: %w", err)
		}
		if loaded != nil {
			st = loaded
		}
	}
	s.st = st
	s.routeTable = s.routes()
	for _, name := range opts.Seed.Tags {
		if s.findTag(name) == nil {
			s.addTag(name)
		}
	}
	if s.statePath != "" {
		if err := s.commit(); err != nil {
			return nil, fmt.Errorf("kimai emulator: %w", err)
		}
	}
	return s, nil
}

// Users returns the seeded accounts (for printing demo tokens).
func (s *Server) Users() []User {
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	return out
}

// TimesheetCount is the number of stored records, for tests that must see
// "exactly once" without going through the API.
func (s *Server) TimesheetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.Timesheets)
}

func (s *Server) can(u *User, perm string) bool { return s.perms[u.ID][perm] }

// commit persists the state; on failure it restores the last saved state
// so memory never claims what the file does not hold. Caller holds s.mu.
func (s *Server) commit() error {
	if s.statePath == "" {
		return nil
	}
	data, err := json.MarshalIndent(s.st, "", " ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writeFileAtomic(s.statePath, data); err != nil {
		if s.lastSaved != nil {
			var prev state
			if json.Unmarshal(s.lastSaved, &prev) == nil {
				s.st = &prev
			}
		}
		return fmt.Errorf("persist state: %w", err)
	}
	s.lastSaved = data
	return nil
}

// ---- routing -----------------------------------------------------------

type reqCtx struct {
	user *User
	loc  *time.Location
	id   int64
}

type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

type route struct {
	method  string
	pattern []string // ":id" matches a decimal id
	h       handler
}

func (s *Server) routes() []route {
	return []route{
		{"GET", []string{"api", "ping"}, s.handlePing},
		{"GET", []string{"api", "version"}, s.handleVersion},
		{"GET", []string{"api", "users", "me"}, s.handleMe},
		{"GET", []string{"api", "users"}, s.handleUsers},
		{"GET", []string{"api", "users", ":id"}, s.handleUserGet},
		{"GET", []string{"api", "config", "timesheet"}, s.handleTimesheetConfig},
		{"GET", []string{"api", "customers"}, s.handleCustomers},
		{"GET", []string{"api", "projects"}, s.handleProjects},
		{"GET", []string{"api", "activities"}, s.handleActivities},
		{"GET", []string{"api", "tags"}, s.handleTagList},
		{"POST", []string{"api", "tags"}, s.handleTagCreate},
		{"GET", []string{"api", "timesheets"}, s.handleTimesheetList},
		{"POST", []string{"api", "timesheets"}, s.handleTimesheetCreate},
		{"GET", []string{"api", "timesheets", "active"}, s.handleTimesheetActive},
		{"GET", []string{"api", "timesheets", ":id"}, s.handleTimesheetGet},
		{"PATCH", []string{"api", "timesheets", ":id"}, s.handleTimesheetUpdate},
		{"DELETE", []string{"api", "timesheets", ":id"}, s.handleTimesheetDelete},
		{"PATCH", []string{"api", "timesheets", ":id", "stop"}, s.handleTimesheetStop},
		{"PATCH", []string{"api", "timesheets", ":id", "meta"}, s.handleTimesheetMeta},
	}
}

func matchPath(pattern, segs []string) (int64, bool) {
	if len(pattern) != len(segs) {
		return 0, false
	}
	var id int64
	for i, p := range pattern {
		if p == ":id" {
			if segs[i] == "" || strings.TrimLeft(segs[i], "0123456789") != "" {
				return 0, false
			}
			n, err := strconv.ParseInt(segs[i], 10, 64)
			if err != nil {
				return 0, false
			}
			id = n
			continue
		}
		if p != segs[i] {
			return 0, false
		}
	}
	return id, true
}

// ServeHTTP routes first (unknown paths are 404 even without credentials,
// as Symfony's router runs before the firewall), then authenticates.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("kimai emulator: handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "Internal Server Error")
		}
	}()
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var allowed []string
	for _, rt := range s.routeTable {
		id, ok := matchPath(rt.pattern, segs)
		if !ok {
			continue
		}
		if rt.method != r.Method {
			allowed = append(allowed, rt.method)
			continue
		}
		u, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		rc := &reqCtx{user: u, loc: loadZone(u.Timezone), id: id}
		rt.h(w, r, rc)
		return
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	writeError(w, http.StatusNotFound, "Not Found")
}

// ---- responses ---------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"code":500,"message":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeError writes Kimai's error body {"code":N,"message":"…"}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{status, message})
}

func forbidden(w http.ResponseWriter) { writeError(w, http.StatusForbidden, "Forbidden") }
func notFound(w http.ResponseWriter)  { writeError(w, http.StatusNotFound, "Not Found") }

// validationTree is the FOSRest form error body; children always list every
// field of the form, the ones without errors as {}.
type validationTree struct {
	global   []string
	children []string
	fields   map[string][]string
}

func newValidationTree(children []string) *validationTree {
	return &validationTree{children: children, fields: map[string][]string{}}
}

func (v *validationTree) addGlobal(msg string) { v.global = append(v.global, msg) }

func (v *validationTree) add(field, msg string) { v.fields[field] = append(v.fields[field], msg) }

func (v *validationTree) has(field string) bool { return len(v.fields[field]) > 0 }

func (v *validationTree) empty() bool {
	if len(v.global) > 0 {
		return false
	}
	for _, e := range v.fields {
		if len(e) > 0 {
			return false
		}
	}
	return true
}

type fieldErrors struct {
	Errors []string `json:"errors,omitempty"`
}

func (v *validationTree) write(w http.ResponseWriter) {
	children := map[string]fieldErrors{}
	for _, c := range v.children {
		children[c] = fieldErrors{Errors: v.fields[c]}
	}
	// Errors on fields outside the form (should not happen) are kept
	// rather than lost.
	for f, e := range v.fields {
		if _, ok := children[f]; !ok {
			children[f] = fieldErrors{Errors: e}
		}
	}
	type tree struct {
		Errors   []string               `json:"errors,omitempty"`
		Children map[string]fieldErrors `json:"children"`
	}
	writeJSON(w, http.StatusBadRequest, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  tree   `json:"errors"`
	}{400, "Validation Failed", tree{Errors: v.global, Children: children}})
}

// ---- query parameters (FOSRest ParamFetcher, strict) --------------------

type query struct {
	w    http.ResponseWriter
	vals map[string][]string
	bad  bool
}

func newQuery(w http.ResponseWriter, r *http.Request) *query {
	return &query{w: w, vals: r.URL.Query()}
}

// get returns the last value, as PHP's query parser keeps the last one.
func (q *query) get(name string) (string, bool) {
	v, ok := q.vals[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

func (q *query) fail(name, value, constraint string) {
	if q.bad {
		return
	}
	q.bad = true
	writeError(q.w, http.StatusBadRequest,
		fmt.Sprintf("Parameter %q of value %q violated a constraint %q", name, value, constraint))
}

// regex reads an optional parameter that must fully match one of the
// alternatives (FOSRest anchors requirements).
func (q *query) regex(name, requirement string, alternatives ...string) (string, bool) {
	v, ok := q.get(name)
	if !ok || v == "" {
		return "", false
	}
	for _, a := range alternatives {
		if a == `\d+` {
			if strings.TrimLeft(v, "0123456789") == "" {
				return v, true
			}
		} else if v == a {
			return v, true
		}
	}
	q.fail(name, v, fmt.Sprintf("Parameter '%s' value, does not match requirements '%s'", name, requirement))
	return "", false
}

func (q *query) id(name string) (int64, bool) {
	v, ok := q.regex(name, `\d+`, `\d+`)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		q.fail(name, v, fmt.Sprintf("Parameter '%s' value, does not match requirements '%s'", name, `\d+`))
		return 0, false
	}
	return n, true
}

// ids reads a map parameter (name[]=1&name[]=2) plus its singular form.
func (q *query) ids(plural, singular string) []int64 {
	var out []int64
	for _, v := range q.vals[plural+"[]"] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strings.TrimLeft(v, "0123456789") != "" {
			q.fail(plural, v, fmt.Sprintf("Parameter '%s' value, does not match requirements '%s'", plural, `\d+`))
			return nil
		}
		out = append(out, n)
	}
	if singular != "" {
		if n, ok := q.id(singular); ok {
			out = append(out, n)
		}
	}
	return out
}

// localTime reads a strict Y-m-d\TH:i:s filter in loc.
func (q *query) localTime(name string, loc *time.Location) (time.Time, bool) {
	v, ok := q.get(name)
	if !ok || v == "" {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(queryLayout, v, loc)
	if err != nil {
		q.fail(name, v, "This value is not a valid datetime.")
		return time.Time{}, false
	}
	return t, true
}

func (q *query) visibility(name string) int {
	v, ok := q.regex(name, "1|2|3", "1", "2", "3")
	if !ok {
		return 1
	}
	n, _ := strconv.Atoi(v)
	return n
}

func matchVisibility(mode int, visible bool) bool {
	switch mode {
	case 2:
		return !visible
	case 3:
		return true
	default:
		return visible
	}
}
