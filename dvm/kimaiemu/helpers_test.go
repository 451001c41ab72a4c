package kimaiemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/kimaiemu"
	"pow.do/shared/clocktest"
)

// testNow is the emulator's clock in most tests: a southern-summer day, so
// Pacific/Auckland and Pacific/Tongatapu are both UTC+13 and Bogota UTC−5.
var testNow = time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)

type fakeClock = clocktest.Clock

type env struct {
	t     *testing.T
	srv   *kimaiemu.Server
	http  *httptest.Server
	clock *fakeClock
}

// newEnv starts the emulator with the demo seed, no legacy slowdown and a
// fake clock; mutate may change the options first.
func newEnv(t *testing.T, mutate func(*kimaiemu.Options)) *env {
	t.Helper()
	clock := clocktest.New(testNow)
	opts := kimaiemu.DefaultOptions()
	opts.LegacyDelayMin, opts.LegacyDelayMax = 0, 0
	opts.Now = clock.Now
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := kimaiemu.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, http: hs, clock: clock}
}

type auth func(*http.Request)

func bearer(token string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func legacy(user, pass string) auth {
	return func(r *http.Request) {
		r.Header.Set("X-AUTH-USER", user)
		r.Header.Set("X-AUTH-TOKEN", pass)
	}
}

func noAuth(*http.Request) {}

var (
	asAdmin    = bearer("demo-admin-token")
	asTeamlead = bearer("demo-dvm-token")   // Pacific/Auckland
	asAlice    = bearer("demo-alice-token") // Pacific/Tongatapu
	asBob      = bearer("demo-bob-token")   // America/Bogota
)

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response is not JSON (%d): %q: %v", r.status, r.body, err)
	}
	return v
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("response is not an object: %s", r.body)
	}
	return m
}

func (r resp) list(t *testing.T) []any {
	t.Helper()
	l, ok := r.json(t).([]any)
	if !ok {
		t.Fatalf("response is not a list: %s", r.body)
	}
	return l
}

// do sends a request; body is JSON-encoded unless it is a string (sent raw).
func (e *env) do(method, path string, a auth, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

// expectJSON checks status and that the body equals want (a JSON text).
func expectJSON(t *testing.T, r resp, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var got, exp any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body not JSON: %q", r.body)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("body\n got  %s\n want %s", r.body, want)
	}
}

func expectStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// globalErrors and fieldErrors read Kimai's validation tree.
func globalErrors(t *testing.T, r resp) []string {
	t.Helper()
	tree := r.obj(t)["errors"].(map[string]any)
	var out []string
	if g, ok := tree["errors"].([]any); ok {
		for _, e := range g {
			out = append(out, e.(string))
		}
	}
	return out
}

func fieldErrors(t *testing.T, r resp, field string) []string {
	t.Helper()
	tree := r.obj(t)["errors"].(map[string]any)
	children, ok := tree["children"].(map[string]any)
	if !ok {
		t.Fatalf("no children in %s", r.body)
	}
	c, ok := children[field].(map[string]any)
	if !ok {
		t.Fatalf("no child %q in %s", field, r.body)
	}
	var out []string
	if errs, ok := c["errors"].([]any); ok {
		for _, e := range errs {
			out = append(out, e.(string))
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("not a number: %#v", v)
	}
	return int64(f)
}

// create posts a timesheet and returns the decoded record.
func (e *env) create(a auth, body map[string]any) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/api/timesheets", a, body)
	expectStatus(e.t, r, 200)
	return r.obj(e.t)
}

func idPath(prefix string, id any, suffix string) string {
	return prefix + "/" + jsonNum(id) + suffix
}

func jsonNum(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
